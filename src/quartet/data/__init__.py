"""Real-data importers and generators shared by the systems: image-text pairs, labelled images, text corpora and
tokenizers, each loaded by name, cached under ``quartet.core.paths.cache_dir("data", NAME)`` and deterministic.

>>> from quartet import data
>>> ds = data.load("emoji", size=64)      # ImageTextDataset, 3,655 pairs
>>> corpus = data.load("debian")          # Corpus, ~61,800 documents
>>> data.list_datasets()                  # names, kinds, licences

A missing source raises :class:`quartet.core.errors.SourceMissingError` naming what to install;
``quartet data install NAME`` installs it.
"""

from __future__ import annotations

from typing import Any

from quartet.data.registry import REGISTRY, DatasetInfo, get
from quartet.data.types import Corpus, Document, ImageTextDataset, LabelledImages

__all__ = ["Corpus", "DatasetInfo", "Document", "ImageTextDataset", "LabelledImages", "list_datasets", "load"]


def load(name: str, **kw: Any) -> Any:
    """Load dataset ``name`` (see :func:`list_datasets`) with loader keyword arguments (``size``, ``limit``...)."""
    return get(name).loader(**kw)


def list_datasets() -> list[DatasetInfo]:
    """Every registered source, in registry order."""
    return list(REGISTRY.values())
