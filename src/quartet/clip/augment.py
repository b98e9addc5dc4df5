"""Replayable image augmentation for dataset reinforcement (MobileCLIP, arXiv 2311.17049 §3; MobileCLIP2 2508.20691).

Reinforcement stores the teachers' embeddings of *augmented* views, so training must rebuild exactly the view the
teachers saw. :func:`augment` draws a view and returns a compact :class:`AugRecord` holding every random choice;
:func:`replay` rebuilds the view from the image bytes and the record, bit-identical at the stored crop size.

Transforms, in this fixed order:

1. RandomResizedCrop (scale ``(0.08, 1)``, ratio ``(3/4, 4/3)``, 10 attempts then a centre crop; the same algorithm
   as ``torchvision.transforms.RandomResizedCrop.get_params``, drawn from a NumPy generator). The box
   ``[i, j, h, w]`` is in original pixels; the crop is resized (bilinear) to the output size.
2. RandAugment (Müller & Hutter 2019 / torchvision ``RandAugment``): ``n_ops`` ops drawn uniformly with replacement
   from :data:`OPS`, magnitude bin ``magnitude`` of ``num_bins``, signed ops negated with probability 1/2. The ops
   are torchvision's functional ops on PIL images (nearest interpolation, constant fill), applied at the output size.

Record layout (the spec's ``[[i, j, h, w], [[op_idx, magnitude], ...]]``): ``magnitude`` is the *signed bin index*
(``-9`` = bin 9 negated), not a float, so records are exact integers and ~30 bytes of JSON each (30 records ~ 0.9 KB
vs the reference's ~1.9 KB). Bins map to values through the op table and the :class:`AugConfig` stored in the
dataset metadata. Translations are a fraction of the output size (torchvision: ``150/331 * size``), so replaying at
a student's resolution gives the same geometry: ``replay(..., out_size=s)`` equals the RandAugment ops applied to the
same crop box resized to ``s`` (exactly, by construction), which differs from resizing the stored-size view only by
interpolation error.

Replay is valid only on byte-identical source images: :func:`replay` checks the sha256 of the bytes and refuses a
mismatch.
"""

from __future__ import annotations

import functools
import io
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from quartet.core.errors import DataCorruptError, QuartetError
from quartet.core.io import sha256_bytes

OPS: tuple[str, ...] = (
    "Identity", "ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate", "Brightness", "Color", "Contrast",
    "Sharpness", "Posterize", "Solarize", "AutoContrast", "Equalize",
)
"""RandAugment op list in index order (the ``op_idx`` of a record)."""

_SIGNED = frozenset({"ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate", "Brightness", "Color", "Contrast",
                     "Sharpness"})


@dataclass(frozen=True)
class AugConfig:
    """Parameters of the augmentation pipeline; stored in the reinforced dataset's metadata.

    ``crop_size`` is the side (pixels) of the views the teachers see; every teacher's input size must be <= it."""

    crop_size: int = 224
    scale: tuple[float, float] = (0.08, 1.0)
    ratio: tuple[float, float] = (3.0 / 4.0, 4.0 / 3.0)
    n_ops: int = 2
    magnitude: int = 9
    num_bins: int = 31
    fill: tuple[int, int, int] = (0, 0, 0)

    def __post_init__(self) -> None:
        if self.crop_size < 8:
            raise QuartetError(f"AugConfig.crop_size must be >= 8 pixels, got {self.crop_size}")
        if not (0 < self.scale[0] <= self.scale[1] <= 1.0):
            raise QuartetError(f"AugConfig.scale must satisfy 0 < lo <= hi <= 1, got {self.scale}")
        if not (0 < self.ratio[0] <= self.ratio[1]):
            raise QuartetError(f"AugConfig.ratio must satisfy 0 < lo <= hi, got {self.ratio}")
        if self.num_bins < 2 or not (0 <= self.magnitude < self.num_bins):
            raise QuartetError(
                f"AugConfig: need 0 <= magnitude < num_bins (>= 2), got {self.magnitude}/{self.num_bins}")
        if self.n_ops < 0:
            raise QuartetError(f"AugConfig.n_ops must be >= 0, got {self.n_ops}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AugConfig:
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(d) - known)
        if unknown:
            raise QuartetError(f"augmentation config: unknown key(s) {unknown}; valid keys are {sorted(known)}")
        kw = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        return cls(**kw)


@dataclass(frozen=True)
class AugRecord:
    """Every random choice of one view: crop box ``(i, j, h, w)`` in original pixels (top, left, height, width) and
    RandAugment ops ``((op_idx, signed_bin), ...)``. ``num_bins`` and ``fill`` come from the :class:`AugConfig`
    (not serialised per record)."""

    crop: tuple[int, int, int, int]
    ops: tuple[tuple[int, int], ...] = ()
    num_bins: int = field(default=31, compare=False)
    fill: tuple[int, int, int] = field(default=(0, 0, 0), compare=False)

    def to_list(self) -> list[Any]:
        """``[[i, j, h, w], [[op_idx, signed_bin], ...]]`` (the ``param_aug`` layout)."""
        return [list(self.crop), [list(o) for o in self.ops]]

    def to_json(self) -> str:
        return json.dumps(self.to_list(), separators=(",", ":"))

    @classmethod
    def from_list(cls, obj: Any, num_bins: int = 31, fill: Sequence[int] = (0, 0, 0)) -> AugRecord:
        try:
            crop, ops = obj
            i, j, h, w = (int(v) for v in crop)
            parsed = tuple((int(a), int(b)) for a, b in ops)
        except (TypeError, ValueError) as e:
            raise DataCorruptError(f"augmentation record {obj!r} is not [[i, j, h, w], [[op, bin], ...]]") from e
        if h <= 0 or w <= 0 or i < 0 or j < 0:
            raise DataCorruptError(f"augmentation record {obj!r}: crop box must have i, j >= 0 and h, w > 0")
        for op, b in parsed:
            if not (0 <= op < len(OPS)) or abs(b) >= num_bins:
                raise DataCorruptError(f"augmentation record {obj!r}: op {op} / bin {b} out of range")
        return cls((i, j, h, w), parsed, num_bins, tuple(int(v) for v in fill))  # type: ignore[arg-type]

    @classmethod
    def from_json(cls, text: str, num_bins: int = 31, fill: Sequence[int] = (0, 0, 0)) -> AugRecord:
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            raise DataCorruptError(f"augmentation record is not JSON: {text[:80]!r}") from e
        return cls.from_list(obj, num_bins, fill)


def records_to_json(records: Sequence[AugRecord]) -> str:
    """A list of records as compact JSON (what a shard's ``.paug.json`` holds under ``param_aug``)."""
    return json.dumps([r.to_list() for r in records], separators=(",", ":"))


# ----------------------------------------------------------------------------------------------------------------
# Sampling


def _sample_crop(rng: np.random.Generator, width: int, height: int, cfg: AugConfig) -> tuple[int, int, int, int]:
    """RandomResizedCrop box: torchvision's ``get_params`` algorithm on a NumPy generator."""
    area = width * height
    log_ratio = (math.log(cfg.ratio[0]), math.log(cfg.ratio[1]))
    for _ in range(10):
        target_area = area * rng.uniform(cfg.scale[0], cfg.scale[1])
        aspect = math.exp(rng.uniform(log_ratio[0], log_ratio[1]))
        w = round(math.sqrt(target_area * aspect))
        h = round(math.sqrt(target_area / aspect))
        if 0 < w <= width and 0 < h <= height:
            i = int(rng.integers(0, height - h + 1))
            j = int(rng.integers(0, width - w + 1))
            return i, j, h, w
    in_ratio = width / height
    if in_ratio < cfg.ratio[0]:
        w = width
        h = round(w / cfg.ratio[0])
    elif in_ratio > cfg.ratio[1]:
        h = height
        w = round(h * cfg.ratio[1])
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def sample_record(rng: np.random.Generator, width: int, height: int, cfg: AugConfig) -> AugRecord:
    """Draw one view's parameters for an image of ``width`` x ``height`` pixels."""
    if width < 1 or height < 1:
        raise QuartetError(f"cannot augment an empty image ({width}x{height})")
    crop = _sample_crop(rng, width, height, cfg)
    ops = []
    for _ in range(cfg.n_ops):
        op = int(rng.integers(0, len(OPS)))
        b = cfg.magnitude
        if OPS[op] in _SIGNED and rng.random() < 0.5:
            b = -b
        ops.append((op, b))
    return AugRecord(crop, tuple(ops), cfg.num_bins, tuple(cfg.fill))  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------------------------------
# Applying


@functools.lru_cache(maxsize=256)
def _magnitudes(op: str, num_bins: int, size: int) -> tuple[float, ...]:
    import torch

    if op in ("ShearX", "ShearY"):
        t = torch.linspace(0.0, 0.3, num_bins)
    elif op in ("TranslateX", "TranslateY"):
        t = torch.linspace(0.0, 150.0 / 331.0 * size, num_bins)
    elif op == "Rotate":
        t = torch.linspace(0.0, 30.0, num_bins)
    elif op in ("Brightness", "Color", "Contrast", "Sharpness"):
        t = torch.linspace(0.0, 0.9, num_bins)
    elif op == "Posterize":
        t = 8 - (torch.arange(num_bins) / ((num_bins - 1) / 4)).round().int()
    elif op == "Solarize":
        t = torch.linspace(255.0, 0.0, num_bins)
    else:
        t = torch.zeros(num_bins)
    return tuple(float(v) for v in t.tolist())


def op_value(op: str, signed_bin: int, num_bins: int, size: int) -> float:
    """The magnitude (in the op's own units) of ``signed_bin`` for a square image of side ``size``: torchvision's
    RandAugment table, computed the same way (float32 ``linspace``) so values match it exactly. Shear 0..0.3,
    translate 0..150/331*size px, rotate 0..30 deg, enhance 0..0.9, posterize 8..4 bits, solarize 255..0."""
    v = _magnitudes(op, num_bins, size)[abs(signed_bin)]
    return -v if signed_bin < 0 else v


def _apply_op(img: Image.Image, op: str, value: float, fill: list[float]) -> Image.Image:
    import torchvision.transforms.functional as F
    from torchvision.transforms import InterpolationMode

    nearest = InterpolationMode.NEAREST
    if op == "ShearX":
        return F.affine(img, angle=0.0, translate=[0, 0], scale=1.0, shear=[math.degrees(math.atan(value)), 0.0],
                        interpolation=nearest, fill=fill, center=[0, 0])
    if op == "ShearY":
        return F.affine(img, angle=0.0, translate=[0, 0], scale=1.0, shear=[0.0, math.degrees(math.atan(value))],
                        interpolation=nearest, fill=fill, center=[0, 0])
    if op == "TranslateX":
        return F.affine(img, angle=0.0, translate=[int(value), 0], scale=1.0, shear=[0.0, 0.0],
                        interpolation=nearest, fill=fill)
    if op == "TranslateY":
        return F.affine(img, angle=0.0, translate=[0, int(value)], scale=1.0, shear=[0.0, 0.0],
                        interpolation=nearest, fill=fill)
    if op == "Rotate":
        return F.rotate(img, value, interpolation=nearest, fill=fill)
    if op == "Brightness":
        return F.adjust_brightness(img, 1.0 + value)
    if op == "Color":
        return F.adjust_saturation(img, 1.0 + value)
    if op == "Contrast":
        return F.adjust_contrast(img, 1.0 + value)
    if op == "Sharpness":
        return F.adjust_sharpness(img, 1.0 + value)
    if op == "Posterize":
        return F.posterize(img, int(value))
    if op == "Solarize":
        return F.solarize(img, value)
    if op == "AutoContrast":
        return F.autocontrast(img)
    if op == "Equalize":
        return F.equalize(img)
    return img


def crop_resize(img: Image.Image, crop: Sequence[int], out_size: int) -> Image.Image:
    """The crop box ``(i, j, h, w)`` of ``img`` resized (bilinear) to ``out_size`` x ``out_size``; boxes reaching
    past the image are refused."""
    i, j, h, w = (int(v) for v in crop)
    if i + h > img.height or j + w > img.width:
        raise DataCorruptError(
            f"crop box {list(crop)} reaches past the {img.width}x{img.height} image; record and image do not match"
        )
    return img.crop((j, i, j + w, i + h)).resize((out_size, out_size), Image.Resampling.BILINEAR)


def apply_record(img: Image.Image, record: AugRecord, out_size: int) -> Image.Image:
    """Rebuild the view described by ``record`` from ``img`` (converted to RGB) at ``out_size`` pixels."""
    if out_size < 1:
        raise QuartetError(f"out_size must be positive, got {out_size}")
    view = crop_resize(img.convert("RGB") if img.mode != "RGB" else img, record.crop, out_size)
    fill = [float(v) for v in record.fill]
    for op_idx, b in record.ops:
        op = OPS[op_idx]
        view = _apply_op(view, op, op_value(op, b, record.num_bins, out_size), fill)
    return view


def augment(img: Image.Image, rng: np.random.Generator, cfg: AugConfig) -> tuple[Image.Image, AugRecord]:
    """Draw a view of ``img`` at ``cfg.crop_size`` and the record that rebuilds it."""
    rec = sample_record(rng, img.width, img.height, cfg)
    return apply_record(img, rec, cfg.crop_size), rec


def decode_image(image_bytes: bytes, what: str = "image") -> Image.Image:
    """Decode image bytes to an RGB PIL image, with a :class:`DataCorruptError` naming ``what`` on failure."""
    try:
        img = Image.open(io.BytesIO(image_bytes))
        img.load()
    except Exception as e:
        raise DataCorruptError(f"{what}: cannot decode image bytes ({type(e).__name__}: {e})") from e
    return img.convert("RGB") if img.mode != "RGB" else img


def replay(image_bytes: bytes, record: AugRecord, out_size: int, expected_sha256: str | None = None) -> Image.Image:
    """Rebuild a stored view from the source image bytes; raises :class:`DataCorruptError` when the bytes' sha256
    differs from ``expected_sha256`` (replaying on other bytes would silently give a different view)."""
    if expected_sha256 is not None:
        got = sha256_bytes(image_bytes)
        if got != expected_sha256:
            raise DataCorruptError(
                f"image sha256 {got[:16]}... differs from the stored {expected_sha256[:16]}...: the stored "
                "augmentations and embeddings were made from other bytes; re-run reinforcement on these images"
            )
    return apply_record(decode_image(image_bytes), record, out_size)
