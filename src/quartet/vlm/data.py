"""Image-question-answer data for VLM training: a generated text-in-image task and real-source builders.

Text-in-image (``textimage``): a number of ``n_digits`` digits rendered in DejaVu Sans at ``font_px`` pixels on a
``canvas`` x ``canvas`` image (placed within ``jitter`` of the centre), with faint background clutter; the question
asks for the number. Reading it needs resolution: with the defaults (canvas 64, 10 px font, glyphs ~7 px tall) a
digit is ~2 px tall at 16 px input, ~4 px at 32 px and ~7 px at 64 px, so accuracy rises with the encoder's input
size, the effect FastVLM trades against TTFT. Harder settings (``n_digits=3``, ``jitter=1``) need longer training.

Real sources (``quartet.data``): emoji (CLDR name -> "What is this?"), Fashion-MNIST ("What kind of clothing is
this?"), OpenClipart titles ("Describe the image.").

On disk a dataset is a folder: ``images.npy`` (uint8 [N, H, W, 3], read with ``allow_pickle=False``), ``qa.json``
(question/answer/source per item) and ``manifest.json``; :func:`load_qa` reads it.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from quartet.core.errors import DataCorruptError, QuartetError
from quartet.core.io import atomic_path, atomic_write_json
from quartet.core.seed import numpy_rng

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
NUMBER_QUESTIONS = ("What number is written in the image?", "Read the number in the image.",
                    "Which number is shown?")


@dataclass
class QADataset:
    """``N`` images with one question and answer each."""

    images: np.ndarray  # uint8 [N, H, W, 3]
    questions: list[str]
    answers: list[str]
    sources: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.questions)

    def __post_init__(self) -> None:
        if not (self.images.shape[0] == len(self.questions) == len(self.answers)):
            raise DataCorruptError(f"{self.images.shape[0]} images, {len(self.questions)} questions and "
                                   f"{len(self.answers)} answers disagree")
        if not self.sources:
            self.sources = ["unknown"] * len(self.questions)

    def subset(self, idx: slice | list[int] | np.ndarray) -> QADataset:
        ii = np.arange(len(self))[idx]
        return QADataset(self.images[ii], [self.questions[i] for i in ii], [self.answers[i] for i in ii],
                         [self.sources[i] for i in ii])


def _font(px: int) -> ImageFont.FreeTypeFont:
    try:
        return ImageFont.truetype(FONT, px)
    except OSError:
        return ImageFont.load_default(px)


def render_number(rng: np.random.Generator, canvas: int, font_px: int, n_digits: int,
                  jitter: float = 0.5) -> tuple[np.ndarray, str]:
    """One image with a random ``n_digits`` number on a light, cluttered background, placed uniformly within
    ``jitter`` x the free space around the centre (1.0: anywhere on the canvas)."""
    value = "".join(str(d) for d in rng.integers(0, 10, n_digits))
    bg = tuple(int(c) for c in rng.integers(200, 256, 3))
    img = Image.new("RGB", (canvas, canvas), bg)
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(2, 6))):  # clutter: faint rectangles and lines
        x0, y0 = (int(v) for v in rng.integers(0, canvas, 2))
        x1, y1 = x0 + int(rng.integers(8, canvas // 3)), y0 + int(rng.integers(8, canvas // 3))
        col = tuple(int(c) for c in rng.integers(150, 240, 3))
        if rng.random() < 0.5:
            draw.rectangle((x0, y0, x1, y1), outline=col)
        else:
            draw.line((x0, y0, x1, y1), fill=col, width=1)
    font = _font(font_px)
    left, top, right, bottom = draw.textbbox((0, 0), value, font=font)
    w, h = right - left, bottom - top
    free_x, free_y = max(0, canvas - w - 4), max(0, canvas - h - 4)
    x = 2 + int(free_x / 2 + (rng.random() - 0.5) * jitter * free_x) - left
    y = 2 + int(free_y / 2 + (rng.random() - 0.5) * jitter * free_y) - top
    ink = tuple(int(c) for c in rng.integers(0, 90, 3))
    draw.text((x, y), value, fill=ink, font=font)
    return np.asarray(img, dtype=np.uint8), value


def make_textimage(n: int, seed: int = 0, split: str = "train", canvas: int = 64, font_px: int = 10,
                   n_digits: int = 1, jitter: float = 0.0) -> QADataset:
    """``n`` deterministic text-in-image samples (``split`` picks an independent random stream)."""
    if n_digits < 1 or font_px < 4 or canvas < 2 * font_px:
        raise QuartetError(f"textimage: need n_digits >= 1, font_px >= 4 and canvas >= 2*font_px "
                           f"(got {n_digits}, {font_px}, {canvas})")
    rng = numpy_rng(seed, zlib.crc32(b"vlm-textimage"), zlib.crc32(split.encode()))
    imgs, qs, ans = [], [], []
    for _ in range(n):
        im, value = render_number(rng, canvas, font_px, n_digits, jitter)
        imgs.append(im)
        qs.append(NUMBER_QUESTIONS[int(rng.integers(len(NUMBER_QUESTIONS)))])
        ans.append(value)
    return QADataset(np.stack(imgs), qs, ans, ["textimage"] * n)


def _square_rgb(images: np.ndarray, size: int) -> np.ndarray:
    if images.ndim == 3:
        images = np.repeat(images[..., None], 3, axis=-1)
    if images.shape[1] == size and images.shape[2] == size:
        return images
    return np.stack([np.asarray(Image.fromarray(im).resize((size, size), Image.Resampling.BICUBIC))
                     for im in images])


def from_real_source(name: str, limit: int | None = None, size: int = 128) -> QADataset:
    """QA pairs from a real ``quartet.data`` source: ``emoji``, ``openclipart``, ``openmoji``, ``fashion_mnist``."""
    from quartet import data

    if name == "fashion_mnist":
        ds = data.load("fashion_mnist", limit=limit)
        imgs = _square_rgb(ds.images, size)
        ans = [ds.class_names[int(i)] for i in ds.labels]
        return QADataset(imgs, ["What kind of clothing is this?"] * len(ans), ans, [name] * len(ans))
    if name in ("emoji", "openmoji", "openclipart"):
        ds = data.load(name, size=size, limit=limit)
        q = "What is this?" if name != "openclipart" else "Describe the image."
        caps = list(ds.captions)
        return QADataset(_square_rgb(ds.images, size), [q] * len(caps), caps, [name] * len(caps))
    raise QuartetError(f"unknown QA source {name!r}; choose textimage, emoji, openmoji, openclipart, fashion_mnist")


def concat(parts: list[QADataset]) -> QADataset:
    if len({p.images.shape[1:] for p in parts}) > 1:
        raise QuartetError("sources have different image sizes; build them with the same --size")
    return QADataset(np.concatenate([p.images for p in parts]), [q for p in parts for q in p.questions],
                     [a for p in parts for a in p.answers], [s for p in parts for s in p.sources])


def save_qa(ds: QADataset, folder: str | Path, manifest: dict | None = None) -> Path:
    """Write ``images.npy``, ``qa.json`` and ``manifest.json`` (each atomically)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / "images.npy") as tmp, open(tmp, "wb") as f:
        np.save(f, ds.images, allow_pickle=False)
    items = [{"question": q, "answer": a, "source": s} for q, a, s in zip(ds.questions, ds.answers, ds.sources)]
    atomic_write_json(folder / "qa.json", items)
    counts: dict[str, int] = {}
    for s in ds.sources:
        counts[s] = counts.get(s, 0) + 1
    atomic_write_json(folder / "manifest.json", {"n": len(ds), "image_shape": list(ds.images.shape[1:]),
                                                 "sources": counts, **(manifest or {})})
    return folder


def load_qa(folder: str | Path) -> QADataset:
    """Read a folder written by :func:`save_qa`; a truncated or inconsistent folder is a clear error."""
    folder = Path(folder)
    if not (folder / "qa.json").is_file() or not (folder / "images.npy").is_file():
        raise QuartetError(f"{folder} is not a QA dataset folder (needs images.npy and qa.json); "
                           "build one with `quartet vlm build-data`")
    try:
        images = np.load(folder / "images.npy", allow_pickle=False)
        items = json.loads((folder / "qa.json").read_text(encoding="utf-8"))
    except (ValueError, OSError, json.JSONDecodeError) as e:
        raise DataCorruptError(f"{folder}: cannot read the dataset ({e}); rebuild it") from e
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise DataCorruptError(f"{folder}/images.npy: expected uint8 [N,H,W,3], got {images.dtype} {images.shape}")
    return QADataset(images, [it["question"] for it in items], [it["answer"] for it in items],
                     [it.get("source", "unknown") for it in items])
