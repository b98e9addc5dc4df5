"""Teachers and the caption generator trained here: larger CLIP models (plain CLIP loss, longer) and a small CoCa.

No CLIP or CoCa weights install offline, so the reinforcement pipeline's teachers are trained on the project's own
image-text data first (MobileCLIP2 uses DFN-pretrained ViT-L/14 teachers and a CoCa captioner; the roles are the
same, the scale is ~10^4x smaller). Views are drawn with the same replayable RandomResizedCrop + RandAugment
(``quartet.clip.augment``) the reinforcement stores. Only the emoji *training* split is used (the held-out split of
``quartet.clip.evaluate.heldout_split`` stays unseen by teachers and students alike); OpenClipart pairs can be
added as extra, noisier training data.

Checkpoints are cached under ``cache_dir("clip", "teachers")`` keyed by a hash of the full config, so a second demo
or reproduction reuses them. ``CoCa-*`` models are trained with open_clip's ``CoCaLoss`` (captioning + contrastive).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from quartet.clip.models import ClipBundle, conv_tower_to_nhwc, create_model, load_checkpoint, save_checkpoint
from quartet.clip.train import lr_at, param_groups
from quartet.core.config import to_dict
from quartet.core.device import adamw
from quartet.core.errors import QuartetError
from quartet.core.paths import cache_dir
from quartet.core.progress import get_logger, progress_bar
from quartet.core.seed import numpy_rng, seed_everything

log = get_logger("quartet.clip.train_teacher")


@dataclass
class TeacherConfig:
    """``quartet clip train-teacher``: a CLIP teacher (or a ``CoCa-*`` captioner) on image-text data."""

    model: str = "MCi-micro"
    """a CLIP preset, ``CoCa-*`` (captioner), or ``lit:<preset>`` (that preset's image tower against the frozen,
    pretrained MiniLM text encoder; see quartet.clip.lit)"""
    data: str = "emoji"  # comma-separated quartet.data image-text sets: emoji (train split), openclipart, shapes
    image_size: int = 64
    limit: int = 0  # use only the first N pairs of each set (0 = all)
    steps: int = 400
    batch_size: int = 64
    lr: float = 1e-3
    min_lr: float = 1e-6
    warmup: int = 40
    weight_decay: float = 0.2
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0
    augment: bool = True
    caption_loss_weight: float = 2.0  # CoCa only
    clip_loss_weight: float = 1.0  # CoCa only
    seed: int = 0
    threads: int = 0
    out: str | None = None  # checkpoint path; default: the config-keyed cache
    force: bool = False  # retrain even when a cached checkpoint exists

    # not part of the key: how to train, not what
    @property
    def key(self) -> str:
        d = to_dict(self)
        for k in ("threads", "out", "force"):
            d.pop(k)
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]


def checkpoint_path(cfg: TeacherConfig) -> Path:
    if cfg.out:
        return Path(cfg.out)
    return cache_dir("clip", "teachers") / f"{cfg.model.replace(':', '-')}-{cfg.key}.safetensors"


def training_pairs(spec: str, size: int, limit: int = 0) -> tuple[list[Image.Image], list[str]]:
    """Images and captions of the named sets; emoji contributes only its training split."""
    from quartet import data
    from quartet.clip.evaluate import heldout_split

    images: list[Image.Image] = []
    caps: list[str] = []
    for name in [s.strip() for s in spec.split(",") if s.strip()]:
        if name not in ("emoji", "openclipart", "shapes"):
            raise QuartetError(f"unknown training set {name!r}; use emoji, openclipart or shapes")
        ds = data.load(name, size=size)
        if name == "emoji":
            ds = ds.subset(heldout_split(len(ds))[0])
        if limit:
            ds = ds.subset(slice(0, limit))
        images += [Image.fromarray(a) for a in ds.images]
        caps += list(ds.captions)
    if not images:
        raise QuartetError(f"no training pairs from {spec!r}")
    return images, caps


def _views(images: list[Image.Image], idx: np.ndarray, rng: np.random.Generator, size: int, aug: bool
           ) -> list[Image.Image]:
    from quartet.clip.augment import AugConfig, augment

    if not aug:
        return [images[i].resize((size, size), Image.BICUBIC) if images[i].size != (size, size) else images[i]
                for i in idx]
    cfg = AugConfig(crop_size=size)
    return [augment(images[i], rng, cfg)[0] for i in idx]


def train_teacher(cfg: TeacherConfig, pairs: tuple[list[Image.Image], list[str]] | None = None,
                  quiet: bool = False) -> Path:
    """Train (or reuse from the cache) and return the checkpoint path."""
    path = checkpoint_path(cfg)
    if path.exists() and not cfg.force:
        log.info("reusing cached %s (%s)", cfg.model, path)
        return path
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    images, caps = pairs if pairs is not None else training_pairs(cfg.data, cfg.image_size, cfg.limit)
    if cfg.model.startswith("lit:"):
        from quartet.clip.lit import train_lit_teacher

        return train_lit_teacher(cfg, path, (images, caps), quiet=quiet)
    seed_everything(cfg.seed)
    bundle = create_model(cfg.model, image_size=cfg.image_size)
    model = bundle.model
    model.train()
    conv_tower_to_nhwc(model.visual)
    coca = cfg.model.lower().startswith("coca")
    if coca:
        from open_clip.loss import CoCaLoss

        loss_fn: Any = CoCaLoss(caption_loss_weight=cfg.caption_loss_weight, clip_loss_weight=cfg.clip_loss_weight,
                                pad_id=0)
    else:
        from quartet.clip.loss import ReinforcedClipLoss

        loss_fn = ReinforcedClipLoss(0.0)
    opt = adamw(param_groups(model, cfg.weight_decay), next(model.parameters()).device, lr=cfg.lr,
                betas=(cfg.beta1, cfg.beta2), eps=1e-6)
    bar = None if quiet else progress_bar(cfg.steps, desc=f"train {cfg.model}", unit="step")
    t0 = time.perf_counter()
    history = []
    for step in range(cfg.steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, cfg)  # type: ignore[arg-type]
        rng = numpy_rng(cfg.seed, 21, step)
        idx = rng.choice(len(images), size=cfg.batch_size, replace=False)
        x = bundle.images_to_tensor(_views(images, idx, rng, cfg.image_size, cfg.augment))
        t = bundle.tokenize([caps[i] for i in idx])
        if coca:
            out = model(x, t)
            losses = loss_fn(**out, output_dict=True)
            loss = sum(losses.values())
        else:
            img_f, txt_f, scale = model(x, t)[:3]
            loss = loss_fn(img_f, txt_f, scale)["loss"]
        history.append(optimizer_step(model, opt, loss, cfg.grad_clip))
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{history[-1]:.3f}")
    if bar is not None:
        bar.close()
    model.eval()
    save_checkpoint(bundle, path)
    return write_training_log(path, cfg, history, t0, len(images))


def optimizer_step(model: torch.nn.Module, opt: torch.optim.Optimizer, loss: torch.Tensor, grad_clip: float) -> float:
    """Backward, clip, step, and cap the model's logit scale at 100; returns the loss value."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    opt.step()
    with torch.no_grad():
        model.logit_scale.clamp_(0, float(np.log(100.0)))
    return float(loss.detach())


def write_training_log(path: Path, cfg: TeacherConfig, history: list[float], t0: float, pairs: int) -> Path:
    """The JSON beside a teacher checkpoint (config, first/last losses, seconds, pairs); returns ``path``."""
    from quartet.core.io import atomic_write_json

    atomic_write_json(path.with_suffix(".json"), {"config": to_dict(cfg), "loss_first": history[:5],
                                                  "loss_last": history[-5:], "seconds": time.perf_counter() - t0,
                                                  "pairs": pairs})
    log.info("%s trained in %.0f s -> %s", cfg.model, time.perf_counter() - t0, path)
    return path


def load_teacher(path: str | Path) -> ClipBundle:
    return load_checkpoint(path)


def as_teacher(bundle: ClipBundle, name: str) -> Any:
    """Wrap a trained CLIP bundle as a reinforcement teacher (``quartet.clip.teachers.OpenClipTeacher``)."""
    from quartet.clip.teachers import OpenClipTeacher

    return OpenClipTeacher.from_model(bundle.model, name=name, image_size=bundle.image_size, mean=bundle.mean,
                                      std=bundle.std, tokenizer=bundle.tokenizer)


def as_captioner(bundle: ClipBundle) -> Any:
    """Wrap a trained ``CoCa-*`` bundle as the caption generator (``quartet.clip.captioners.CoCaCaptioner``)."""
    from quartet.clip.captioners import CoCaCaptioner

    return CoCaCaptioner.from_model(bundle.model, image_size=bundle.image_size, mean=bundle.mean, std=bundle.std,
                                    tokenizer=bundle.tokenizer)


def main(argv: list[str]) -> int:
    from quartet.core.config import parse_cli

    cfg = parse_cli(TeacherConfig, argv, prog="quartet clip train-teacher")
    path = train_teacher(cfg)
    print(f"teacher checkpoint: {path}")
    return 0
