"""Demo section for ``quartet demo``: what data is installed, with contact sheets of the image-text sources and a
corpus-length summary (the heavy-tailed mix that Dataset Decomposition is about)."""

from __future__ import annotations

import time
from typing import Any

from quartet.core.errors import QuartetError
from quartet.core.report import Section, markdown_table
from quartet.data.registry import REGISTRY
from quartet.data.show import corpus_sheet, image_sheet, save_sheet

SHEETS = {"emoji": 24, "openmoji": 24, "shapes": 16, "fashion_mnist": 16}


def run_demo(ctx: Any) -> Section:
    rows: list[dict[str, Any]] = []
    images = []
    for info in REGISTRY.values():
        installed = info.is_installed()
        try:
            items = info.count() if installed else None
        except QuartetError:
            items = None
        rows.append({"dataset": info.name, "kind": info.kind, "items": items, "installed": "yes" if installed else "no",
                     "licence": info.licence})
    timings = []
    for name, n in SHEETS.items():
        info = REGISTRY[name]
        if not info.is_installed():
            continue
        t0 = time.perf_counter()
        ds = info.loader(limit=n)
        images.append(save_sheet(image_sheet(ds, n=n), ctx.out_dir / f"{name}.png"))
        timings.append({"dataset": name, "items shown": n, "load s": round(time.perf_counter() - t0, 2)})
    for name in ("pydocs",):
        info = REGISTRY[name]
        if info.is_installed():
            t0 = time.perf_counter()
            corpus = info.loader()
            images.append(save_sheet(corpus_sheet(corpus, n=12), ctx.out_dir / f"{name}.png"))
            timings.append({"dataset": name, "items shown": 12, "load s": round(time.perf_counter() - t0, 2)})
    md = ("Sources the systems train and evaluate on (`quartet data list`).\n\n" + markdown_table(rows) +
          "\n\nContact sheets (`quartet data show NAME`):\n\n" + markdown_table(timings))
    n_installed = sum(r["installed"] == "yes" for r in rows)
    return Section(title="data", markdown=md, images=images,
                   metrics={"datasets_installed": n_installed, "datasets": len(rows)})
