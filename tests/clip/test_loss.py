"""ReinforcedClipLoss against a naive per-row float64 reference, gradients included."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from quartet.clip.loss import ReinforcedClipLoss, clip_loss, teacher_targets


def _unit(x: torch.Tensor) -> torch.Tensor:
    return F.normalize(x, dim=-1)


def _naive_total(img, txt, s, t_img, t_txt, dims, scales, lam):
    """Row by row, with explicit sums; float64; teacher rows averaged after their softmax."""
    b = img.shape[0]
    sims = [[s * torch.dot(img[i], txt[j]) for j in range(b)] for i in range(b)]

    def log_softmax_row(vals, i):
        m = max(v.item() for v in vals)  # shift for stability; a constant, so gradients are unaffected
        lse = m + torch.log(sum(torch.exp(v - m) for v in vals))
        return vals[i] - lse

    clip_i = sum(-log_softmax_row(sims[i], i) for i in range(b)) / b
    clip_t = sum(-log_softmax_row([sims[j][i] for j in range(b)], i) for i in range(b)) / b
    l_clip = 0.5 * (clip_i + clip_t)
    kd_i = kd_t = 0.0
    for i in range(b):
        p_row = torch.zeros(b, dtype=torch.float64)
        q_row = torch.zeros(b, dtype=torch.float64)
        start = 0
        for d, sk in zip(dims, scales):
            ti, tt = t_img[:, start:start + d], t_txt[:, start:start + d]
            p_row += torch.softmax(torch.stack([sk * torch.dot(ti[i], tt[j]) for j in range(b)]), 0)
            q_row += torch.softmax(torch.stack([sk * torch.dot(tt[i], ti[j]) for j in range(b)]), 0)
            start += d
        p_row /= len(dims)
        q_row /= len(dims)
        row_i = torch.stack(list(sims[i]))
        row_t = torch.stack([sims[j][i] for j in range(b)])
        kd_i = kd_i - (p_row * torch.log_softmax(row_i, 0)).sum() / b
        kd_t = kd_t - (q_row * torch.log_softmax(row_t, 0)).sum() / b
    l_kd = 0.5 * (kd_i + kd_t)
    return (1 - lam) * l_clip + lam * l_kd


def _inputs(b=5, d=8, dims=(6, 4), seed=0):
    g = torch.Generator().manual_seed(seed)
    img = _unit(torch.randn(b, d, generator=g, dtype=torch.float64)).requires_grad_()
    txt = _unit(torch.randn(b, d, generator=g, dtype=torch.float64)).requires_grad_()
    syn = _unit(torch.randn(b, d, generator=g, dtype=torch.float64)).requires_grad_()
    blocks = lambda: torch.cat([_unit(torch.randn(b, k, generator=g, dtype=torch.float64)) for k in dims], 1)  # noqa: E731
    return img, txt, syn, blocks(), blocks(), blocks()


@pytest.mark.parametrize("lam", [0.0, 0.3, 1.0])
def test_matches_naive_reference_with_gradients(lam):
    dims, scales = (6, 4), (50.0, 20.0)
    img, txt, syn, t_img, t_txt, t_syn = _inputs(dims=dims)
    log_s = torch.tensor(math.log(1 / 0.07), dtype=torch.float64, requires_grad=True)
    loss_fn = ReinforcedClipLoss(lam, dims, scales, gather=False)
    out = loss_fn(img, txt, log_s.exp(), t_img, t_txt, syn, t_syn)
    got = torch.autograd.grad(out["loss"], [img, txt, syn, log_s])
    ref = (_naive_total(img, txt, log_s.exp(), t_img, t_txt, dims, scales, lam)
           + _naive_total(img, syn, log_s.exp(), t_img, t_syn, dims, scales, lam))
    want = torch.autograd.grad(ref, [img, txt, syn, log_s])
    assert torch.allclose(out["loss"], ref, atol=1e-10)
    for a, b in zip(got, want):
        assert torch.allclose(a, b, atol=1e-10)


def test_average_after_softmax_differs_from_average_of_logits():
    dims, scales = (6, 4), (80.0, 5.0)
    _, _, _, t_img, t_txt, _ = _inputs(dims=dims)
    p, _ = teacher_targets(t_img, t_txt, dims, scales)
    assert torch.allclose(p.sum(1), torch.ones(p.shape[0], dtype=p.dtype))
    a = 80.0 * t_img[:, :6] @ t_txt[:, :6].t()
    b = 5.0 * t_img[:, 6:] @ t_txt[:, 6:].t()
    assert not torch.allclose(p, ((a + b) / 2).softmax(1).float(), atol=1e-3)


def test_scale_is_capped_and_clip_term_matches_open_clip():
    from open_clip.loss import ClipLoss

    img, txt, *_ = _inputs()
    ours = ReinforcedClipLoss(0.0, gather=False)(img, txt, torch.tensor(500.0, dtype=torch.float64))["loss"]
    assert torch.allclose(ours, clip_loss(img, txt, 100.0))
    ref = ClipLoss()(img.float(), txt.float(), torch.tensor(100.0))
    assert torch.allclose(ours.float(), ref, atol=1e-5)


def test_kd_with_one_hot_targets_equals_clip_and_bad_inputs_fail():
    img, txt, *_ = _inputs(d=4, dims=(4,))
    eye = torch.eye(img.shape[0], dtype=torch.float64)
    # A teacher whose embeddings are one-hot per row at a huge scale gives identity targets: KD == CLIP.
    out = ReinforcedClipLoss(1.0, (5,), (1e4,), gather=False)(img, txt, torch.tensor(10.0, dtype=torch.float64),
                                                              eye, eye)
    assert torch.allclose(out["loss"], clip_loss(img, txt, 10.0), atol=1e-8)
    with pytest.raises(ValueError, match="dims"):
        teacher_targets(eye, eye, (3,), (1.0,))
    with pytest.raises(ValueError, match="lambda"):
        ReinforcedClipLoss(1.5, (4,), (1.0,))
    with pytest.raises(ValueError, match="teacher"):
        ReinforcedClipLoss(0.5, gather=False)(img, txt, torch.tensor(1.0))
