"""On-disk layout of prepared LM data: flat, memory-mappable token arrays per bucket plus ``manifest.json``.

::

    <out>/settings.json            what the data was prepared with (resume refuses different settings)
    <out>/tokenizer.json           when the BPE was trained on the corpus
    <out>/parts/p00012/bucket_08.npy   pieces of 2^8 tokens back to back (uint16 when the vocab fits, else uint32)
    <out>/parts/p00012/stream.npy      the documents (EOS appended) back to back, for the C&C / packing baselines
    <out>/parts/p00012/stream_lens.npy document lengths (int64), same order
    <out>/parts/p00012/val.npy, val_lens.npy  held-out documents
    <out>/parts/p00012/done.json       written last (atomically): file sizes and checksums of the part
    <out>/manifest.json            per bucket: shards, sequences, tokens; dropped tokens; tokenizer; settings; stats

Each part is a unit of work: a crash loses at most the parts in flight. Readers check every shard against the
manifest (shape and dtype; ``verify=True`` also checks sha256), so a truncated or swapped file is an error that names
it, never silently wrong data.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from quartet.core.errors import DataCorruptError, QuartetError
from quartet.core.io import atomic_path, read_json, sha256_file

FORMAT = "quartet-lm-dd/1"


def write_array(path: Path, arr: np.ndarray) -> dict[str, Any]:
    """``np.save`` atomically; returns ``{"file", "tokens", "sha256"}`` (file relative to the part folder)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, arr, allow_pickle=False)
    return {"file": path.name, "tokens": int(arr.size), "sha256": sha256_file(path)}


def open_array(path: Path, expected: int, dtype: np.dtype, sha256: str | None = None) -> np.ndarray:
    """Memory-map a shard and check it against the manifest (size, dtype, optionally checksum)."""
    if not path.is_file():
        raise DataCorruptError(f"shard {path} listed in the manifest is missing; prepare the data again")
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise DataCorruptError(f"shard {path} is corrupt or truncated ({e}); delete its part folder and "
                               f"rerun prepare to rebuild it") from e
    if arr.ndim != 1 or arr.size != expected or arr.dtype != dtype:
        raise DataCorruptError(f"shard {path} holds {arr.size} {arr.dtype} values but the manifest says {expected} "
                               f"{dtype}; the folder is inconsistent, rerun prepare into a new folder")
    if sha256 is not None and sha256_file(path) != sha256:
        raise DataCorruptError(f"shard {path} fails its sha256 check; delete its part folder and rerun prepare")
    return arr


class BucketArray:
    """All sequences of one bucket (length ``2**log2``) across shards; ``get(indices)`` -> ``[n, 2**log2]``."""

    def __init__(self, log2: int, arrays: list[np.ndarray]):
        self.log2 = log2
        self.length = 1 << log2
        self.arrays = [a.reshape(-1, self.length) for a in arrays if a.size]
        counts = [a.shape[0] for a in self.arrays]
        self.cum = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)

    def __len__(self) -> int:
        return int(self.cum[-1])

    def get(self, idx: np.ndarray) -> np.ndarray:
        idx = np.asarray(idx, dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise IndexError(f"bucket 2^{self.log2}: index out of range (has {len(self)} sequences)")
        shard = np.searchsorted(self.cum, idx, side="right") - 1
        out = np.empty((idx.size, self.length), dtype=np.int64)
        for s in np.unique(shard):
            sel = shard == s
            out[sel] = self.arrays[s][idx[sel] - self.cum[s]]
        return out


class Stream:
    """Documents back to back (EOS appended) with their lengths; ``get(start, stop)`` crosses shard borders."""

    def __init__(self, arrays: list[np.ndarray], lens: list[np.ndarray]):
        self.arrays = [a for a in arrays if a.size]
        self.cum = np.concatenate([[0], np.cumsum([a.size for a in self.arrays])]).astype(np.int64)
        self.doc_lens = np.concatenate(lens).astype(np.int64) if lens else np.zeros(0, np.int64)
        self.doc_starts = np.concatenate([[0], np.cumsum(self.doc_lens)]).astype(np.int64)
        if int(self.doc_starts[-1]) != int(self.cum[-1]):
            raise DataCorruptError(f"stream holds {int(self.cum[-1])} tokens but its documents sum to "
                                   f"{int(self.doc_starts[-1])}; rerun prepare")

    def __len__(self) -> int:
        return int(self.cum[-1])

    def get(self, start: int, stop: int) -> np.ndarray:
        out = []
        s = int(np.searchsorted(self.cum, start, side="right") - 1)
        while start < stop:
            lo = start - int(self.cum[s])
            take = min(stop - start, self.arrays[s].size - lo)
            out.append(np.asarray(self.arrays[s][lo:lo + take], dtype=np.int64))
            start += take
            s += 1
        return np.concatenate(out) if out else np.zeros(0, np.int64)

    def doc_ids(self, start: int, stop: int) -> np.ndarray:
        """Document index of every token in ``[start, stop)``."""
        return np.searchsorted(self.doc_starts, np.arange(start, stop), side="right") - 1

    def document(self, i: int) -> np.ndarray:
        return self.get(int(self.doc_starts[i]), int(self.doc_starts[i + 1]))


class PreparedData:
    """A prepared data folder, checked against its manifest on open."""

    def __init__(self, path: str | Path, verify: bool = False):
        self.path = Path(path)
        mpath = self.path / "manifest.json"
        if not mpath.is_file():
            raise QuartetError(f"{self.path} has no manifest.json; run `quartet lm prepare --out {self.path}` "
                               f"(or finish an interrupted one by running it again)")
        self.manifest: dict[str, Any] = read_json(mpath)
        if self.manifest.get("format") != FORMAT:
            raise DataCorruptError(f"{mpath}: format {self.manifest.get('format')!r}, expected {FORMAT!r}")
        tok = self.manifest["tokenizer"]
        self.dtype = np.dtype(tok["dtype"])
        self.vocab_size = int(tok["vocab_size"])
        self.eos_id = int(tok["eos_id"])
        s = self.manifest["settings"]
        self.min_log2, self.max_log2 = int(s["min_log2"]), int(s["max_log2"])
        self._verify = verify
        self.buckets: dict[int, BucketArray] = {}
        for k_str, b in self.manifest["buckets"].items():
            k = int(k_str)
            arrays = [self._open(sh) for sh in b["shards"]]
            arr = BucketArray(k, arrays)
            if len(arr) != int(b["sequences"]):
                raise DataCorruptError(f"bucket 2^{k}: shards hold {len(arr)} sequences, manifest says "
                                       f"{b['sequences']}")
            self.buckets[k] = arr
        self.stream = self._stream("stream")
        self.val = self._stream("val")

    def _open(self, shard: dict[str, Any], dtype: np.dtype | None = None) -> np.ndarray:
        return open_array(self.path / shard["file"], int(shard["tokens"]), dtype or self.dtype,
                          shard["sha256"] if self._verify else None)

    def _stream(self, key: str) -> Stream:
        sec = self.manifest[key]
        arrays = [self._open(sh["tokens"]) for sh in sec["shards"]]
        lens = [np.asarray(self._open(sh["lens"], np.dtype(np.int64))) for sh in sec["shards"]]
        return Stream(arrays, lens)

    def bucket_sizes(self) -> dict[int, int]:
        """Sequences per bucket (``{log2: count}``)."""
        return {k: len(v) for k, v in self.buckets.items()}


def load_settings(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
