"""Training recipe: exact resume, the three modes, online == reinforced when the stored rows are the teachers'."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from train_fixtures import make_table

from quartet.clip.train import TrainConfig, lr_at, train


def _cfg(tmp_path, **kw) -> TrainConfig:
    base = dict(model="MCi-nano", image_size=32, steps=6, batch_size=8, warmup=2, log_every=1,
                checkpoint_every=3, out=str(tmp_path / "run"))
    base.update(kw)
    return TrainConfig(**base)


def test_resume_reproduces_the_uninterrupted_loss_curve(tmp_path, tiny_pairs):
    images, captions, _, _ = tiny_pairs
    table = make_table(images, captions)
    full = train(_cfg(tmp_path / "a"), table=table, quiet=True)
    first = train(_cfg(tmp_path / "b", stop_after=3), table=table, quiet=True)
    assert [m["step"] for m in first.metrics] == [1, 2, 3]
    second = train(_cfg(tmp_path / "b"), table=table, quiet=True)
    assert [m["step"] for m in second.metrics] == [4, 5, 6]
    a = [m["loss"] for m in full.run.read_metrics()]
    b = [m["loss"] for m in second.run.read_metrics()]
    assert len(a) == len(b) == 6
    np.testing.assert_allclose(a, b, rtol=1e-5)
    assert (full.run.path / "model.safetensors").exists() and (second.run.path / "result.json").exists()
    for (ka, va), (_kb, vb) in zip(full.bundle.model.state_dict().items(), second.bundle.model.state_dict().items()):
        assert torch.allclose(va.float(), vb.float(), atol=1e-5), ka


def test_online_mode_equals_reinforced_when_rows_come_from_the_same_teachers(tmp_path, tiny_pairs):
    from quartet.clip.models import create_model
    from quartet.clip.teachers import OpenClipTeacher, TeacherEnsemble

    images, captions, _, _ = tiny_pairs
    torch.manual_seed(1)
    ts = []
    for k in range(2):
        b = create_model("MCi-nano", image_size=32)
        ts.append(OpenClipTeacher.from_model(b.model, f"t{k}", 32, b.mean, b.std, b.tokenizer))
    ens = TeacherEnsemble(ts)
    table = make_table(images[:16], captions[:16], crop_size=32, ensemble=ens)
    kw = dict(steps=2, checkpoint_every=100, kd_scales=[30.0])
    rein = train(_cfg(tmp_path / "r", **kw), table=table, quiet=True)
    onl = train(_cfg(tmp_path / "o", mode="online", **kw), table=table, teachers=ens, quiet=True)
    np.testing.assert_allclose([m["kd_real"] for m in rein.metrics], [m["kd_real"] for m in onl.metrics], rtol=1e-4)
    assert rein.metrics[0]["kd_syn"] > 0


def test_plain_mode_ignores_teachers_and_lambda_mixes(tmp_path, tiny_pairs):
    images, captions, _, _ = tiny_pairs
    table = make_table(images, captions)
    plain = train(_cfg(tmp_path / "p", mode="plain", steps=2, lam=1.0), table=table, quiet=True)
    assert plain.metrics[0]["kd_real"] == 0 and "clip_syn" not in plain.metrics[0]
    assert plain.metrics[0]["clip_real"] > 0
    half = train(_cfg(tmp_path / "h", steps=1, lam=0.5, teachers=[1], n_aug=1, n_syn=1, storage="fp16"),
                 table=table, quiet=True)
    m = half.metrics[0]
    want = 0.5 * (m["clip_real"] + m["kd_real"]) + 0.5 * (m["clip_syn"] + m["kd_syn"])
    assert m["loss"] == pytest.approx(want, rel=1e-5)


def test_schedule_warms_up_then_decays():
    cfg = TrainConfig(steps=100, warmup=10, lr=1e-3, min_lr=1e-6)
    lrs = [lr_at(s, cfg) for s in range(100)]
    assert lrs[0] == pytest.approx(1e-4) and lrs[9] == pytest.approx(1e-3)
    assert all(a >= b for a, b in itertools.pairwise(lrs[10:])) and lrs[-1] < 1e-5
