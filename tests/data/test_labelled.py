from __future__ import annotations

import numpy as np
import pytest

from quartet.core.errors import SourceMissingError
from quartet.data import digits, fashion_mnist, load


def test_fashion_mnist(installed) -> None:
    installed("fashion_mnist")
    ds = load("fashion_mnist")
    assert len(ds) == 70_000 == fashion_mnist.count()
    assert ds.images.shape == (70_000, 28, 28) and ds.images.dtype == np.uint8
    assert ds.class_names[9] == "Ankle boot" and len(ds.class_names) == 10
    assert ds.class_names[int(ds.labels[0])] == "Ankle boot"  # first training image
    assert np.bincount(ds.labels).tolist() == [7000] * 10
    test = fashion_mnist.load_fashion_mnist("test", limit=100)
    assert len(test) == 100 and np.array_equal(test.images, ds.images[60_000:60_100])
    again = load("fashion_mnist")
    assert np.array_equal(again.images, ds.images) and np.array_equal(again.labels, ds.labels)
    assert ds.rgb()[:2].shape == (2, 28, 28, 3)


def test_fashion_mnist_missing_source(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(fashion_mnist, "ROOT", tmp_path / "missing")
    with pytest.raises(SourceMissingError, match="dataset-fashion-mnist"):
        fashion_mnist.load_fashion_mnist(refresh=True)


def test_digits() -> None:
    ds = digits.load_digits()
    assert len(ds) == 1797 and ds.images.shape == (1797, 8, 8) and ds.images.dtype == np.uint8
    assert ds.images.max() == 255 and ds.class_names[ds.labels[0]] == "0"
    assert np.array_equal(digits.load_digits(limit=5).images, ds.images[:5])
