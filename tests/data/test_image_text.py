from __future__ import annotations

import time

import numpy as np
import pytest

from quartet.core.errors import SourceMissingError
from quartet.data import emoji, load, openclipart, openmoji


def _equal(a, b) -> None:
    assert np.array_equal(a.images, b.images)
    assert a.captions == b.captions
    assert np.array_equal(a.labels, b.labels)
    assert a.fields == b.fields


def test_emoji_fast(installed) -> None:
    installed("emoji")
    ds = emoji.load_emoji(size=32, limit=50)
    assert len(ds) == 50
    assert ds.images.shape == (50, 32, 32, 3) and ds.images.dtype == np.uint8
    assert ds.captions[0] == "grinning face"
    assert ds.class_names[ds.labels[0]] == "Smileys & Emotion"
    assert ds.fields["subgroup"][0] == "face-smiling"
    assert ds.images[0].std() > 10  # something was drawn
    _equal(ds, emoji.load_emoji(size=32, limit=50))


def test_emoji_count_and_full_load(installed) -> None:
    installed("emoji")
    assert emoji.count() == 3655
    assert len(emoji.parse_emoji_test()) == 3655
    ds = load("emoji", size=64)
    assert len(ds) == 3655 and ds.images.shape == (3655, 64, 64, 3)
    assert sum(ds.fields["skin_tone"]) == 1785
    assert "flag: Japan" in ds.captions and len(ds.class_names) == 9
    t = time.perf_counter()
    again = load("emoji", size=64)
    assert time.perf_counter() - t < 2.0
    _equal(ds, again)


def test_emoji_missing_source(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(emoji, "EMOJI_TEST", tmp_path / "missing" / "emoji-test.txt")
    with pytest.raises(SourceMissingError, match="unicode-data"):
        emoji.load_emoji(size=16, limit=3, refresh=True)
    assert not emoji.is_installed()


def test_openclipart_fast(installed) -> None:
    installed("openclipart")
    ds = openclipart.load_openclipart(size=32, limit=20)
    assert len(ds) == 20 and ds.images.shape == (20, 32, 32, 3) and ds.images.dtype == np.uint8
    assert all(c.startswith(t) for c, t in zip(ds.captions, ds.fields["title"], strict=True))
    assert ds.class_names[ds.labels[0]] == "animals"
    assert ds.meta["licence"].startswith("public domain")
    _equal(ds, openclipart.load_openclipart(size=32, limit=20))


def test_openclipart_index(installed) -> None:
    installed("openclipart")
    assert openclipart.count() >= 7000
    assert openclipart.make_caption("Frog", ["frog", "green", "Green", "swamp"]) == "Frog: green, swamp"


@pytest.mark.slow
def test_openclipart_full(installed) -> None:
    installed("openclipart")
    ds = openclipart.load_openclipart(size=64)
    assert len(ds) >= 7000
    assert len(ds) + ds.meta["render_failed"] == openclipart.count()
    _equal(ds.subset(slice(0, 100)), openclipart.load_openclipart(size=64, limit=100))


def test_openclipart_missing_source(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(openclipart, "SVG_ROOT", tmp_path / "missing")
    with pytest.raises(SourceMissingError, match="openclipart-svg"):
        openclipart.build_index()


def test_openmoji_fast(installed) -> None:
    installed("openmoji")
    assert openmoji.count() == 4495
    ds = openmoji.load_openmoji(size=32, limit=20)
    assert len(ds) == 20 and ds.images.shape == (20, 32, 32, 3) and ds.images.dtype == np.uint8
    assert ds.captions[0] == "grinning face"
    assert "CC BY-SA 4.0" in ds.meta["licence"]
    assert ds.class_names[ds.labels[0]] == "smileys-emotion"
    _equal(ds, openmoji.load_openmoji(size=32, limit=20))


@pytest.mark.slow
def test_openmoji_full(installed) -> None:
    installed("openmoji")
    ds = openmoji.load_openmoji(size=64)
    assert len(ds) + ds.meta["render_failed"] == 4495 and len(ds) > 4400


def test_openmoji_missing_source(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(openmoji, "PACKAGE_DIR", tmp_path / "missing")
    assert not openmoji.is_installed()
    with pytest.raises(SourceMissingError, match="openmoji@17.0.0"):
        openmoji.load_openmoji(size=16, limit=2, refresh=True)
