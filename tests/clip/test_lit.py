"""LiT teacher: image tower trained against the frozen pretrained MiniLM text encoder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from quartet.clip.lit import TEXT_DIM, is_lit_checkpoint, load_lit_teacher
from quartet.clip.teachers import TeacherEnsemble
from quartet.clip.train_teacher import TeacherConfig, train_teacher
from quartet.core.errors import QuartetError

COLOURS = [(220, 30, 30), (30, 200, 40), (30, 40, 220), (230, 220, 30)]
# Semantically distinct captions: MiniLM places "a red square" and "a blue square" almost on top of each other.
CAPTIONS = ["a dog playing in the park", "a red sports car", "a mountain lake at dawn", "a bowl of hot soup",
            "a city skyline at night", "an old leather book", "an acoustic guitar", "a rainy street with umbrellas"]


def _pairs() -> tuple[list[Image.Image], list[str]]:
    images = []
    for rgb in COLOURS:
        for shape in ("square", "stripe"):
            a = np.full((32, 32, 3), 255, dtype=np.uint8)
            if shape == "square":
                a[8:24, 8:24] = rgb
            else:
                a[12:20, :] = rgb
            images.append(Image.fromarray(a))
    return images, list(CAPTIONS)


def test_lit_teacher_trains_saves_and_loads_as_a_tower_teacher(tmp_path: Path) -> None:
    images, caps = _pairs()
    cfg = TeacherConfig(model="lit:MCi-nano", image_size=32, steps=60, batch_size=8, lr=5e-3, warmup=4,
                        augment=False, out=str(tmp_path / "lit.safetensors"))
    path = train_teacher(cfg, pairs=(images, caps), quiet=True)
    log = json.loads(path.with_suffix(".json").read_text())
    assert np.mean(log["loss_last"]) < np.mean(log["loss_first"]) - 0.5  # it learned to match the frozen texts
    assert is_lit_checkpoint(path)
    teacher = load_lit_teacher(path, name="lit")
    assert teacher.embed_dim == TEXT_DIM
    img = teacher.encode_images(images)
    txt = teacher.encode_texts(caps)
    assert img.shape == (8, TEXT_DIM) and torch.allclose(img.norm(dim=-1), torch.ones(8), atol=1e-5)
    top1 = (img @ txt.T).argmax(dim=1)
    assert (top1 == torch.arange(8)).float().mean() >= 0.5  # chance is 1/8
    ens = TeacherEnsemble([teacher])
    assert ens.dims == [TEXT_DIM]
    from quartet.clip.evaluate import zero_shot  # `quartet clip eval` reads LiT checkpoints through this adapter
    from quartet.clip.lit import load_for_eval

    zs = zero_shot(load_for_eval(path), np.stack([np.asarray(im) for im in images]), np.arange(8), CAPTIONS,
                   templates=("{}",))
    assert zs["top1"] == pytest.approx(float((top1 == torch.arange(8)).float().mean()) * 100)


def test_lit_loader_refuses_other_checkpoints(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    p = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(2)}, str(p))
    assert not is_lit_checkpoint(p)
    with pytest.raises(QuartetError, match="not a LiT teacher"):
        load_lit_teacher(p)
    with pytest.raises(QuartetError, match="not found"):
        load_lit_teacher(tmp_path / "missing.safetensors")
