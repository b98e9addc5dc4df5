"""On-disk cache of decoded and rendered datasets: one ``.npz`` per (dataset, parameters).

Images are stored as uint8 arrays and everything else (captions, fields, meta) as one JSON string inside the same
archive, loaded with ``allow_pickle=False``; corpora are one JSON file. Archives are written uncompressed, so a cached
load is a file read (~0.1 s for 100 MB) instead of a re-render (seconds to minutes). Files are written atomically,
so an interrupted render never leaves a truncated cache entry. Bump :data:`CACHE_VERSION` when a format changes.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from quartet.core.errors import DataCorruptError
from quartet.core.io import atomic_path, atomic_write_json, read_json
from quartet.core.paths import cache_dir
from quartet.data.types import Corpus, Document, ImageTextDataset, LabelledImages

CACHE_VERSION = 1

D = TypeVar("D", ImageTextDataset, LabelledImages)


def cache_file(name: str, key: str, ext: str = "npz") -> Path:
    """The cache file for dataset ``name`` with parameter string ``key`` (e.g. ``"64px"``)."""
    return cache_dir("data", name) / f"{name}-{key}-v{CACHE_VERSION}.{ext}"


def _write_npz(path: Path, arrays: dict[str, np.ndarray], info: dict[str, Any]) -> None:
    payload = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
    payload["info_json"] = np.array(json.dumps(info, ensure_ascii=False))
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **payload)


def _read_npz(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise DataCorruptError(f"{path}: unreadable cache entry ({e}); delete it to rebuild") from e
    info = json.loads(str(arrays.pop("info_json")))
    return arrays, info


def save_image_text(path: Path, ds: ImageTextDataset) -> None:
    """Write ``ds`` to ``path`` (``.npz``)."""
    info = {"captions": ds.captions, "class_names": ds.class_names, "fields": ds.fields, "meta": ds.meta}
    _write_npz(path, {"images": ds.images, "labels": ds.labels}, info)


def load_image_text(path: Path) -> ImageTextDataset:
    """Read an :class:`ImageTextDataset` written by :func:`save_image_text`."""
    ds = _load_any(path)
    if not isinstance(ds, ImageTextDataset):
        raise DataCorruptError(f"{path}: holds labelled images, not image-text pairs")
    return ds


def save_labelled(path: Path, ds: LabelledImages) -> None:
    """Write ``ds`` to ``path`` (``.npz``)."""
    _write_npz(path, {"images": ds.images, "labels": ds.labels}, {"class_names": ds.class_names, "meta": ds.meta})


def load_labelled(path: Path) -> LabelledImages:
    """Read a :class:`LabelledImages` written by :func:`save_labelled`."""
    ds = _load_any(path)
    if not isinstance(ds, LabelledImages):
        raise DataCorruptError(f"{path}: holds image-text pairs, not labelled images")
    return ds


def save_corpus(path: Path, corpus: Corpus) -> None:
    """Write ``corpus`` to ``path`` (``.json``)."""
    obj = {
        "name": corpus.name,
        "meta": corpus.meta,
        "ids": corpus.ids(),
        "titles": [d.title for d in corpus.docs],
        "texts": corpus.texts(),
    }
    atomic_write_json(path, obj, indent=None)


def load_corpus(path: Path) -> Corpus:
    """Read a :class:`Corpus` written by :func:`save_corpus`."""
    obj = read_json(path)
    docs = [Document(i, x, t) for i, t, x in zip(obj["ids"], obj["titles"], obj["texts"], strict=True)]
    return Corpus(obj["name"], docs, obj["meta"])



def cached_images(
    name: str,
    key: str,
    build: Callable[[int | None], D],
    limit: int | None = None,
    refresh: bool = False,
) -> D:
    """Load dataset ``name`` with parameters ``key`` from the cache, or ``build(limit)`` it and cache the result.

    ``D`` is :class:`ImageTextDataset` or :class:`LabelledImages` (the cache file records which). A full cached copy
    also serves limited loads (its first ``limit`` items); a limited build is cached under its own key so fast
    loads do not render the whole source."""
    full = cache_file(name, key)
    if not refresh and full.exists():
        ds = _load_any(full)
        return ds if limit is None or limit >= len(ds) else _head(ds, limit)  # type: ignore[return-value]
    path = full if limit is None else cache_file(name, f"{key}-first{limit}")
    if not refresh and path.exists():
        return _load_any(path)  # type: ignore[return-value]
    ds = build(limit)
    if isinstance(ds, ImageTextDataset):
        save_image_text(path, ds)
    else:
        save_labelled(path, ds)
    return ds


def _load_any(path: Path) -> ImageTextDataset | LabelledImages:
    arrays, info = _read_npz(path)
    if "captions" in info:
        return ImageTextDataset(
            arrays["images"], info["captions"], arrays["labels"], info["class_names"], info["fields"], info["meta"]
        )
    return LabelledImages(arrays["images"], arrays["labels"], info["class_names"], info["meta"])


def _head(ds: ImageTextDataset | LabelledImages, n: int) -> ImageTextDataset | LabelledImages:
    if isinstance(ds, ImageTextDataset):
        return ds.subset(slice(0, n))
    return LabelledImages(ds.images[:n], ds.labels[:n], ds.class_names, dict(ds.meta))


def cached_corpus(name: str, key: str, build: Callable[[], Corpus], refresh: bool = False) -> Corpus:
    """Load corpus ``name`` with parameters ``key`` from the cache, or ``build()`` it and cache it as JSON."""
    path = cache_file(name, key, "json")
    side = cache_file(name, key, "count.json")
    if not refresh and path.exists():
        corpus = load_corpus(path)
    else:
        corpus = build()
        save_corpus(path, corpus)
    if refresh or not side.exists():
        atomic_write_json(side, {"docs": len(corpus)})
    return corpus


def cached_count(name: str, key: str, load: Callable[[], Corpus]) -> int:
    """The number of documents of a cached corpus, read from its small sidecar file; ``load()`` builds it first."""
    side = cache_file(name, key, "count.json")
    if not side.exists():
        load()
    return int(read_json(side)["docs"])
