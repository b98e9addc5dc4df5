"""Contact sheets: a PNG of a dataset's first items (images with captions) or of a corpus (first documents and a
document-length histogram), for eyeballing what an importer produced."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from quartet.data.types import Corpus, ImageTextDataset, LabelledImages

CELL = 96
"""Pixel side of one image in the sheet."""
CAPTION_LINES = 3
LINE_PX = 11


def _font() -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default()


def image_sheet(ds: ImageTextDataset | LabelledImages, n: int = 64, columns: int = 8) -> Image.Image:
    """A grid of the first ``n`` images with their captions (or class names) wrapped underneath."""
    n = min(n, len(ds))
    images = ds.rgb() if isinstance(ds, LabelledImages) else ds.images
    if isinstance(ds, ImageTextDataset):
        texts = ds.captions[:n]
    else:
        texts = [ds.class_names[int(label)] for label in ds.labels[:n]]
    columns = max(1, min(columns, n))
    rows = max(1, math.ceil(n / columns))
    cell_h = CELL + CAPTION_LINES * LINE_PX + 4
    sheet = Image.new("RGB", (columns * CELL, rows * cell_h), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    font = _font()
    chars = max(8, CELL // 6)
    for i in range(n):
        x, y = (i % columns) * CELL, (i // columns) * cell_h
        tile = Image.fromarray(np.ascontiguousarray(images[i])).resize((CELL - 4, CELL - 4), Image.Resampling.NEAREST
                                                                        if images.shape[1] < 32 else
                                                                        Image.Resampling.BILINEAR)
        sheet.paste(tile, (x + 2, y + 2))
        for j, line in enumerate(textwrap.wrap(texts[i], chars)[:CAPTION_LINES]):
            draw.text((x + 2, y + CELL + j * LINE_PX), line, fill=(0, 0, 0), font=font)
    return sheet


def corpus_sheet(corpus: Corpus, n: int = 16, width: int = 900) -> Image.Image:
    """The first ``n`` documents (id, title, start of text) above a histogram of document lengths (log2 bins of
    characters), with count, median and p95 length."""
    lengths = np.array([len(t) for t in corpus], dtype=np.int64)
    font = _font()
    lines = [f"{corpus.name}: {len(corpus):,} documents, {int(lengths.sum()):,} characters; "
             f"median {int(np.median(lengths)) if len(lengths) else 0:,}, "
             f"p95 {int(np.percentile(lengths, 95)) if len(lengths) else 0:,}, max {int(lengths.max(initial=0)):,}",
             ""]
    for d in corpus.docs[:n]:
        snippet = " ".join(d.text.split())[:140]
        lines.append(f"[{d.id}] {d.title}: {snippet}")
    hist_h = 220
    text_h = (len(lines) + 1) * (LINE_PX + 2)
    img = Image.new("RGB", (width, text_h + hist_h + 30), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    for i, line in enumerate(lines):
        draw.text((8, 6 + i * (LINE_PX + 2)), line[: width // 6], fill=(0, 0, 0), font=font)
    if len(lengths):
        bins = np.arange(0, int(np.log2(lengths.max() + 1)) + 2)
        counts, _ = np.histogram(np.log2(lengths + 1), bins=bins)
        top = text_h + 10
        bar_w = (width - 40) / len(counts)
        peak = max(1, int(counts.max()))
        for k, c in enumerate(counts):
            h = int((hist_h - 30) * c / peak)
            x0 = 20 + k * bar_w
            draw.rectangle([x0, top + hist_h - 30 - h, x0 + bar_w - 2, top + hist_h - 30], fill=(60, 100, 200))
            draw.text((x0, top + hist_h - 26), f"2^{k}", fill=(0, 0, 0), font=font)
        draw.text((20, top - 4), "document length (characters, log2 bins)", fill=(0, 0, 0), font=font)
    return img


def save_sheet(img: Image.Image, path: str | Path) -> Path:
    """Save a sheet as PNG, creating the folder."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    img.save(p)
    return p
