"""``quartet data <verb>``: list, show and install the data sources. The top-level CLI dispatches through
:data:`COMMANDS` (verb -> ("module:function", help)); each function takes ``argv`` and returns an exit status."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from quartet.core.errors import QuartetError
from quartet.data.registry import REGISTRY, get

COMMANDS: dict[str, tuple[str, str]] = {
    "list": ("quartet.data.cli:list_main", "table of data sources: kind, items, installed, licence"),
    "show": ("quartet.data.cli:show_main", "render a contact sheet PNG of a dataset's first items"),
    "install": ("quartet.data.cli:install_main", "install data sources (apt-get / npm / pip download), idempotent"),
}


def list_main(argv: list[str]) -> int:
    """Print one row per source: name, kind, items, installed, licence."""
    argparse.ArgumentParser(prog="quartet data list", description=COMMANDS["list"][1]).parse_args(argv)
    rows = [("name", "kind", "items", "installed", "licence")]
    for info in REGISTRY.values():
        installed = info.is_installed()
        try:
            items = f"{info.count():,}" if installed else "-"
        except QuartetError as e:
            items = f"? ({e})"[:40]
        rows.append((info.name, info.kind, items, "yes" if installed else "no", info.licence))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        print("  ".join(c.ljust(w) if i != 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r[:4], widths,
                                                                                           strict=True))) + "  " + r[4])
    return 0


def show_main(argv: list[str]) -> int:
    """Render a contact sheet of ``NAME``'s first items and print the PNG's path."""
    from quartet.data.show import corpus_sheet, image_sheet, save_sheet

    p = argparse.ArgumentParser(prog="quartet data show", description=COMMANDS["show"][1])
    p.add_argument("name", choices=sorted(REGISTRY))
    p.add_argument("--out", type=Path, default=None, help="PNG path (default: ./data-<name>.png)")
    p.add_argument("--n", type=int, default=64, help="number of items shown (default 64)")
    args = p.parse_args(argv)
    info = get(args.name)
    out = args.out or Path(f"data-{args.name}.png")
    t0 = time.perf_counter()
    if info.kind == "tokenizer":
        enc = info.loader()
        sample = "Hello world"
        print(f"{args.name}: {enc.n_vocab:,} tokens; {sample!r} -> {enc.encode(sample)}")
        return 0
    if info.kind == "corpus":
        ds = info.loader()
        img = corpus_sheet(ds, n=min(args.n, 40))
    else:
        ds = info.loader(limit=args.n)
        img = image_sheet(ds, n=args.n)
    print(f"{args.name}: loaded in {time.perf_counter() - t0:.2f} s")
    print(save_sheet(img, out))
    return 0


def install_main(argv: list[str]) -> int:
    """Install the named sources (or all with ``--all``); already-installed ones are skipped quickly."""
    p = argparse.ArgumentParser(prog="quartet data install", description=COMMANDS["install"][1])
    p.add_argument("names", nargs="*", choices=[*sorted(REGISTRY), []], metavar="NAME")
    p.add_argument("--all", action="store_true", help="install every source")
    args = p.parse_args(argv)
    names = list(REGISTRY) if args.all else args.names
    if not names:
        p.error("name one or more sources, or pass --all")
    failed = []
    for name in names:
        info = get(name)
        if info.is_installed():
            print(f"{name}: installed")
            continue
        print(f"{name}: installing ...", flush=True)
        try:
            info.install()
        except QuartetError as e:
            print(f"{name}: FAILED: {e}")
            failed.append(name)
            continue
        print(f"{name}: {'installed' if info.is_installed() else 'still missing'}")
    return 1 if failed else 0
