"""Preprocessing: pad to square (black), bicubic resize, centre crop, [0,1] scaling; odd and bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from quartet.core.errors import QuartetError
from quartet.vlm.preprocess import MIN_SIDE, expand_to_square, load_image, preprocess


def test_odd_sized_image_padded_black_and_scaled() -> None:
    img = Image.new("RGB", (37, 11), (255, 255, 255))
    sq = expand_to_square(img)
    assert sq.size == (37, 37)
    arr = np.asarray(sq)
    assert arr[0, 0].tolist() == [0, 0, 0] and arr[18, 18].tolist() == [255, 255, 255]
    assert arr[:13].max() == 0 and arr[24:].max() == 0  # 13 rows above, 13 below
    x = preprocess(img, 64)
    assert x.shape == (3, 64, 64) and x.dtype == torch.float32
    assert 0.0 <= x.min().item() and x.max().item() <= 1.0
    assert x[:, 0, 32].max().item() < 0.05 and x[:, 32, 32].min().item() > 0.95


def test_resize_matches_pil_bicubic_on_square_input() -> None:
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, (50, 50, 3), dtype=np.uint8)
    x = preprocess(arr, 32)
    ref = np.asarray(Image.fromarray(arr).resize((32, 32), Image.Resampling.BICUBIC), dtype=np.float32) / 255
    assert np.allclose(x.permute(1, 2, 0).numpy(), ref, atol=1e-6)


def test_modes_rgba_palette_grey_16bit_float(tmp_path) -> None:
    rgba = Image.new("RGBA", (20, 20), (255, 0, 0, 0))  # fully transparent -> white
    assert np.asarray(load_image(rgba))[0, 0].tolist() == [255, 255, 255]
    pal = Image.new("P", (20, 20), 3)
    assert load_image(pal).mode == "RGB"
    grey = Image.new("L", (20, 20), 128)
    assert np.asarray(load_image(grey))[0, 0].tolist() == [128, 128, 128]
    a16 = np.linspace(0, 65535, 400, dtype=np.uint16).reshape(20, 20)
    Image.fromarray(a16).save(tmp_path / "g16.png")
    im16 = load_image(tmp_path / "g16.png")
    arr = np.asarray(im16)
    assert arr.dtype == np.uint8 and arr.min() == 0 and arr.max() == 255
    assert load_image(np.full((20, 20, 3), 0.5, dtype=np.float32)).getpixel((0, 0)) == (128, 128, 128)
    assert load_image(np.zeros((20, 20, 4), dtype=np.uint8)).mode == "RGB"
    cmyk = Image.new("CMYK", (20, 20), (0, 0, 0, 0))
    assert load_image(cmyk).mode == "RGB"


def test_too_small_and_bad_inputs(tmp_path) -> None:
    with pytest.raises(QuartetError, match=f"at least {MIN_SIDE} px"):
        preprocess(Image.new("RGB", (4, 100)), 64)
    with pytest.raises(QuartetError, match="not found"):
        load_image(tmp_path / "missing.png")
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(QuartetError, match="cannot be read"):
        load_image(tmp_path / "bad.png")
    with pytest.raises(QuartetError, match="expected HxW"):
        load_image(np.zeros((5, 20, 20, 3), dtype=np.uint8))


def test_huge_image_refused_and_large_decoded_reduced(tmp_path, monkeypatch) -> None:
    import quartet.vlm.preprocess as pp

    Image.new("RGB", (400, 300), (10, 20, 30)).save(tmp_path / "big.png")
    monkeypatch.setattr(pp, "MAX_PIXELS", 100_000)
    with pytest.raises(QuartetError, match="downscale it first"):
        load_image(tmp_path / "big.png")
    monkeypatch.setattr(pp, "MAX_PIXELS", 200_000_000)
    img = load_image(tmp_path / "big.png", target=32)
    assert min(img.size) <= 4 * 32 * 2 and img.getpixel((0, 0)) == (10, 20, 30)
