"""Student training on reinforced shards: ``plain`` / ``reinforced`` / ``online`` (MobileCLIP2 2508.20691 §3).

A flat recipe (setup -> train -> evaluate), run single-process or under ``torchrun`` (DDP; gloo on CPU, nccl on
GPU). Modes, all on the same data, augmentations and step budget:

- ``plain``: CLIP loss on the real captions only (λ=0, no synthetic batch) -- the baseline.
- ``reinforced``: ``L_total(B_real) + L_total(B_syn)`` with the teacher targets read from the shards; costs about
  what plain costs (one more text forward for the synthetic batch, a [B,D] gather of stored rows).
- ``online``: the same loss, but the teacher ensemble runs on every step's views and captions -- the expensive
  baseline dataset reinforcement replaces (its cost grows with the teachers' FLOPs).

Optimiser as in the paper: AdamW β=(0.9, 0.95), weight decay 0.2 on weights only (not on norms, biases, the logit
scale), cosine from ``lr`` to ``min_lr`` after a linear warmup, grad-norm clip 1.0, bf16 autocast on CUDA. The
student's scale is learnable (init 1/0.07) and clamped to <= 100 after each step. Checkpoints (model, optimiser,
step) are written atomically every ``checkpoint_every`` steps; a restarted run resumes at the last one and, because
batches are a pure function of (seed, step), reproduces the uninterrupted loss curve exactly.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from quartet.clip.loss import MAX_LOG_SCALE, ReinforcedClipLoss
from quartet.clip.models import ClipBundle, conv_tower_to_nhwc, create_model, save_checkpoint
from quartet.clip.train_data import ReinforcedTable, load_table, make_batch
from quartet.core.device import adamw, autocast, synchronize
from quartet.core.distributed import DistInfo, all_reduce_mean, barrier, init_distributed
from quartet.core.errors import QuartetError
from quartet.core.io import atomic_path
from quartet.core.progress import get_logger, progress_bar
from quartet.core.runs import RunDir
from quartet.core.seed import seed_everything

log = get_logger("quartet.clip.train")
Mode = Literal["plain", "reinforced", "online"]


@dataclass
class TrainConfig:
    """``quartet clip train``: a student on reinforced shards."""

    data: str = ""  # reinforced dataset folder (written by `quartet clip reinforce`)
    mode: Mode = "reinforced"
    model: str = "MCi-nano"  # our preset or an open_clip name (MobileCLIP2-S0, ...)
    image_size: int = 64  # student resolution; stored augmentations are replayed at this size
    steps: int = 300
    batch_size: int = 64  # global batch (split over DDP ranks)
    lr: float = 1e-3
    min_lr: float = 1e-6
    warmup: int = 30
    weight_decay: float = 0.2
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0
    lam: float = 1.0  # λ: weight of the distillation term (ignored in plain mode)
    syn_captions: bool = True  # add the synthetic-caption batch B_syn (ignored in plain mode)
    kd_scales: list[float] = field(default_factory=list)  # per-teacher KD scale; one value = all; empty = stored
    teachers: list[int] = field(default_factory=list)  # subset of stored teachers (empty = all)
    n_aug: int = 0  # use only the first n stored augmentations (0 = all)
    n_syn: int = 0  # use only the first n synthetic captions (0 = all)
    storage: Literal["fp32", "fp16", "bf16"] = "fp32"  # simulate storing teacher embeddings at this precision
    teacher_checkpoints: list[str] = field(default_factory=list)  # online mode: teacher .safetensors files
    seed: int = 0
    log_every: int = 10
    eval_every: int = 0  # steps between evaluations (0 = only at the end)
    eval_sets: list[str] = field(default_factory=list)  # CLI: quartet.clip.evaluate.EVAL_SETS to report
    checkpoint_every: int = 100
    threads: int = 0  # torch CPU threads (0 = leave as is)
    device: str | None = None
    out: str | None = None  # run folder; resumed when it holds a checkpoint
    stop_after: int = 0  # stop (as if killed) after this many steps in this invocation (0 = run to `steps`)


@dataclass
class TrainResult:
    bundle: ClipBundle
    run: RunDir
    metrics: list[dict[str, Any]]
    seconds: float


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warmup to ``lr`` then cosine to ``min_lr`` at ``steps``."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    t = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * min(1.0, t)))


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay on matrices/kernels only (open_clip's exclusion of gains, biases and the logit scale)."""
    decay, no_decay = [], []
    for n, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 or "logit_scale" in n or "bias" in n or "norm" in n else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _prepare_table(cfg: TrainConfig, table: ReinforcedTable) -> tuple[ReinforcedTable, list[float]]:
    if cfg.teachers:
        table = table.select_teachers(cfg.teachers)
    table = table.limit(cfg.n_aug, cfg.n_syn).stored_as(cfg.storage)
    scales = list(cfg.kd_scales) or list(table.teacher_scales)
    if len(scales) == 1:
        scales = scales * len(table.teacher_dims)
    if len(scales) != len(table.teacher_dims):
        raise QuartetError(f"{len(scales)} KD scales for {len(table.teacher_dims)} teachers; give one or one each")
    return table, scales


def _load_teachers(cfg: TrainConfig) -> Any:
    from quartet.clip.models import load_checkpoint
    from quartet.clip.teachers import OpenClipTeacher, TeacherEnsemble

    if not cfg.teacher_checkpoints:
        raise QuartetError("online mode needs --teacher-checkpoints (the teachers' .safetensors files)")
    ts = []
    for p in cfg.teacher_checkpoints:
        b = load_checkpoint(p)
        ts.append(OpenClipTeacher.from_model(b.model, name=Path(p).stem, image_size=b.image_size, mean=b.mean,
                                             std=b.std, tokenizer=b.tokenizer))
    return TeacherEnsemble(ts)


@dataclass
class Student:
    """Everything one training step needs (built by :func:`setup`; stepped by :meth:`step`)."""

    cfg: TrainConfig
    bundle: ClipBundle
    ddp: torch.nn.Module
    opt: torch.optim.Optimizer
    loss_fn: ReinforcedClipLoss
    table: ReinforcedTable
    teachers: Any
    dist: DistInfo
    lam: float
    with_syn: bool

    def step(self, step: int) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """One optimiser step on global batch ``step``; returns the loss parts and the gradient norm."""
        cfg, device, model = self.cfg, self.dist.device, self.bundle.model
        online = cfg.mode == "online"
        for g in self.opt.param_groups:
            g["lr"] = lr_at(step, cfg)
        b = make_batch(self.table, step, cfg.batch_size, cfg.seed, cfg.image_size, self.bundle.mean,
                       self.bundle.std, self.bundle.tokenize, with_syn=self.with_syn,
                       with_teacher=(self.lam > 0 and not online), keep_views=online and self.lam > 0,
                       rank=self.dist.rank, world_size=self.dist.world_size)
        t_img, t_txt, t_syn = b.teacher_image, b.teacher_text, b.teacher_syn
        if online and self.lam > 0:
            with torch.no_grad():
                t_img = self.teachers.encode_images(b.views).float()
                t_txt = self.teachers.encode_texts(b.captions).float()
                t_syn = self.teachers.encode_texts(b.syn_captions).float() if self.with_syn else None
        tokens = b.text_tokens if b.syn_tokens is None else torch.cat([b.text_tokens, b.syn_tokens])
        local_b = b.images.shape[0]
        with autocast(device):
            img_f, txt_f, scale = self.ddp(b.images.to(device), tokens.to(device))[:3]
            txt_real, txt_syn = (txt_f, None) if b.syn_tokens is None else txt_f.split(local_b)
            dev = (lambda x: None if x is None else x.to(device))  # noqa: E731
            out = self.loss_fn(img_f.float(), txt_real.float(), scale.float(), dev(t_img), dev(t_txt),
                               None if txt_syn is None else txt_syn.float(), dev(t_syn))
        self.opt.zero_grad(set_to_none=True)
        # Every rank holds the same global loss but only its own slice carries gradient (all_gather_grad), and DDP
        # averages over ranks: scaling by the world size makes the update equal the single-process one.
        (out["loss"] * self.dist.world_size).backward()
        gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        self.opt.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, MAX_LOG_SCALE)
        return out, gnorm


def setup(cfg: TrainConfig, table: ReinforcedTable | None = None, teachers: Any = None) -> Student:
    """Data, model, optimiser and loss for ``cfg`` (the same seed gives the same initial model on every rank)."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    dist_info: DistInfo = init_distributed(cfg.device)
    device = dist_info.device
    if table is None:
        if not cfg.data:
            raise QuartetError("no training data: pass --data <reinforced folder>")
        table = load_table(cfg.data)
    table, scales = _prepare_table(cfg, table)
    plain = cfg.mode == "plain"
    lam = 0.0 if plain else cfg.lam
    with_syn = (not plain) and cfg.syn_captions
    if cfg.mode == "online" and lam > 0 and teachers is None:
        teachers = _load_teachers(cfg)
    if cfg.batch_size % dist_info.world_size:
        raise QuartetError(f"batch_size {cfg.batch_size} must be divisible by the world size {dist_info.world_size}")
    seed_everything(cfg.seed)
    bundle = create_model(cfg.model, image_size=cfg.image_size, device=device)
    model = bundle.model
    model.train()
    conv_tower_to_nhwc(model.visual)
    opt = adamw(param_groups(model, cfg.weight_decay), device, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=1e-6)
    loss_fn = ReinforcedClipLoss(lam, table.teacher_dims, scales) if lam > 0 else ReinforcedClipLoss(0.0)
    return Student(cfg, bundle, model, opt, loss_fn, table, teachers, dist_info, lam, with_syn)


def train(cfg: TrainConfig, table: ReinforcedTable | None = None, teachers: Any = None,
          eval_fn: Callable[[ClipBundle], dict[str, float]] | None = None, quiet: bool = False) -> TrainResult:
    """Train a student as configured; returns the trained model (rank 0's copy) and its run folder.

    ``table``/``teachers`` may be passed in to share them between runs (reproduce, benchmark); ``eval_fn`` is
    called on the main rank every ``eval_every`` steps and at the end, and its numbers are logged."""
    st = setup(cfg, table, teachers)
    dist_info, device, bundle, model, opt = st.dist, st.dist.device, st.bundle, st.bundle.model, st.opt
    run = RunDir(cfg.out) if cfg.out else RunDir.create(f"clip-{cfg.mode}", config=cfg)
    if dist_info.is_main:
        run.write_config(cfg)
    ckpt = run.checkpoints / "last.pt"
    start = 0
    if ckpt.exists():
        state = torch.load(ckpt, map_location=device, weights_only=True)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        start = int(state["step"])
        if dist_info.is_main:
            _truncate_metrics(run, start)
            log.info("resuming %s at step %d", run.path, start)
    if dist_info.distributed:
        st.ddp = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index]
                                                           if device.type == "cuda" else None)

    end = cfg.steps if not cfg.stop_after else min(cfg.steps, start + cfg.stop_after)
    bar = progress_bar(end - start, desc=f"clip train {cfg.mode}", unit="step") if (
        dist_info.is_main and not quiet) else None
    t_train = 0.0
    samples = 0
    metrics: list[dict[str, Any]] = []
    for step in range(start, end):
        t0 = time.perf_counter()
        out, gnorm = st.step(step)
        synchronize(device)
        t_train += time.perf_counter() - t0
        samples += cfg.batch_size
        if bar is not None:
            bar.update(1)
        last = step + 1 == end
        if (step + 1) % cfg.log_every == 0 or last:
            rec = {"step": step + 1, "lr": lr_at(step, cfg), "scale": float(model.logit_scale.detach().exp()),
                   "grad_norm": float(gnorm)}
            rec.update({k: float(all_reduce_mean(v.detach().float())) for k, v in out.items()})
            rec["samples_per_s"] = samples / t_train
            if eval_fn is not None and dist_info.is_main and (
                    last or (cfg.eval_every and (step + 1) % cfg.eval_every == 0)):
                model.eval()
                rec.update(eval_fn(bundle))
                model.train()
            if dist_info.is_main:
                run.log(rec)
                metrics.append(rec)
                if bar is not None:
                    bar.set_postfix(loss=f"{rec['loss']:.3f}")
        if (step + 1) % cfg.checkpoint_every == 0 or last:
            _save_state(run, model, opt, step + 1, dist_info)
    if bar is not None:
        bar.close()
    seconds = t_train
    table = st.table
    scales = st.loss_fn.scales
    if dist_info.is_main and end == cfg.steps:
        save_checkpoint(bundle, run.path / "model.safetensors")
        all_metrics = run.read_metrics()
        run.write_result({"mode": cfg.mode, "steps": cfg.steps, "final": all_metrics[-1] if all_metrics else {},
                          "teachers": table.teacher_names, "kd_scales": scales, "train_seconds": seconds})
        _plot(run, all_metrics)
    barrier()
    model.eval()
    return TrainResult(bundle=bundle, run=run, metrics=metrics, seconds=seconds)


def _save_state(run: RunDir, model: torch.nn.Module, opt: torch.optim.Optimizer, step: int, info: DistInfo) -> None:
    if not info.is_main:
        return
    with atomic_path(run.checkpoints / "last.pt") as tmp:
        torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step}, tmp)


def _truncate_metrics(run: RunDir, step: int) -> None:
    """Drop records logged after the checkpoint we resume from (they will be logged again)."""
    import json

    from quartet.core.io import atomic_write_text

    keep = [r for r in run.read_metrics() if int(r.get("step", 0)) <= step]
    atomic_write_text(run.metrics_path, "".join(json.dumps(r) + "\n" for r in keep))


def _plot(run: RunDir, metrics: list[dict[str, Any]]) -> None:
    if not metrics:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot([m["step"] for m in metrics], [m["loss"] for m in metrics])
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(run.path.name)
    fig.tight_layout()
    fig.savefig(run.plot_path("loss"), dpi=100)
    plt.close(fig)


def main(argv: list[str]) -> int:
    """``quartet clip train``: single process, or ``torchrun --nproc_per_node N -m quartet clip train ...``."""
    from quartet.core.config import parse_cli
    from quartet.core.distributed import cleanup

    cfg = parse_cli(TrainConfig, argv, prog="quartet clip train")
    eval_fn = None
    if cfg.eval_sets:
        from quartet.clip.evaluate import evaluate, load_eval_sets

        sets = load_eval_sets(cfg.eval_sets)
        eval_fn = lambda b: evaluate(b, sets)  # noqa: E731
    res = train(cfg, eval_fn=eval_fn)
    if init_distributed(cfg.device).is_main:
        final = res.metrics[-1] if res.metrics else {}
        print(f"run folder: {res.run.path}")
        print(f"model: {res.run.path / 'model.safetensors'}")
        print("final: " + ", ".join(f"{k}={v:.4g}" for k, v in final.items() if isinstance(v, float)))
    cleanup()
    return 0
