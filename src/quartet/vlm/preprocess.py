"""Image loading and FastVLM preprocessing: pad to square (black), resize shortest side (bicubic), centre crop,
scale to [0, 1] with no mean/std normalisation (as in apple/ml-fastvlm with ``image_aspect_ratio=pad``).

Input handling: palette/greyscale/CMYK/1-bit images convert to RGB; alpha is composited on white (text on a
transparent background stays legible); 16-bit and float images are rescaled to 8 bit by their range; images larger
than ``MAX_PIXELS`` are refused before decoding (decompression bombs), large ones are decoded at reduced size with
``draft``/``reduce`` first; images smaller than ``MIN_SIDE`` pixels on a side are refused.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from quartet.core.errors import QuartetError

MIN_SIDE = 8  # px: below this there is nothing to read
MAX_PIXELS = 200_000_000  # px: refuse larger images before decoding them


def _to_uint8_rgb(img: Image.Image, name: str) -> Image.Image:
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        scale = 255.0 / (hi - lo) if hi > lo else 0.0
        img = Image.fromarray(((arr - lo) * scale).round().astype(np.uint8), mode="L")
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode in ("RGB", "L") and "transparency" in img.info):
        rgba = img.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(bg, rgba)
    if img.mode != "RGB":
        try:
            img = img.convert("RGB")
        except (ValueError, OSError) as e:
            raise QuartetError(f"image {name}: cannot convert mode {img.mode!r} to RGB ({e})") from e
    return img


def load_image(src: str | Path | Image.Image | np.ndarray, target: int | None = None) -> Image.Image:
    """An RGB PIL image from a path, PIL image or array (HxW, HxWx1/3/4; uint8, uint16 or float in [0,1]).

    ``target`` (the model resolution) lets huge files decode at a reduced size. Errors name the input."""
    name = str(src) if isinstance(src, (str, Path)) else type(src).__name__
    if isinstance(src, np.ndarray):
        arr = src
        if arr.ndim == 3 and arr.shape[-1] == 1:
            arr = arr[..., 0]
        if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] not in (3, 4)):
            raise QuartetError(f"image array of shape {arr.shape}: expected HxW, HxWx3 or HxWx4")
        if arr.dtype == np.uint16:
            arr = (arr / 257.0).round().astype(np.uint8)
        elif arr.dtype.kind == "f":
            arr = (np.clip(arr, 0.0, 1.0) * 255.0).round().astype(np.uint8)
        elif arr.dtype != np.uint8:
            raise QuartetError(f"image array dtype {arr.dtype}: expected uint8, uint16 or float")
        img = Image.fromarray(arr)
    elif isinstance(src, Image.Image):
        img = src
    else:
        p = Path(src)
        if not p.is_file():
            raise QuartetError(f"image {p} not found")
        old = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = MAX_PIXELS
        try:
            img = Image.open(p)
            if img.width * img.height > MAX_PIXELS:
                raise QuartetError(f"image {p} is {img.width}x{img.height} (> {MAX_PIXELS:,} px); downscale it first")
            if target and min(img.size) > 4 * target:
                img.draft("RGB", (2 * target, 2 * target))  # JPEG: decode at reduced scale
            img.load()
        except Image.DecompressionBombError as e:
            raise QuartetError(f"image {p} is too large to decode safely ({e}); downscale it first") from e
        except (OSError, SyntaxError) as e:
            raise QuartetError(f"image {p} cannot be read: {e}") from e
        finally:
            Image.MAX_IMAGE_PIXELS = old
    if min(img.size) < MIN_SIDE:
        raise QuartetError(f"image {name} is {img.width}x{img.height}; need at least {MIN_SIDE} px on each side")
    img = _to_uint8_rgb(img, name)
    if target and min(img.size) > 4 * target:
        factor = min(img.size) // (2 * target)
        img = img.reduce(max(1, factor))
    return img


def expand_to_square(img: Image.Image, fill: tuple[int, int, int] = (0, 0, 0)) -> Image.Image:
    """Pad the shorter side symmetrically with ``fill`` so the image is square (no content is cropped)."""
    w, h = img.size
    if w == h:
        return img
    side = max(w, h)
    out = Image.new("RGB", (side, side), fill)
    out.paste(img, ((side - w) // 2, (side - h) // 2))
    return out


def preprocess(src: str | Path | Image.Image | np.ndarray, resolution: int) -> torch.Tensor:
    """``(3, R, R)`` float32 in [0, 1]: pad to square, bicubic resize of the shortest side to R, centre crop."""
    img = expand_to_square(load_image(src, target=resolution))
    w, h = img.size
    s = resolution / min(w, h)
    nw, nh = max(resolution, round(w * s)), max(resolution, round(h * s))
    img = img.resize((nw, nh), Image.Resampling.BICUBIC)
    left, top = (nw - resolution) // 2, (nh - resolution) // 2
    img = img.crop((left, top, left + resolution, top + resolution))
    arr = np.asarray(img, dtype=np.float32) / 255.0
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()


def preprocess_batch(images: list, resolution: int) -> torch.Tensor:
    """``(B, 3, R, R)`` from a list of anything :func:`preprocess` takes."""
    return torch.stack([preprocess(im, resolution) for im in images])
