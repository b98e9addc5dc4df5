"""Reinforced shards: layout, encoding and readers (MobileCLIP DataCompDR layout, arXiv 2311.17049 §3).

A reinforced dataset folder holds

- ``metadata.json``: teachers (names, dims, trained logit scales, input sizes, normalisation, concatenation
  offsets), captioner, augmentation config, ``n_aug``, ``n_syn``, embedding storage dtype, seed;
- ``shard-XXXXX.tar``: one per input shard (same name), WebDataset samples with members
  ``{key}.{png|jpg..}`` (the source image bytes, unchanged), ``{key}.txt`` (real caption),
  ``{key}.syn.json`` (``{"syn_text": [...]}``), ``{key}.paug.json`` (``{"param_aug": [[[i,j,h,w],[[op,bin],..]],..]}``),
  ``{key}.npz`` (``image_emb [N_aug, D]``, ``text_emb [1, D]``, ``syn_text_emb [N_syn, D]``) and ``{key}.json``
  (``{"uid", "sha256"}``);
- ``checkpoint.json`` (finished input shards, rewritten atomically) and, once complete, ``manifest.jsonl`` (one line
  per output shard: name, sample count, skipped counts, sha256).

Embeddings are stored as float16, bfloat16 (as raw ``uint16`` bits, NumPy has no bfloat16) or float32; readers
always return float32. Per sample the ``.npz`` holds ``(N_aug + 1 + N_syn) * D`` values plus ~780 bytes of zip
headers: with D=1536 (2 ViT-L/14 teachers), N_aug=10, N_syn=5 that is 98 KB in fp32 and 49 KB in fp16/bf16.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from quartet.clip.augment import AugConfig, AugRecord
from quartet.clip.shards import group_members
from quartet.core.errors import DataCorruptError, QuartetError
from quartet.core.io import read_json
from quartet.core.seed import numpy_rng

FORMAT = "quartet.clip.reinforced"
METADATA = "metadata.json"
MANIFEST = "manifest.jsonl"
CHECKPOINT = "checkpoint.json"
EMB_DTYPES = ("fp16", "bf16", "fp32")
EMB_KEYS = ("image_emb", "text_emb", "syn_text_emb")


# ----------------------------------------------------------------------------------------------------------------
# Embedding encoding


def to_storage(x: np.ndarray, dtype: str) -> np.ndarray:
    """float32 -> storage array for ``dtype`` (bf16 = upper 16 bits, round-to-nearest-even)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    if dtype == "fp32":
        return x
    if dtype == "fp16":
        return x.astype(np.float16)
    if dtype == "bf16":
        bits = x.view(np.uint32)
        rounding = ((bits >> 16) & 1) + np.uint32(0x7FFF)
        return ((bits + rounding) >> 16).astype(np.uint16)
    raise QuartetError(f"embedding dtype must be one of {EMB_DTYPES}, got {dtype!r}")


def from_storage(x: np.ndarray, dtype: str) -> np.ndarray:
    """Storage array -> float32."""
    if dtype == "bf16":
        if x.dtype != np.uint16:
            raise DataCorruptError(f"bf16 embeddings must be stored as uint16 bits, got {x.dtype}")
        return (x.astype(np.uint32) << 16).view(np.float32)
    return x.astype(np.float32)


def encode_npz(arrays: dict[str, np.ndarray], dtype: str) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **{k: to_storage(v, dtype) for k, v in arrays.items()})
    return buf.getvalue()


def decode_npz(data: bytes, dtype: str, where: str) -> dict[str, np.ndarray]:
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            return {k: from_storage(z[k], dtype) for k in z.files}
    except (ValueError, OSError, EOFError) as e:
        raise DataCorruptError(f"{where}: unreadable .npz member ({e})") from e
    except Exception as e:
        raise DataCorruptError(f"{where}: unreadable .npz member ({type(e).__name__}: {e})") from e


# ----------------------------------------------------------------------------------------------------------------
# Samples


@dataclass
class ReinforcedSample:
    """One reinforced image-text pair; embeddings are float32 whatever the storage dtype."""

    key: str
    uid: str
    image_bytes: bytes
    image_ext: str
    caption: str
    syn_texts: list[str]
    param_aug: list[AugRecord]
    image_emb: np.ndarray  # [N_aug, D]
    text_emb: np.ndarray  # [1, D]
    syn_text_emb: np.ndarray  # [N_syn, D]
    sha256: str


def parse_reinforced(shard: Path, key: str, members: dict[str, bytes], meta: dict[str, Any]) -> ReinforcedSample:
    """Decode one sample's members; :class:`DataCorruptError` names shard and key when a member is missing or
    malformed (content checks: :func:`quartet.clip.inspect_shards.validate_sample`)."""
    from quartet.clip.shards import IMAGE_EXTS

    where = f"{shard.name}:{key}"
    img_ext = next((e for e in IMAGE_EXTS if e in members), None)
    missing = [m for m in ("txt", "syn.json", "paug.json", "npz", "json") if m not in members]
    if img_ext is None:
        missing.insert(0, "image")
    if missing:
        raise DataCorruptError(f"{where}: missing member(s) {missing}")
    aug = meta.get("aug", {})
    try:
        info = json.loads(members["json"])
        syn = json.loads(members["syn.json"])["syn_text"]
        paug = json.loads(members["paug.json"])["param_aug"]
        caption = members["txt"].decode("utf-8")
    except (KeyError, TypeError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataCorruptError(f"{where}: malformed JSON/text member ({type(e).__name__}: {e})") from e
    records = [AugRecord.from_list(r, int(aug.get("num_bins", 31)), aug.get("fill", (0, 0, 0))) for r in paug]
    arrays = decode_npz(members["npz"], meta.get("emb_dtype", "fp32"), where)
    for k in EMB_KEYS:
        if k not in arrays:
            raise DataCorruptError(f"{where}: .npz lacks {k!r}")
    return ReinforcedSample(key, str(info.get("uid", key)), members[img_ext], img_ext, caption, list(syn), records,
                            arrays["image_emb"], arrays["text_emb"], arrays["syn_text_emb"],
                            str(info.get("sha256", "")))


def load_reinforced_metadata(path: str | Path) -> dict[str, Any]:
    """``metadata.json`` of a reinforced folder: ``teachers`` (names, dims, scales, image_sizes, offsets,
    total_dim), ``captioner``, ``aug`` (an :class:`AugConfig` dict), ``n_aug``, ``n_syn``, ``emb_dtype``, ``seed``."""
    p = Path(path)
    meta = read_json(p / METADATA if p.is_dir() else p)
    if meta.get("format") != FORMAT:
        raise DataCorruptError(f"{p}: not a reinforced dataset (metadata format={meta.get('format')!r})")
    return meta


def aug_config(meta: dict[str, Any]) -> AugConfig:
    """The :class:`AugConfig` recorded in a dataset's metadata."""
    return AugConfig.from_dict(meta["aug"])


def read_manifest(path: str | Path) -> list[dict[str, Any]]:
    """The ``manifest.jsonl`` rows of a finished reinforced folder."""
    p = Path(path) / MANIFEST
    if not p.is_file():
        raise QuartetError(f"{path}: no {MANIFEST}; the reinforcement run has not finished (re-run the same "
                           "`quartet clip reinforce` command to finish it)")
    rows = []
    for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise DataCorruptError(f"{p}:{i}: not JSON ({e})") from e
    return rows


def reinforced_shards(path: str | Path | Sequence[str | Path]) -> tuple[list[Path], dict[str, Any]]:
    """Shard paths and metadata of a reinforced folder (from its manifest), or of explicit shard files (metadata
    from their folder)."""
    if isinstance(path, (str, Path)) and Path(path).is_dir():
        root = Path(path)
        meta = load_reinforced_metadata(root)
        shards = [root / r["name"] for r in read_manifest(root)]
    else:
        shards = [Path(p) for p in ([path] if isinstance(path, (str, Path)) else path)]
        if not shards:
            raise QuartetError("no reinforced shards given")
        meta = load_reinforced_metadata(shards[0].parent)
    missing = [s.name for s in shards if not s.is_file()]
    if missing:
        raise DataCorruptError(f"reinforced shards missing: {missing[:5]}")
    return shards, meta


def iter_reinforced(path: str | Path | Sequence[str | Path], shuffle: bool = False, seed: int = 0, rank: int = 0,
                    world_size: int = 1, shuffle_buffer: int = 1000) -> Iterator[ReinforcedSample]:
    """Samples of a reinforced dataset; sample ``n`` (in stored order) goes to rank ``n % world_size``, so ranks
    differ by at most one sample. ``shuffle`` permutes the shard order and mixes samples through a buffer of
    ``shuffle_buffer`` (seeded by ``seed``; pass the epoch in ``seed`` for a new order per epoch)."""
    if not (0 <= rank < world_size):
        raise QuartetError(f"rank {rank} out of range for world size {world_size}")
    shards, meta = reinforced_shards(path)
    rng = numpy_rng(seed, 1)
    order = rng.permutation(len(shards)) if shuffle else np.arange(len(shards))

    def stored() -> Iterator[ReinforcedSample]:
        n = 0
        for si in order:
            for key, members in group_members(shards[si]):
                if n % world_size == rank:
                    yield parse_reinforced(shards[si], key, members, meta)
                n += 1

    if not shuffle:
        yield from stored()
        return
    buf: list[ReinforcedSample] = []
    for s in stored():
        buf.append(s)
        if len(buf) >= shuffle_buffer:
            yield buf.pop(int(rng.integers(len(buf))))
    while buf:
        yield buf.pop(int(rng.integers(len(buf))))


@dataclass
class ReinforcedArrays:
    """A whole (small) reinforced dataset in memory: what a laptop-scale trainer indexes directly."""

    keys: list[str]
    uids: list[str]
    image_bytes: list[bytes]
    captions: list[str]
    syn_texts: list[list[str]]
    param_aug: list[list[AugRecord]]
    image_emb: np.ndarray  # [N, N_aug, D] float32
    text_emb: np.ndarray  # [N, 1, D]
    syn_text_emb: np.ndarray  # [N, N_syn, D]
    sha256: list[str]
    meta: dict[str, Any]

    def __len__(self) -> int:
        return len(self.keys)


def load_reinforced(path: str | Path | Sequence[str | Path], rank: int = 0, world_size: int = 1) -> ReinforcedArrays:
    """Every sample of a reinforced dataset (or this rank's share) stacked into arrays."""
    items = list(iter_reinforced(path, rank=rank, world_size=world_size))
    _, meta = reinforced_shards(path)
    if not items:
        raise QuartetError(f"{path}: no reinforced samples")
    return ReinforcedArrays(
        keys=[s.key for s in items], uids=[s.uid for s in items], image_bytes=[s.image_bytes for s in items],
        captions=[s.caption for s in items], syn_texts=[s.syn_texts for s in items],
        param_aug=[s.param_aug for s in items], image_emb=np.stack([s.image_emb for s in items]),
        text_emb=np.stack([s.text_emb for s in items]), syn_text_emb=np.stack([s.syn_text_emb for s in items]),
        sha256=[s.sha256 for s in items], meta=meta)
