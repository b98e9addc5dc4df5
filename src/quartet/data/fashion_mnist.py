"""Fashion-MNIST: 70,000 grey 28x28 photos of clothing in 10 named classes (60,000 train + 10,000 test).

Source: Debian ``dataset-fashion-mnist`` (gzipped IDX files in ``/usr/share/datasets/fashion-mnist/``). The class
names ("T-shirt/top" ... "Ankle boot") make it a zero-shot classification benchmark for image-text models. Decoding
takes ~1 s; cached loads ~0.05 s. Licence: MIT (Zalando Research).
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from quartet.core.errors import DataCorruptError, QuartetError
from quartet.data.cache import cached_images
from quartet.data.common import check_limit, require_path, run_command
from quartet.data.types import LabelledImages

ROOT = Path("/usr/share/datasets/fashion-mnist")
CLASS_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
               "Ankle boot"]
FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
N_TRAIN, N_TEST = 60_000, 10_000
INSTALL_HINT = "install the Debian package with `sudo apt-get install dataset-fashion-mnist`"
LICENCE = "MIT (Zalando Research)"


def read_idx(path: Path) -> np.ndarray:
    """Decode a (gzipped) IDX file of unsigned bytes into an array of its declared shape."""
    raw = gzip.decompress(require_path(path, INSTALL_HINT).read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataCorruptError(f"{path}: not an unsigned-byte IDX file")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise DataCorruptError(f"{path}: expected {shape} values, found {data.size}")
    return data.reshape(shape)


def is_installed() -> bool:
    """Whether all four IDX files are present."""
    return all((ROOT / f).is_file() for pair in FILES.values() for f in pair)


def count() -> int:
    """70,000 (train + test) when installed."""
    return N_TRAIN + N_TEST


def install() -> None:
    """Install the Debian package when it is missing."""
    if not is_installed():
        run_command(["apt-get", "install", "-y", "dataset-fashion-mnist"], "Fashion-MNIST")


def load_fashion_mnist(split: str = "all", limit: int | None = None, refresh: bool = False) -> LabelledImages:
    """Fashion-MNIST images uint8 ``[N, 28, 28]`` with labels 0-9 into :data:`CLASS_NAMES`.
    ``split``: ``"all"`` (70,000: train then test), ``"train"`` (60,000) or ``"test"`` (10,000).
    ``meta["splits"]`` gives each split's ``[start, stop)`` in the ``"all"`` order."""
    check_limit(limit)
    if split not in ("all", "train", "test"):
        raise QuartetError(f"split must be 'all', 'train' or 'test', got {split!r}")

    def build(limit: int | None) -> LabelledImages:
        images, labels = [], []
        for name in ("train", "test"):
            img_file, lab_file = FILES[name]
            images.append(read_idx(ROOT / img_file))
            labels.append(read_idx(ROOT / lab_file).astype(np.int64))
        meta = {"name": "fashion_mnist", "source": str(ROOT), "licence": LICENCE,
                "splits": {"train": [0, N_TRAIN], "test": [N_TRAIN, N_TRAIN + N_TEST]}}
        return LabelledImages(np.concatenate(images), np.concatenate(labels), list(CLASS_NAMES), meta)

    ds = cached_images("fashion_mnist", "28px", build, None, refresh)
    if split != "all":
        a, b = ds.meta["splits"][split]
        ds = LabelledImages(ds.images[a:b], ds.labels[a:b], ds.class_names, {**ds.meta, "split": split})
    if limit is not None:
        ds = LabelledImages(ds.images[:limit], ds.labels[:limit], ds.class_names, ds.meta)
    return ds
