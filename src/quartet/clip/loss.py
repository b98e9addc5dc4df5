"""CLIP + multi-teacher distillation loss on stored teacher embeddings (MobileCLIP 2311.17049 Eq. 1-3, MobileCLIP2).

With student embeddings Φ (L2-normalised), one learnable student scale s (init 1/0.07, capped at 100), and teacher
k's stored embeddings Ψᵏ with a FIXED scale s_k:

- ``L_CLIP = ½[CE(s·Φ_img Φ_txtᵀ, I) + CE(s·Φ_txt Φ_imgᵀ, I)]``
- ``P̄ = (1/K) Σ_k softmax(s_k·Ψᵏ_img Ψᵏ_txtᵀ)`` -- averaged AFTER the softmax, one target per direction;
  ``L_KD = ½[-mean_rows Σ P̄_i2t·log_softmax(s·Φ_img Φ_txtᵀ) - mean_rows Σ P̄_t2i·log_softmax(s·Φ_txt Φ_imgᵀ)]``
  (the paper's KL form minus the targets' entropy, a constant).
- ``L_total(B) = (1-λ)·L_CLIP + λ·L_KD``; the training loss is ``L_total(B_real) + L_total(B_syn)``: both batches
  share the augmented images, B_real pairs them with real captions, B_syn with one synthetic caption each.

Under DDP the student features are gathered with gradients and the teacher embeddings without (global batch, like
open_clip's ``gather_with_grad``); every rank computes the same global loss, so DDP's gradient averaging reproduces
the single-process gradient exactly (tested with two gloo processes). The reference
(``open_clip.loss.DistillClipLoss``) uses one teacher and its own scale; this module takes K teachers, per-teacher
scales (the tuned KD scales, e.g. 50-90 rather than the teacher's trained ~100) and λ.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from quartet.core.distributed import all_gather_cat, all_gather_grad

INIT_SCALE = 1.0 / 0.07
MAX_SCALE = 100.0
MAX_LOG_SCALE = math.log(MAX_SCALE)


def clip_loss(image: torch.Tensor, text: torch.Tensor, scale: torch.Tensor | float) -> torch.Tensor:
    """Symmetric InfoNCE over a batch of matching (image, text) rows."""
    logits = scale * image @ text.t()
    labels = torch.arange(logits.shape[0], device=logits.device)
    return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.t(), labels))


def teacher_targets(t_image: torch.Tensor, t_text: torch.Tensor, dims: Sequence[int],
                    scales: Sequence[float]) -> tuple[torch.Tensor, torch.Tensor]:
    """Ensemble targets ``(P̄_i2t, P̄_t2i)``, each ``[B, B]``: per-teacher softmax at its own scale, then the mean.

    ``t_image``/``t_text`` are ``[B, sum(dims)]``: each teacher's block is L2-normalised, concatenated in ``dims``
    order."""
    if t_image.shape[-1] != sum(dims) or t_text.shape[-1] != sum(dims):
        raise ValueError(f"teacher embeddings have {t_image.shape[-1]}/{t_text.shape[-1]} dims, expected {sum(dims)}")
    if len(dims) != len(scales):
        raise ValueError(f"{len(dims)} teacher dims but {len(scales)} scales")
    p_i2t = torch.zeros(t_image.shape[0], t_text.shape[0], dtype=torch.float32, device=t_image.device)
    p_t2i = torch.zeros(t_text.shape[0], t_image.shape[0], dtype=torch.float32, device=t_image.device)
    start = 0
    for d, s in zip(dims, scales):
        a = t_image[:, start:start + d].float()
        b = t_text[:, start:start + d].float()
        logits = float(s) * a @ b.t()
        p_i2t += logits.softmax(dim=1)
        p_t2i += logits.t().softmax(dim=1)
        start += d
    return p_i2t / len(dims), p_t2i / len(dims)


def kd_loss(image: torch.Tensor, text: torch.Tensor, scale: torch.Tensor | float, p_i2t: torch.Tensor,
            p_t2i: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the student's similarity distributions against teacher targets, both directions."""
    logits = scale * image @ text.t()
    l_i2t = -(p_i2t * logits.log_softmax(dim=1)).sum(dim=1).mean()
    l_t2i = -(p_t2i * logits.t().log_softmax(dim=1)).sum(dim=1).mean()
    return 0.5 * (l_i2t + l_t2i)


class ReinforcedClipLoss(nn.Module):
    """``L_total(B_real) [+ L_total(B_syn)]`` with ``L_total = (1-λ)·L_CLIP + λ·L_KD``.

    ``teacher_dims``/``teacher_scales`` describe the stored ensemble (the scales are the KD temperatures to use;
    pass the tuned ones, not necessarily the teachers' trained scales). ``lam=0`` needs no teacher embeddings
    (plain CLIP, optionally with synthetic captions). ``gather`` concatenates features over DDP ranks."""

    def __init__(self, lam: float = 1.0, teacher_dims: Sequence[int] = (), teacher_scales: Sequence[float] = (),
                 gather: bool = True):
        super().__init__()
        if not 0.0 <= lam <= 1.0:
            raise ValueError(f"lambda must be in [0, 1], got {lam}")
        if lam > 0 and not teacher_dims:
            raise ValueError("lambda > 0 needs teacher_dims and teacher_scales")
        self.lam = float(lam)
        self.dims = list(teacher_dims)
        self.scales = [float(s) for s in teacher_scales]
        self.gather = gather

    def _total(self, img: torch.Tensor, txt: torch.Tensor, scale: torch.Tensor, t_img: torch.Tensor | None,
               t_txt: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        l_clip = clip_loss(img, txt, scale) if self.lam < 1.0 else img.new_zeros(())
        if self.lam > 0.0:
            if t_img is None or t_txt is None:
                raise ValueError("lambda > 0 but no teacher embeddings were given")
            p_i2t, p_t2i = teacher_targets(t_img, t_txt, self.dims, self.scales)
            l_kd = kd_loss(img, txt, scale, p_i2t.to(img.dtype), p_t2i.to(img.dtype))
        else:
            l_kd = img.new_zeros(())
        return (1.0 - self.lam) * l_clip + self.lam * l_kd, l_clip, l_kd

    def forward(self, image_features: torch.Tensor, text_features: torch.Tensor, logit_scale: torch.Tensor,
                teacher_image: torch.Tensor | None = None, teacher_text: torch.Tensor | None = None,
                syn_text_features: torch.Tensor | None = None,
                teacher_syn_text: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Losses for one (local) batch; ``logit_scale`` is the student scale ``s`` itself (already exponentiated).

        Returns ``loss`` (to backpropagate) and the parts ``clip_real``, ``kd_real``, ``clip_syn``, ``kd_syn``."""
        g = all_gather_grad if self.gather else (lambda x: x)
        gt = all_gather_cat if self.gather else (lambda x: x)
        scale = logit_scale.clamp(max=MAX_SCALE)
        img = g(image_features)
        need_t = self.lam > 0.0
        t_img = gt(teacher_image) if need_t and teacher_image is not None else None
        t_txt = gt(teacher_text) if need_t and teacher_text is not None else None
        total, l_clip, l_kd = self._total(img, g(text_features), scale, t_img, t_txt)
        out = {"clip_real": l_clip.detach(), "kd_real": l_kd.detach()}
        if syn_text_features is not None:
            t_syn = gt(teacher_syn_text) if need_t and teacher_syn_text is not None else None
            syn_total, s_clip, s_kd = self._total(img, g(syn_text_features), scale, t_img, t_syn)
            total = total + syn_total
            out.update(clip_syn=s_clip.detach(), kd_syn=s_kd.detach())
        out["loss"] = total
        return out
