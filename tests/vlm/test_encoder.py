"""FastViTHD encoder: exact param counts (no forward), token counts, fused == unfused, stride-32 variant."""

from __future__ import annotations

import math

import pytest
import torch

from quartet.core.errors import QuartetError
from quartet.vlm.encoder import ENCODERS, VisionEncoder, build_encoder, count_params, get_encoder_config


@pytest.fixture(scope="module")
def fastvithd_meta() -> VisionEncoder:
    # Built once for the module (no forward pass anywhere); the param-count test fuses it in place.
    return VisionEncoder("fastvithd", resolution=1024)


def test_fastvithd_is_timm_mci3_with_expected_stages(fastvithd_meta: VisionEncoder) -> None:
    m = fastvithd_meta.model
    assert type(m).__name__ == "FastVit"
    assert [len(s.blocks) for s in m.stages] == [2, 12, 24, 4, 2]
    assert fastvithd_meta.out_dim == 3072
    assert fastvithd_meta.cfg.stride == 64


def test_fastvithd_param_counts(fastvithd_meta: VisionEncoder) -> None:
    # 122.876M train-time; the fused body (after reparameterisation) is 122.714M (spec, ml-fastvlm).
    assert count_params(fastvithd_meta.model) == 122_875_584
    enc = fastvithd_meta.reparameterize()
    assert round(count_params(enc.model) / 1e6, 2) == 122.71
    assert count_params(enc.model) == 122_714_208


def test_comparator_param_counts() -> None:
    vit = VisionEncoder("vit_l14_336", resolution=336, device="meta")
    assert round(count_params(vit.model) / 1e6, 1) == 303.5
    assert vit.num_tokens(336) == 576 and vit.num_tokens(1024) == 5329
    cnx = VisionEncoder("convnext_large", device="meta")
    assert round(count_params(cnx.model) / 1e6, 1) == 196.2


@pytest.mark.parametrize("r", [256, 300, 336, 512, 700, 768, 1024, 1100, 1536])
def test_token_count_formula(r: int, fastvithd_meta: VisionEncoder) -> None:
    assert fastvithd_meta.num_tokens(r) == math.ceil(r / 64) ** 2


@pytest.mark.parametrize("r", [256, 300, 336, 512, 700, 1024, 1536])
def test_tokens_emitted_match_formula_same_design(r: int) -> None:
    # The tiny preset has FastViTHD's exact stride pattern (5 stages, stride 64) and is cheap to run.
    enc = build_encoder("fastvithd_tiny", resolution=r, fused=True)
    with torch.no_grad():
        out = enc(torch.rand(1, 3, r, r))
    assert out.shape == (1, math.ceil(r / 64) ** 2, enc.out_dim)


@pytest.mark.slow
def test_fastvithd_full_forward_tokens_256() -> None:
    enc = build_encoder("fastvithd", resolution=256, fused=True)
    with torch.no_grad():
        out = enc(torch.rand(1, 3, 256, 256))
    assert out.shape == (1, 16, 3072)


def _randomise_bn(model: torch.nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    for n, p in model.named_parameters():
        if "layer_scale" in n or n.endswith(".gamma"):
            p.data.fill_(0.5)


@pytest.mark.parametrize("name", ["fastvithd_tiny", "fastvithd_s32_tiny"])
def test_fused_equals_unfused(name: str) -> None:
    torch.manual_seed(0)
    enc = VisionEncoder(name, resolution=128).eval()
    _randomise_bn(enc)  # non-trivial BN statistics and layer scales so fusion has something to get wrong
    x = torch.rand(2, 3, 128, 128)
    with torch.no_grad():
        ref = enc(x)
        n_before = count_params(enc.model)
        enc.reparameterize()
        out = enc(x)
    assert count_params(enc.model) < n_before
    assert enc.fused
    assert (out - ref).abs().max().item() < 1e-5


def test_channels_last_inference_matches_contiguous() -> None:
    torch.manual_seed(0)
    enc = VisionEncoder("fastvithd_tiny", resolution=128).eval()
    _randomise_bn(enc)
    x = torch.rand(2, 3, 128, 128)
    with torch.no_grad():
        nhwc = enc(x)
        enc.channels_last = False
        nchw = enc(x)
    assert enc.cfg.family == "fastvit"
    assert (nhwc - nchw).abs().max().item() < 1e-5


def test_stride32_variant_has_4x_tokens() -> None:
    s64 = build_encoder("fastvithd_tiny", 256, fused=True)
    s32 = build_encoder("fastvithd_s32_tiny", 256, fused=True)
    assert len(s32.model.stages) == 4 and len(s64.model.stages) == 5
    with torch.no_grad():
        assert s32(torch.rand(1, 3, 256, 256)).shape[1] == 4 * s64(torch.rand(1, 3, 256, 256)).shape[1]


def test_vit_and_convnext_tokens() -> None:
    vit = build_encoder("vit_tiny", resolution=112)
    cnx = build_encoder("convnext_tiny_test", resolution=128)
    with torch.no_grad():
        assert vit(torch.rand(1, 3, 112, 112)).shape == (1, 64, 64)
        assert cnx(torch.rand(1, 3, 128, 128)).shape == (1, 16, 128)


def test_unknown_preset_is_clear_error() -> None:
    with pytest.raises(QuartetError, match="unknown encoder preset"):
        get_encoder_config("fastvit_nope")
    assert "fastvithd" in ENCODERS


def test_load_weights_roundtrip_and_mismatch(tmp_path) -> None:
    from safetensors.torch import save_file

    src = build_encoder("fastvithd_tiny", 64)
    sd = {f"model.{k}": v.contiguous() for k, v in src.model.state_dict().items()}
    save_file(sd, str(tmp_path / "enc.safetensors"))
    dst = VisionEncoder("fastvithd_tiny", 64)
    dst.load_weights(str(tmp_path / "enc.safetensors"))
    for k, v in src.model.state_dict().items():
        assert torch.equal(v, dst.model.state_dict()[k])
    other = VisionEncoder("fastvithd_s32_tiny", 64)
    with pytest.raises(QuartetError, match="do not fit|miss"):
        other.load_weights(str(tmp_path / "enc.safetensors"))
