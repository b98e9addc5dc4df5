"""Shared fixtures for the clip tests: one thread, tiny synthetic image-text data, fixed seeds."""

from __future__ import annotations

import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def tiny_pairs() -> tuple[np.ndarray, list[str], np.ndarray, list[str]]:
    """24 coloured-shape images (uint8 [24,40,40,3]) with captions, labels and class names."""
    from PIL import Image, ImageDraw

    colours = {"red": (220, 30, 30), "green": (30, 180, 30), "blue": (30, 30, 220)}
    shapes = ["circle", "square"]
    images, captions, labels, names = [], [], [], []
    for c, _rgb in colours.items():
        for s in shapes:
            names.append(f"{c} {s}")
    for i in range(24):
        c = list(colours)[i % 3]
        s = shapes[(i // 3) % 2]
        im = Image.new("RGB", (40, 40), (255, 255, 255))
        d = ImageDraw.Draw(im)
        r = 8 + (i % 4) * 2
        box = (20 - r, 20 - r, 20 + r, 20 + r)
        (d.ellipse if s == "circle" else d.rectangle)(box, fill=colours[c])
        images.append(np.asarray(im))
        captions.append(f"a {['small', 'big'][i % 2]} {c} {s}")
        labels.append(names.index(f"{c} {s}"))
    return np.stack(images), captions, np.array(labels), names
