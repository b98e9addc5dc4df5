"""Procedural image-text pairs: coloured shapes at positions with compositional captions.

Each image holds one object ("a large green triangle") or two in a spatial relation ("a small red circle above a
large blue square"): 4 shapes x 6 colours x 2 sizes, relations above / below / left of / right of. The two objects
never overlap and always differ in shape or colour, so every caption names exactly what is drawn and where. Item
``i`` depends only on ``(seed, i)``, so any prefix of a larger set equals the smaller set. Needs only Pillow and numpy:
the always-available default for tests and demos (a few thousand 64 px images per second). Licence: CC0.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from quartet.data.cache import cached_images
from quartet.data.common import DEFAULT_SIZE, check_limit
from quartet.data.types import ImageTextDataset

SHAPES = ["circle", "square", "triangle", "diamond"]
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 160, 60),
    "blue": (30, 70, 220),
    "yellow": (240, 200, 20),
    "purple": (140, 50, 180),
    "orange": (250, 130, 20),
}
SIZES = {"small": 0.10, "large": 0.18}
"""Object radius as a fraction of the image side."""
RELATIONS = ["above", "below", "left of", "right of"]
TWO_OBJECT_FRACTION = 0.7
GAP = 0.04
"""Smallest gap between two objects' bounding circles, as a fraction of the image side."""
BACKGROUND = (255, 255, 255)
LICENCE = "CC0 (procedurally generated)"
DEFAULT_N = 10_000


def _object(rng: np.random.Generator) -> dict[str, Any]:
    return {"shape": SHAPES[rng.integers(len(SHAPES))], "colour": list(COLOURS)[rng.integers(len(COLOURS))],
            "size": list(SIZES)[rng.integers(len(SIZES))]}


def sample_scene(seed: int, index: int, side: int) -> tuple[list[dict[str, Any]], str]:
    """The objects (shape, colour, size, centre ``cx``/``cy`` and radius ``r`` in pixels) and relation ("" for one
    object) of item ``index``."""
    rng = np.random.default_rng([seed, index])
    objs = [_object(rng)]
    relation = ""
    if rng.random() < TWO_OBJECT_FRACTION:
        second = _object(rng)
        while second["shape"] == objs[0]["shape"] and second["colour"] == objs[0]["colour"]:
            second = _object(rng)
        objs.append(second)
        relation = RELATIONS[rng.integers(len(RELATIONS))]
    for o in objs:
        o["r"] = SIZES[o["size"]] * side
    if relation:
        a, b = objs
        # along the relation's axis: first/second object at positions lo < hi separated by at least r_a + r_b + gap
        first_low = relation in ("above", "left of")
        r_lo, r_hi = (a["r"], b["r"]) if first_low else (b["r"], a["r"])
        min_sep = r_lo + r_hi + GAP * side
        max_sep = side - r_lo - r_hi
        sep = rng.uniform(min_sep, max_sep)
        lo = rng.uniform(r_lo, side - r_hi - sep)
        pos = (lo, lo + sep) if first_low else (lo + sep, lo)
        axis, other = ("cy", "cx") if relation in ("above", "below") else ("cx", "cy")
        for o, p in zip(objs, pos, strict=True):
            o[axis] = float(p)
            o[other] = float(rng.uniform(o["r"], side - o["r"]))
    else:
        o = objs[0]
        o["cx"], o["cy"] = (float(rng.uniform(o["r"], side - o["r"])) for _ in range(2))
    return objs, relation


def caption(objs: list[dict[str, Any]], relation: str) -> str:
    """``"a small red circle"`` or ``"a small red circle above a large blue square"``."""
    names = [f"a {o['size']} {o['colour']} {o['shape']}" for o in objs]
    return names[0] if not relation else f"{names[0]} {relation} {names[1]}"


def draw_object(draw: ImageDraw.ImageDraw, o: dict[str, Any]) -> None:
    """Draw one object filled with its colour; its centre pixel is always inside the shape."""
    cx, cy, r, fill = o["cx"], o["cy"], o["r"], COLOURS[o["colour"]]
    if o["shape"] == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
    elif o["shape"] == "square":
        h = r * 0.8
        draw.rectangle([cx - h, cy - h, cx + h, cy + h], fill=fill)
    elif o["shape"] == "triangle":
        draw.polygon([(cx, cy - r), (cx - 0.866 * r, cy + 0.5 * r), (cx + 0.866 * r, cy + 0.5 * r)], fill=fill)
    else:
        draw.polygon([(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)], fill=fill)


def render_scene(objs: list[dict[str, Any]], side: int) -> np.ndarray:
    """The objects drawn on white: uint8 ``[side, side, 3]``."""
    img = Image.new("RGB", (side, side), BACKGROUND)
    draw = ImageDraw.Draw(img)
    for o in objs:
        draw_object(draw, o)
    return np.asarray(img, dtype=np.uint8)


def is_installed() -> bool:
    """Always true: nothing to install."""
    return True


def count() -> int:
    """The default number of generated pairs."""
    return DEFAULT_N


def install() -> None:
    """Nothing to install."""


def load_shapes(
    n: int = DEFAULT_N, size: int = DEFAULT_SIZE, seed: int = 0, limit: int | None = None, refresh: bool = False
) -> ImageTextDataset:
    """``n`` generated pairs; label = shape index of the first object (class names :data:`SHAPES`).
    ``fields``: ``objects`` (list of dicts per item), ``relation`` ("" for single objects)."""
    check_limit(limit)
    check_limit(n)
    n = min(n, limit) if limit else n

    def build(_: int | None) -> ImageTextDataset:
        scenes = [sample_scene(seed, i, size) for i in range(n)]
        return ImageTextDataset(
            images=np.stack([render_scene(o, size) for o, _ in scenes]) if scenes else np.zeros(
                (0, size, size, 3), np.uint8),
            captions=[caption(o, r) for o, r in scenes],
            labels=np.array([SHAPES.index(o[0]["shape"]) for o, _ in scenes], dtype=np.int64),
            class_names=list(SHAPES),
            fields={"objects": [o for o, _ in scenes], "relation": [r for _, r in scenes]},
            meta={"name": "shapes", "source": "procedural (quartet.data.shapes)", "licence": LICENCE, "size": size,
                  "seed": seed},
        )

    return cached_images("shapes", f"{size}px-n{n}-seed{seed}", build, None, refresh)
