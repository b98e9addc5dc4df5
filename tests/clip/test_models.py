"""Model presets, local checkpoint loading and inference-time reparameterisation."""

from __future__ import annotations

import pytest
import torch

from quartet.clip.models import (
    count_params,
    create_model,
    list_models,
    load_checkpoint,
    reparameterize,
    save_checkpoint,
)
from quartet.core.errors import QuartetError, SourceMissingError


def test_presets_and_real_configs_are_listed():
    names = list_models()
    for n in ("MCi-nano", "MCi-micro", "ViT-micro", "CoCa-micro", "MobileCLIP2-S0", "MobileCLIP2-S2"):
        assert n in names
    with pytest.raises(QuartetError, match="unknown CLIP model"):
        create_model("no-such-model")


def test_real_mobileclip2_s0_config_builds_the_mci0_tower():
    from open_clip import get_model_config

    cfg = get_model_config("MobileCLIP2-S0")
    assert cfg["vision_cfg"]["timm_model_name"] == "fastvit_mci0"
    # the full model is large; build only its image tower through timm and check the paper's size (11.4M)
    import timm

    tower = timm.create_model("fastvit_mci0", num_classes=cfg["embed_dim"])
    assert abs(count_params(tower) / 1e6 - 11.41) < 0.05


@pytest.mark.parametrize("name", ["MCi-nano", "ViT-micro"])
def test_checkpoint_roundtrip_from_local_file(tmp_path, name):
    b = create_model(name, image_size=32)
    b.model.eval()
    x = torch.randn(2, 3, 32, 32)
    t = b.tokenize(["a red circle", "two blue squares"])
    with torch.no_grad():
        want_i, want_t = b.model.encode_image(x), b.model.encode_text(t)
    path = save_checkpoint(b, tmp_path / "m.safetensors")
    again = load_checkpoint(path)
    again.model.eval()
    assert again.name == name and again.image_size == 32
    with torch.no_grad():
        assert torch.allclose(again.model.encode_image(x), want_i, atol=1e-6)
        assert torch.allclose(again.model.encode_text(t), want_t, atol=1e-6)
    # the same file through open_clip's own loader path (as for released MobileCLIP2 checkpoints)
    direct = create_model(name, pretrained=path, image_size=32)
    direct.model.eval()
    with torch.no_grad():
        assert torch.allclose(direct.model.encode_image(x), want_i, atol=1e-6)
    with pytest.raises(SourceMissingError):
        create_model(name, pretrained=tmp_path / "missing.safetensors")


def test_reparameterised_mci_tower_equals_unfused():
    torch.manual_seed(0)
    b = create_model("MCi-nano", image_size=64)
    # train a few steps so BatchNorm statistics and branch weights are not at their init values
    opt = torch.optim.SGD(b.model.parameters(), lr=0.05)
    for _ in range(2):
        x = torch.randn(8, 3, 64, 64)
        b.model.encode_image(x).pow(2).mean().backward()
        opt.step()
        opt.zero_grad()
    b.model.eval()
    x = torch.randn(4, 3, 64, 64)
    with torch.no_grad():
        want = b.model.encode_image(x)
        fused = reparameterize(b.model)
        got = fused.encode_image(x)
    n_before = sum(1 for m in b.model.modules() if hasattr(m, "reparameterize"))
    n_after = sum(1 for m in fused.modules() if getattr(m, "inference_mode", False))
    assert n_before > 0 and n_after > 0
    assert count_params(fused) < count_params(b.model)
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


def test_cached_tokenizer_gives_the_wrapped_tokenizers_rows_and_survives_a_full_cache() -> None:
    import open_clip

    from quartet.clip.models import CachedTokenizer

    base = open_clip.SimpleTokenizer(context_length=16)
    tok = CachedTokenizer(base, max_entries=3)
    caps = ["a red apple", "grinning face", "a red apple", "flag: France"]
    assert torch.equal(tok(caps), base(caps))  # 3 unique strings: fills the cache
    assert tok.context_length == 16
    mixed = ["a red apple", "party popper", "grinning face"]  # one new string overflows the cache mid-batch
    assert torch.equal(tok(mixed), base(mixed))
    assert torch.equal(tok("party popper"), base("party popper"))
    assert len(tok._rows) <= 3
