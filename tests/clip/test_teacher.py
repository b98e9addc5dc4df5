"""Teachers and the caption generator trained here: caching by config, wrapping for reinforcement."""

from __future__ import annotations

import torch
from PIL import Image

from quartet.clip.train_teacher import TeacherConfig, as_captioner, as_teacher, load_teacher, train_teacher


def _pairs(tiny_pairs, n=16):
    images, captions, _, _ = tiny_pairs
    return [Image.fromarray(a) for a in images[:n]], captions[:n]


def test_teacher_trains_caches_and_serves_as_a_teacher(tmp_path, tiny_pairs):
    cfg = TeacherConfig(model="MCi-nano", image_size=32, steps=2, batch_size=8, warmup=1,
                        out=str(tmp_path / "t.safetensors"))
    path = train_teacher(cfg, pairs=_pairs(tiny_pairs), quiet=True)
    mtime = path.stat().st_mtime_ns
    assert train_teacher(cfg, pairs=_pairs(tiny_pairs), quiet=True) == path and path.stat().st_mtime_ns == mtime
    assert TeacherConfig(steps=3).key != TeacherConfig(steps=4).key
    assert TeacherConfig(threads=1).key == TeacherConfig(threads=2).key  # how to run is not part of the key
    teacher = as_teacher(load_teacher(path), "t0")
    imgs, caps = _pairs(tiny_pairs, 3)
    e_img, e_txt = teacher.encode_images(imgs), teacher.encode_texts(caps)
    assert e_img.shape == (3, 64) and e_txt.shape == (3, 64)
    assert torch.allclose(e_img.norm(dim=-1), torch.ones(3), atol=1e-5)


def test_coca_captioner_trains_and_generates(tmp_path, tiny_pairs):
    cfg = TeacherConfig(model="CoCa-micro", image_size=32, steps=2, batch_size=4, warmup=1,
                        out=str(tmp_path / "c.safetensors"))
    path = train_teacher(cfg, pairs=_pairs(tiny_pairs, 8), quiet=True)
    cap = as_captioner(load_teacher(path))
    imgs, _ = _pairs(tiny_pairs, 2)
    out = cap.generate(imgs, n=2, seed=0)
    assert len(out) == 2 and all(len(c) == 2 and all(isinstance(s, str) for s in c) for c in out)
    assert out == cap.generate(imgs, n=2, seed=0)
