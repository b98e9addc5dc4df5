"""Training batches from reinforced shards: one random stored augmentation and one random synthetic caption per
sample per step, replayed at the student's resolution (MobileCLIP 2311.17049 §3.3).

The shards are read once into a :class:`ReinforcedTable` (decoded images, augmentation records, teacher embeddings
as float32 arrays; ~40 KB per sample with 10 augmentations x 2 teachers x 128 dims), so a step costs one crop +
RandAugment replay per image and a gather of stored rows -- the same work as plain CLIP's augmentation. Sampling is
a pure function of ``(seed, step)``: epoch permutations and per-sample choices come from counter-based streams, so a
resumed run sees exactly the batches it would have seen, and DDP ranks take contiguous slices of the same global
batch (a 2-rank run equals a 1-rank run with the same global batch).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from quartet.core.errors import DataCorruptError, QuartetError
from quartet.core.io import sha256_bytes
from quartet.core.seed import numpy_rng

_STREAM_PERM, _STREAM_CHOICE = 11, 12


@dataclass
class ReinforcedTable:
    """All samples of a reinforced dataset in memory (see ``quartet.clip.reinforced_data`` for the shard format)."""

    keys: list[str]
    images: list[Image.Image]
    captions: list[str]
    syn_texts: list[list[str]]
    aug: list[list[Any]]  # AugRecord per stored augmentation
    image_emb: list[np.ndarray]  # [N_aug, D] per sample
    text_emb: np.ndarray  # [N, D]
    syn_emb: list[np.ndarray]  # [N_syn, D] per sample
    teacher_names: list[str]
    teacher_dims: list[int]
    teacher_scales: list[float]
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def crop_size(self) -> int:
        return int(self.meta.get("crop_size", 0) or self.images[0].size[0])

    def select_teachers(self, which: Sequence[int]) -> ReinforcedTable:
        """Keep only the teachers at positions ``which`` (e.g. ``[0]`` for the single-teacher ablation)."""
        which = list(which)
        if not which or any(not 0 <= k < len(self.teacher_dims) for k in which):
            raise QuartetError(f"teacher indices {which} out of range for {len(self.teacher_dims)} stored teachers")
        starts = np.cumsum([0, *self.teacher_dims])
        cols = np.concatenate([np.arange(starts[k], starts[k + 1]) for k in which])
        return replace(self, image_emb=[e[:, cols] for e in self.image_emb], text_emb=self.text_emb[:, cols],
                       syn_emb=[e[:, cols] for e in self.syn_emb],
                       teacher_names=[self.teacher_names[k] for k in which],
                       teacher_dims=[self.teacher_dims[k] for k in which],
                       teacher_scales=[self.teacher_scales[k] for k in which])

    def limit(self, n_aug: int = 0, n_syn: int = 0) -> ReinforcedTable:
        """Use only the first ``n_aug`` stored augmentations / ``n_syn`` synthetic captions (0 = all)."""
        t = self
        if n_aug:
            t = replace(t, aug=[a[:n_aug] for a in t.aug], image_emb=[e[:n_aug] for e in t.image_emb])
        if n_syn:
            t = replace(t, syn_texts=[s[:n_syn] for s in t.syn_texts], syn_emb=[e[:n_syn] for e in t.syn_emb])
        return t

    def stored_as(self, dtype: str) -> ReinforcedTable:
        """Round-trip the teacher embeddings through ``fp16``/``bf16`` storage (``fp32`` = unchanged)."""
        if dtype == "fp32":
            return self
        tdt = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(dtype)
        if tdt is None:
            raise QuartetError(f"storage dtype {dtype!r} unknown; use fp32, fp16 or bf16")

        def rt(a: np.ndarray) -> np.ndarray:
            return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).to(tdt).float().numpy()

        return replace(self, image_emb=[rt(e) for e in self.image_emb], text_emb=rt(self.text_emb),
                       syn_emb=[rt(e) for e in self.syn_emb])


def load_table(path: str | Path | Sequence[str | Path], limit: int | None = None) -> ReinforcedTable:
    """Read every sample of the reinforced dataset at ``path`` (a finished folder, or one shard file of it),
    checking each image's sha256."""
    from quartet.clip.augment import decode_image
    from quartet.clip.reinforced_data import iter_reinforced, load_reinforced_metadata

    src: Path | list[Path]
    if isinstance(path, (list, tuple)) or Path(path).is_file():  # finished shards of a (maybe unfinished) folder
        src = [Path(p) for p in (path if isinstance(path, (list, tuple)) else [path])]
        path = src[0].parent
        meta = load_reinforced_metadata(path)
    else:
        path = src = Path(path)
        meta = load_reinforced_metadata(path)
    meta_d = meta if isinstance(meta, dict) else getattr(meta, "__dict__", {})
    names = list(_first(meta_d, "teacher_names", "names"))
    dims = [int(d) for d in _first(meta_d, "teacher_dims", "dims")]
    scales = [float(s) for s in _first(meta_d, "teacher_scales", "scales", "logit_scales")]
    keys, images, caps, syn, aug, iemb, temb, semb = [], [], [], [], [], [], [], []
    for s in iter_reinforced(src, shuffle=False, seed=0, rank=0, world_size=1):
        if limit is not None and len(keys) >= limit:
            break
        if s.sha256 and sha256_bytes(s.image_bytes) != s.sha256:
            raise DataCorruptError(f"{path}:{s.key}: image bytes do not match the stored sha256; the stored "
                                   "augmentations cannot be replayed on them (re-run the reinforcement)")
        img = decode_image(s.image_bytes, what=f"{path}:{s.key}")
        keys.append(s.key)
        images.append(img.convert("RGB"))
        caps.append(s.caption)
        syn.append(list(s.syn_texts))
        aug.append(list(s.param_aug))
        iemb.append(np.asarray(s.image_emb, dtype=np.float32))
        temb.append(np.asarray(s.text_emb, dtype=np.float32).reshape(-1))
        semb.append(np.asarray(s.syn_text_emb, dtype=np.float32))
    if not keys:
        raise QuartetError(f"no reinforced samples under {path}; run `quartet clip reinforce` first")
    crop = meta_d.get("aug", {}) if isinstance(meta_d.get("aug"), dict) else {}
    info = {"path": str(path), "crop_size": int(crop.get("crop_size", crop.get("size", 0)) or 0), "raw": meta_d}
    return ReinforcedTable(keys, images, caps, syn, aug, iemb, np.stack(temb), semb, names, dims, scales, info)


def _first(d: dict[str, Any], *names: str) -> Any:
    for n in names:
        if n in d and d[n] is not None:
            return d[n]
        for sub in ("teachers", "ensemble"):
            if isinstance(d.get(sub), dict) and n in d[sub]:
                return d[sub][n]
    raise QuartetError(f"reinforced metadata lacks any of {names}; found keys {sorted(d)}")


def global_indices(n: int, batch_size: int, step: int, seed: int) -> np.ndarray:
    """Sample indices of global batch ``step``: consecutive slices of per-epoch permutations (drop-last free)."""
    out = []
    pos = step * batch_size
    while len(out) < batch_size:
        epoch, off = divmod(pos, n)
        perm = numpy_rng(seed, _STREAM_PERM, epoch).permutation(n)
        take = min(batch_size - len(out), n - off)
        out.extend(perm[off:off + take].tolist())
        pos += take
    return np.asarray(out, dtype=np.int64)


def rank_slice(batch: np.ndarray, rank: int, world_size: int) -> slice:
    per = len(batch) // world_size
    if per * world_size != len(batch):
        raise QuartetError(f"global batch {len(batch)} is not divisible by world size {world_size}")
    return slice(rank * per, (rank + 1) * per)


@dataclass
class Batch:
    """One (local) training batch. Teacher rows are present for reinforced mode; ``views`` for online mode."""

    images: torch.Tensor
    text_tokens: torch.Tensor
    syn_tokens: torch.Tensor | None
    teacher_image: torch.Tensor | None
    teacher_text: torch.Tensor | None
    teacher_syn: torch.Tensor | None
    views: list[Image.Image] | None = None
    captions: list[str] | None = None
    syn_captions: list[str] | None = None


def make_batch(table: ReinforcedTable, step: int, batch_size: int, seed: int, image_size: int,
               mean: Sequence[float], std: Sequence[float], tokenize: Any, *, with_syn: bool = True,
               with_teacher: bool = True, keep_views: bool = False, rank: int = 0, world_size: int = 1) -> Batch:
    """Build this rank's part of global batch ``step``.

    Per sample: a uniformly random stored augmentation (replayed at ``image_size``), a uniformly random synthetic
    caption, and the matching stored teacher rows. ``keep_views`` also returns the views at the stored crop size
    (what online teachers consume)."""
    from quartet.clip.augment import apply_record
    from quartet.clip.models import to_tensor

    idx = global_indices(len(table), batch_size, step, seed)
    rng = numpy_rng(seed, _STREAM_CHOICE, step)
    aug_u = rng.random(len(idx))
    syn_u = rng.random(len(idx))
    sl = rank_slice(idx, rank, world_size)
    idx, aug_u, syn_u = idx[sl], aug_u[sl], syn_u[sl]
    a_pick = [int(u * len(table.aug[i])) for u, i in zip(aug_u, idx)]
    s_pick = [int(u * len(table.syn_texts[i])) if table.syn_texts[i] else -1 for u, i in zip(syn_u, idx)]
    views, crops = [], []
    for i, a in zip(idx, a_pick):
        rec = table.aug[i][a]
        views.append(apply_record(table.images[i], rec, image_size))
        if keep_views:
            crop = table.crop_size or image_size
            crops.append(views[-1] if crop == image_size else apply_record(table.images[i], rec, crop))
    caps = [table.captions[i] for i in idx]
    syn_caps = None
    if with_syn:
        if any(s < 0 for s in s_pick):
            raise QuartetError("a sample has no synthetic captions; train with syn_captions=false")
        syn_caps = [table.syn_texts[i][s] for i, s in zip(idx, s_pick)]
    t_img = t_txt = t_syn = None
    if with_teacher:
        t_img = torch.from_numpy(np.stack([table.image_emb[i][a] for i, a in zip(idx, a_pick)]))
        t_txt = torch.from_numpy(table.text_emb[idx])
        if with_syn:
            t_syn = torch.from_numpy(np.stack([table.syn_emb[i][s] for i, s in zip(idx, s_pick)]))
    return Batch(images=to_tensor(views, image_size, tuple(mean), tuple(std)), text_tokens=tokenize(caps),
                 syn_tokens=tokenize(syn_caps) if syn_caps is not None else None, teacher_image=t_img,
                 teacher_text=t_txt, teacher_syn=t_syn, views=crops if keep_views else None, captions=caps,
                 syn_captions=syn_caps)
