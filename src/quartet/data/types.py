"""Dataset containers shared by every importer: image-text pairs, labelled images and text corpora.

They are plain dataclasses holding numpy arrays and Python lists, so any system (CLIP training, VLM evaluation, LM
pre-training) can consume them without knowing where they came from. ``meta`` always names the ``source`` and its
``licence``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class ImageTextDataset:
    """``N`` images with one caption each.

    - ``images``: uint8 ``[N, H, W, 3]`` RGB.
    - ``captions``: ``N`` strings.
    - ``labels``: int64 ``[N]`` index into ``class_names`` (e.g. the emoji group or the OpenClipart category).
    - ``fields``: further per-item values, each a list of length ``N`` (subgroup, tags, file name...).
    - ``meta``: ``name``, ``source``, ``licence`` and importer-specific counts.
    """

    images: np.ndarray
    captions: list[str]
    labels: np.ndarray
    class_names: list[str]
    fields: dict[str, list[Any]] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.captions)

    def __post_init__(self) -> None:
        n = len(self.captions)
        if self.images.shape[0] != n or self.labels.shape[0] != n:
            raise ValueError(f"images {self.images.shape}, labels {self.labels.shape} and {n} captions disagree")
        for k, v in self.fields.items():
            if len(v) != n:
                raise ValueError(f"field {k!r} has {len(v)} values for {n} items")

    def subset(self, index: slice | list[int] | np.ndarray) -> ImageTextDataset:
        """The items at ``index`` (a slice or integer indices), sharing ``class_names`` and ``meta``."""
        idx = np.arange(len(self))[index]
        return ImageTextDataset(
            images=self.images[idx],
            captions=[self.captions[i] for i in idx],
            labels=self.labels[idx],
            class_names=list(self.class_names),
            fields={k: [v[i] for i in idx] for k, v in self.fields.items()},
            meta=dict(self.meta),
        )


@dataclass
class LabelledImages:
    """``N`` images with one integer class each (for zero-shot classification).

    - ``images``: uint8 ``[N, H, W]`` (grey) or ``[N, H, W, 3]`` (RGB).
    - ``labels``: int64 ``[N]`` index into ``class_names``.
    - ``meta``: ``name``, ``source``, ``licence`` and e.g. ``splits`` ({split: [start, stop]}).
    """

    images: np.ndarray
    labels: np.ndarray
    class_names: list[str]
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __post_init__(self) -> None:
        if self.images.shape[0] != self.labels.shape[0]:
            raise ValueError(f"{self.images.shape[0]} images but {self.labels.shape[0]} labels")

    def rgb(self) -> np.ndarray:
        """The images as uint8 ``[N, H, W, 3]`` (grey channels repeated)."""
        if self.images.ndim == 4:
            return self.images
        return np.repeat(self.images[..., None], 3, axis=-1)


@dataclass
class Document:
    """One text document: a stable ``id`` (hash, path or key), its ``text`` and a short ``title``."""

    id: str
    text: str
    title: str = ""


@dataclass
class Corpus:
    """A named list of documents; iterating yields the texts (what tokenizer trainers and packers consume)."""

    name: str
    docs: list[Document]
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.docs)

    def __iter__(self) -> Iterator[str]:
        return (d.text for d in self.docs)

    def texts(self) -> list[str]:
        """All document texts, in order."""
        return [d.text for d in self.docs]

    def ids(self) -> list[str]:
        """All document ids, in order."""
        return [d.id for d in self.docs]
