"""scikit-learn digits: 1,797 grey 8x8 images of handwritten digits 0-9 (UCI optical recognition data).

Ships inside scikit-learn (``datasets/data/digits.csv.gz``, read directly; no download). Pixel values 0-16 are
scaled to uint8 0-255. Licence: CC BY 4.0 (UCI ML repository), distributed with scikit-learn (BSD-3-Clause).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from quartet.core.errors import SourceMissingError
from quartet.data.common import check_limit, run_command
from quartet.data.types import LabelledImages

N_DIGITS = 1_797
CLASS_NAMES = [str(i) for i in range(10)]
LICENCE = "CC BY 4.0 (UCI ML repository), shipped with scikit-learn (BSD-3-Clause)"


def data_file() -> Path | None:
    """``sklearn/datasets/data/digits.csv.gz`` (64 pixel values 0-16 and the label per row), found without importing
    scikit-learn (which takes seconds); ``None`` when scikit-learn is not installed."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz"
    return path if path.is_file() else None


def is_installed() -> bool:
    """Whether scikit-learn's copy of the digits is present."""
    return data_file() is not None


def count() -> int:
    """1,797."""
    return N_DIGITS


def install() -> None:
    """pip-install scikit-learn when it is missing."""
    if not is_installed():
        import sys

        run_command([sys.executable, "-m", "pip", "install", "scikit-learn"], "scikit-learn")


def load_digits(limit: int | None = None) -> LabelledImages:
    """The 1,797 digits as uint8 ``[N, 8, 8]`` (0-255) with labels 0-9 (class names ``"0"``..``"9"``)."""
    check_limit(limit)
    path = data_file()
    if path is None:
        raise SourceMissingError("scikit-learn is not installed (it ships the digits): `pip install scikit-learn`")
    table = np.loadtxt(path, delimiter=",", dtype=np.float64)
    images = np.rint(table[:, :-1].reshape(-1, 8, 8) * (255.0 / 16.0)).astype(np.uint8)
    labels = table[:, -1].astype(np.int64)
    meta = {"name": "digits", "source": "sklearn.datasets.load_digits", "licence": LICENCE}
    return LabelledImages(images[:limit], labels[:limit], list(CLASS_NAMES), meta)
