"""The ``quartet`` command: ``quartet <system> <verb> [options]``, ``quartet demo``.

Systems are looked up lazily, so ``quartet --help`` is fast and a system whose package is absent is reported, not
fatal. Errors caused by input (:class:`~quartet.core.errors.QuartetError`) print one clear line and exit 2.
"""

from __future__ import annotations

import importlib
import sys

from quartet import __version__
from quartet.core.commands import Command, resolve
from quartet.core.errors import QuartetError

SYSTEMS: dict[str, tuple[str, str]] = {
    "clip": ("quartet.clip.cli", "MobileCLIP2 multi-modal reinforced training of small CLIP models"),
    "vlm": ("quartet.vlm.cli", "FastVLM: FastViTHD encoder, LLaVA-style VLM, training, TTFT benchmark"),
    "lm": ("quartet.lm.cli", "Dataset Decomposition: power-of-two buckets, VSL training, baselines"),
    "robot": ("quartet.robot.cli", "tactile-shell millirobot: telemetry, calibration, analysis, MuJoCo"),
    "data": ("quartet.data.cli", "real datasets, corpora and tokenizers: list, show, install"),
}


def _commands(system: str) -> dict[str, Command] | None:
    try:
        mod = importlib.import_module(SYSTEMS[system][0])
    except ModuleNotFoundError as e:
        if e.name and SYSTEMS[system][0].startswith(e.name):
            return None
        raise
    return dict(getattr(mod, "COMMANDS", {}))


def _usage() -> str:
    lines = [f"quartet {__version__}", "", "usage: quartet <system> <verb> [options]   |   quartet demo [options]", ""]
    lines.append("systems:")
    for name, (_, desc) in SYSTEMS.items():
        cmds = _commands(name)
        verbs = ", ".join(cmds) if cmds else "(not available in this build)"
        lines.append(f"  {name:<7} {desc}")
        lines.append(f"  {'':<7}   verbs: {verbs}")
    lines.append("  demo    run every system's quick demo and write one report (index.html + report.md)")
    lines += ["", "`quartet <system> --help` lists a system's verbs; `quartet <system> <verb> --help` their options."]
    return "\n".join(lines)


def _system_usage(system: str, cmds: dict[str, Command]) -> str:
    lines = [f"usage: quartet {system} <verb> [options]", "", SYSTEMS[system][1], "", "verbs:"]
    lines += [f"  {verb:<16} {help_}" for verb, (_, help_) in cmds.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    if argv[0] in ("-V", "--version"):
        print(__version__)
        return 0
    head, rest = argv[0], argv[1:]
    try:
        if head == "demo":
            from quartet.demo import main as demo_main

            return int(demo_main(rest) or 0)
        if head not in SYSTEMS:
            print(f"quartet: unknown system {head!r}; choose from {', '.join([*SYSTEMS, 'demo'])}", file=sys.stderr)
            return 2
        cmds = _commands(head)
        if cmds is None:
            print(f"quartet: the {head!r} system is not available in this build", file=sys.stderr)
            return 2
        if not rest or rest[0] in ("-h", "--help"):
            print(_system_usage(head, cmds))
            return 0
        verb = rest[0]
        if verb not in cmds:
            print(f"quartet {head}: unknown verb {verb!r}; choose from {', '.join(cmds)}", file=sys.stderr)
            return 2
        return int(resolve(cmds[verb][0])(rest[1:]) or 0)
    except QuartetError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
