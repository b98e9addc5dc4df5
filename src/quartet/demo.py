"""``quartet demo``: every system's quick demo in sequence, one report.

Each system registers a demo as ``quartet.<system>.demo:run_demo(ctx: DemoContext) -> Section``. A system whose demo
module is absent is listed as skipped; a demo that raises is recorded as failed (with its error) and the others
still run; the exit status is non-zero if any demo failed.
"""

from __future__ import annotations

import argparse
import importlib
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from quartet.core.progress import get_logger
from quartet.core.report import Report, Section
from quartet.core.runs import RunDir
from quartet.core.seed import seed_everything

DEMOS: dict[str, str] = {
    "data": "quartet.data.demo",
    "clip": "quartet.clip.demo",
    "vlm": "quartet.vlm.demo",
    "lm": "quartet.lm.demo",
    "robot": "quartet.robot.demo",
}

log = get_logger("demo")


@dataclass
class DemoContext:
    """What a system's demo gets: its own output folder (inside the report folder), a seed, and the size preset."""

    out_dir: Path
    seed: int = 0
    quick: bool = True


def run_demos(out: Path, systems: list[str], seed: int = 0, quick: bool = True) -> tuple[Report, Path]:
    report = Report(
        title="quartet demo",
        intro="Quick end-to-end runs of each system on real data at laptop scale. Each section lists what ran, "
              "the numbers it measured and its plots.",
    )
    for i, name in enumerate(systems, 1):
        t0 = time.perf_counter()
        log.info("[%d/%d] %s demo ...", i, len(systems), name)
        try:
            mod = importlib.import_module(DEMOS[name])
        except ModuleNotFoundError as e:
            if e.name and DEMOS[name].startswith(e.name):
                report.add(Section(title=name, markdown="No demo registered for this system in this build.",
                                   status="skipped"))
                log.info("[%d/%d] %s: skipped (no demo module)", i, len(systems), name)
                continue
            raise
        ctx = DemoContext(out_dir=out / name, seed=seed, quick=quick)
        ctx.out_dir.mkdir(parents=True, exist_ok=True)
        seed_everything(seed)
        try:
            section = mod.run_demo(ctx)
            section.elapsed_s = time.perf_counter() - t0
        except Exception as e:  # one failing demo must not hide the others
            section = Section(title=name, status="failed", elapsed_s=time.perf_counter() - t0,
                              markdown=f"```\n{type(e).__name__}: {e}\n\n{traceback.format_exc()[-3000:]}\n```")
        report.add(section)
        log.info("[%d/%d] %s: %s in %.1f s", i, len(systems), name, section.status, section.elapsed_s)
        report.write(out)  # keep a readable report even if a later demo is interrupted
    return report, report.write(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="quartet demo", description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=None, help="report folder (default: runs/<timestamp>-demo)")
    p.add_argument("--only", nargs="*", choices=list(DEMOS), default=None, help="run only these systems' demos")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    run = RunDir.create("demo", root=None) if args.out is None else RunDir.create("", root=args.out, exist_ok=True)
    systems = args.only or list(DEMOS)
    report, index = run_demos(run.path, systems, seed=args.seed)
    failed = [s.title for s in report.sections if s.status == "failed"]
    print(f"report: {index}")
    print(f"        {run.path / 'report.md'}")
    if failed:
        print(f"failed demos: {', '.join(failed)}")
        return 1
    return 0
