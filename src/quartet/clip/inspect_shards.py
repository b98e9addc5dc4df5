"""Inspection and validation of reinforced (and plain image-text) shards: ``quartet clip inspect``.

Every sample is checked: all members present and parseable, image bytes matching the stored sha256 and decodable,
``image_emb [n_aug, D]``, ``text_emb [1, D]``, ``syn_text_emb [n_syn, D]`` with ``D`` the teachers' total dim,
``n_aug`` records whose crop boxes fit the image, ``n_syn`` synthetic captions, finite values, and each teacher's
block of unit norm (tolerance by storage dtype). Shards are checked against the manifest (counts, sha256) and keys
and uids must be unique. The first bad sample is named in a :class:`DataCorruptError` (``strict=True``), or all
problems are collected.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from quartet.clip.reinforced_data import (
    MANIFEST,
    METADATA,
    ReinforcedSample,
    load_reinforced_metadata,
    parse_reinforced,
    read_manifest,
)
from quartet.clip.shards import group_members, list_shards, parse_sample
from quartet.core.errors import DataCorruptError, QuartetError
from quartet.core.io import sha256_bytes, sha256_file

NORM_TOL = {"fp32": 1e-3, "fp16": 5e-3, "bf16": 2e-2}
"""Allowed deviation of each teacher block's L2 norm from 1, per storage dtype."""


@dataclass
class InspectReport:
    """What :func:`inspect_reinforced` found."""

    kind: str
    num_shards: int = 0
    num_samples: int = 0
    total_bytes: int = 0
    emb_bytes: int = 0
    dims: list[int] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    n_aug: int = 0
    n_syn: int = 0
    emb_dtype: str = ""
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        per = self.total_bytes / max(1, self.num_samples)
        lines = [f"{self.kind}: {self.num_samples} samples in {self.num_shards} shards, "
                 f"{per:,.0f} bytes/sample on disk"]
        if self.kind == "reinforced":
            lines.append(f"teachers {self.names} dims {self.dims} (total {sum(self.dims)}), n_aug {self.n_aug}, "
                         f"n_syn {self.n_syn}, embeddings {self.emb_dtype}: "
                         f"{self.emb_bytes / max(1, self.num_samples):,.0f} bytes/sample")
        lines.append("OK: every sample validated" if self.ok else f"{len(self.problems)} problem(s):")
        lines += [f"  {p}" for p in self.problems[:20]]
        return "\n".join(lines)


def validate_sample(s: ReinforcedSample, meta: dict[str, Any], where: str) -> None:
    """Raise :class:`DataCorruptError` naming ``where`` when the sample is inconsistent with ``meta``."""
    t = meta["teachers"]
    d, n_aug, n_syn = int(t["total_dim"]), int(meta["n_aug"]), int(meta["n_syn"])
    if sha256_bytes(s.image_bytes) != s.sha256:
        raise DataCorruptError(f"{where}: image bytes do not match the stored sha256")
    try:
        with Image.open(io.BytesIO(s.image_bytes)) as im:
            im.load()
            width, height = im.size
    except Exception as e:
        raise DataCorruptError(f"{where}: image does not decode ({type(e).__name__})") from e
    for name, arr, rows in (("image_emb", s.image_emb, n_aug), ("text_emb", s.text_emb, 1),
                            ("syn_text_emb", s.syn_text_emb, n_syn)):
        if arr.shape != (rows, d):
            raise DataCorruptError(f"{where}: {name} has shape {arr.shape}, expected ({rows}, {d})")
        if not np.isfinite(arr).all():
            raise DataCorruptError(f"{where}: {name} has non-finite values")
        tol = NORM_TOL.get(meta.get("emb_dtype", "fp32"), 2e-2)
        for k, (off, dim) in enumerate(zip(t["offsets"], t["dims"])):
            norms = np.linalg.norm(arr[:, off:off + dim], axis=1)
            if rows and np.abs(norms - 1).max() > tol:
                raise DataCorruptError(f"{where}: {name} block of teacher {t['names'][k]!r} is not unit-norm "
                                       f"(norms {np.round(norms, 3).tolist()[:4]})")
    if len(s.param_aug) != n_aug:
        raise DataCorruptError(f"{where}: {len(s.param_aug)} augmentation records, expected {n_aug}")
    for r in s.param_aug:
        i, j, h, w = r.crop
        if i + h > height or j + w > width:
            raise DataCorruptError(f"{where}: crop box {list(r.crop)} outside the {width}x{height} image")
    if len(s.syn_texts) != n_syn:
        raise DataCorruptError(f"{where}: {len(s.syn_texts)} synthetic captions, expected {n_syn}")
    if not s.caption.strip():
        raise DataCorruptError(f"{where}: empty caption")


def _fail(report: InspectReport, msg: str, strict: bool) -> None:
    if strict:
        raise DataCorruptError(msg)
    report.problems.append(msg)


def inspect_reinforced(path: str | Path, strict: bool = False) -> InspectReport:
    """Validate every sample of a reinforced folder (or an image-text shard folder / shard file)."""
    p = Path(path)
    if p.is_dir() and (p / METADATA).is_file():
        return _inspect_reinforced_dir(p, strict)
    return _inspect_image_text(p, strict)


def _inspect_reinforced_dir(root: Path, strict: bool) -> InspectReport:
    meta = load_reinforced_metadata(root)
    t = meta["teachers"]
    rep = InspectReport("reinforced", dims=list(t["dims"]), names=list(t["names"]), n_aug=int(meta["n_aug"]),
                        n_syn=int(meta["n_syn"]), emb_dtype=str(meta["emb_dtype"]))
    if not (root / MANIFEST).is_file():
        raise QuartetError(f"{root}: no {MANIFEST}: the reinforcement has not finished (re-run it to finish)")
    seen_keys: set[str] = set()
    seen_uids: set[str] = set()
    for row in read_manifest(root):
        shard = root / row["name"]
        rep.num_shards += 1
        if not shard.is_file():
            _fail(rep, f"{shard.name}: listed in {MANIFEST} but missing", strict)
            continue
        rep.total_bytes += shard.stat().st_size
        if row.get("sha256") and sha256_file(shard) != row["sha256"]:
            _fail(rep, f"{shard.name}: sha256 differs from {MANIFEST} (modified or corrupt)", strict)
        n = 0
        try:
            for key, members in group_members(shard):
                where = f"{shard.name}:{key}"
                n += 1
                try:
                    s = parse_reinforced(shard, key, members, meta)
                    validate_sample(s, meta, f"{where} (uid {s.uid!r})")
                    if key in seen_keys or s.uid in seen_uids:
                        raise DataCorruptError(f"{where}: duplicate key or uid {s.uid!r}")
                    seen_keys.add(key)
                    seen_uids.add(s.uid)
                    rep.emb_bytes += len(members["npz"])
                except DataCorruptError as e:
                    _fail(rep, str(e), strict)
        except DataCorruptError as e:
            _fail(rep, str(e), strict)
        rep.num_samples += n
        if n != int(row["count"]):
            _fail(rep, f"{shard.name}: {n} samples but {MANIFEST} says {row['count']}", strict)
    return rep


def _inspect_image_text(path: Path, strict: bool) -> InspectReport:
    rep = InspectReport("image-text")
    seen: set[str] = set()
    for shard in list_shards(path):
        rep.num_shards += 1
        rep.total_bytes += shard.stat().st_size
        try:
            for key, members in group_members(shard):
                rep.num_samples += 1
                try:
                    s = parse_sample(shard, key, members)
                    if s.uid in seen:
                        raise DataCorruptError(f"{shard.name}:{key}: duplicate uid {s.uid!r}")
                    seen.add(s.uid)
                    Image.open(io.BytesIO(s.image_bytes)).load()
                except DataCorruptError as e:
                    _fail(rep, str(e), strict)
                except Exception as e:
                    _fail(rep, f"{shard.name}:{key}: image does not decode ({type(e).__name__})", strict)
        except DataCorruptError as e:
            _fail(rep, str(e), strict)
    return rep
