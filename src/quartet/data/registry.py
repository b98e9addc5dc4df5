"""Name -> dataset: loader, kind, cheap installed check, item count, install function and licence."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from quartet.core.errors import QuartetError
from quartet.data import (
    debian,
    digits,
    emoji,
    fashion_mnist,
    fortunes,
    gpt2,
    openclipart,
    openmoji,
    pydocs,
    shapes,
    stdlib,
)

KINDS = ("image-text", "labelled", "corpus", "tokenizer")


@dataclass(frozen=True)
class DatasetInfo:
    """One registered source. ``count()`` is cheap once installed (no rendering); ``install()`` is idempotent."""

    name: str
    kind: str
    loader: Callable[..., Any]
    is_installed: Callable[[], bool]
    count: Callable[[], int]
    install: Callable[[], None]
    licence: str
    description: str
    optional: bool = False


REGISTRY: dict[str, DatasetInfo] = {
    i.name: i
    for i in [
        DatasetInfo("emoji", "image-text", emoji.load_emoji, emoji.is_installed, emoji.count, emoji.install,
                    emoji.LICENCE, "Noto Color Emoji rendered, CLDR names, 9 groups"),
        DatasetInfo("openclipart", "image-text", openclipart.load_openclipart, openclipart.is_installed,
                    openclipart.count, openclipart.install, openclipart.LICENCE,
                    "OpenClipart SVGs, title + keywords captions, 22 categories"),
        DatasetInfo("openmoji", "image-text", openmoji.load_openmoji, openmoji.is_installed, openmoji.count,
                    openmoji.install, openmoji.LICENCE, "OpenMoji colour SVGs, annotations and tags"),
        DatasetInfo("shapes", "image-text", shapes.load_shapes, shapes.is_installed, shapes.count, shapes.install,
                    shapes.LICENCE, "procedural coloured shapes with compositional captions"),
        DatasetInfo("fashion_mnist", "labelled", fashion_mnist.load_fashion_mnist, fashion_mnist.is_installed,
                    fashion_mnist.count, fashion_mnist.install, fashion_mnist.LICENCE,
                    "Fashion-MNIST 28x28 grey, 10 named classes"),
        DatasetInfo("digits", "labelled", digits.load_digits, digits.is_installed, digits.count, digits.install,
                    digits.LICENCE, "scikit-learn 8x8 handwritten digits"),
        DatasetInfo("debian", "corpus", debian.load_debian, debian.is_installed, debian.count, debian.install,
                    debian.LICENCE, "Debian long package descriptions (short docs)"),
        DatasetInfo("pydocs", "corpus", pydocs.load_pydocs, pydocs.is_installed, pydocs.count, pydocs.install,
                    pydocs.LICENCE, "Python 3.11 documentation .rst sources (long docs)"),
        DatasetInfo("stdlib", "corpus", stdlib.load_stdlib, stdlib.is_installed, stdlib.count, stdlib.install,
                    stdlib.LICENCE, "Python standard library .py files"),
        DatasetInfo("fortunes", "corpus", fortunes.load_fortunes, fortunes.is_installed, fortunes.count,
                    fortunes.install, fortunes.LICENCE, "fortune-mod quotes", optional=True),
        DatasetInfo("gpt2", "tokenizer", gpt2.gpt2_encoding, gpt2.is_installed, gpt2.count, gpt2.install,
                    gpt2.LICENCE, "GPT-2 BPE (tiktoken) from the openai-whisper sdist"),
    ]
}


def get(name: str) -> DatasetInfo:
    """The registered source ``name``; an error lists the known names."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise QuartetError(f"unknown dataset {name!r}; known: {', '.join(REGISTRY)}") from None
