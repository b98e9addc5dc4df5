"""``quartet lm train``: one recipe for Dataset Decomposition (VSL + curriculum) and its baselines.

``arm`` selects the data path: ``dd`` (VSL sampler over the buckets, ``curriculum`` and ``cycles``), ``cc`` (C&C-n),
``cc_dm`` (C&C-n + document masking), ``pack_dm`` (best-fit-decreasing packing + DM). All arms run
``total_tokens // tokens_per_step`` optimizer steps of exactly ``tokens_per_step`` token slots on the same model, so
token budgets are equal. AdamW with linear warm-up and a cosine decay over all steps (cycles do not restart it, as in
the paper), gradient clipping, optional z-loss. Under ``torchrun`` each rank takes its slice of every step (all ranks
draw the same bucket) and DDP averages gradients (gloo on CPU, NCCL on CUDA).

Logged per step (``metrics.jsonl``): tokens, loss, lr, sequence length, step time and training wall time (held-out
evaluation and checkpoints excluded). A checkpoint holds model, optimizer, scheduler, sampler position and RNG
state; ``--resume RUN_DIR`` continues bit-exactly on CPU (tested: the same loss curve as an uninterrupted run).
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from quartet.core.config import from_dict, load_yaml, parse_cli, to_dict
from quartet.core.device import adamw, autocast, synchronize
from quartet.core.distributed import (
    DistInfo,
    all_reduce_mean,
    barrier,
    broadcast_object,
    cleanup,
    init_distributed,
)
from quartet.core.errors import QuartetError
from quartet.core.io import atomic_path, atomic_write_text
from quartet.core.progress import get_logger, progress_bar
from quartet.core.runs import RunDir
from quartet.core.seed import seed_everything
from quartet.lm.evaluate import eval_rows, heldout_loss
from quartet.lm.model import PRESETS, LlamaLM, lm_loss, save_hf
from quartet.lm.sampling import ConcatChunkSampler, PackSampler, VSLSampler
from quartet.lm.store import PreparedData

log = get_logger("lm.train")


@dataclass
class TrainConfig:
    """Train a Llama-style LM with Dataset Decomposition (VSL) or a baseline, at an equal token budget."""

    data: Path = Path("runs/lm/data/debian-pydocs")
    arm: Literal["dd", "cc", "cc_dm", "pack_dm"] = "dd"
    curriculum: str = "grow_p2"
    """uniform | grow_linear | grow_p2 | grow_p100 | custom:o1,o2,... (DD only)"""
    cycles: int = 1
    seq_len: int = 1024
    """baselines: the sequence length n; DD: the longest bucket used (2^k <= seq_len)"""
    min_len: int | None = None
    """DD: the shortest bucket used (default: all prepared buckets)"""
    tokens_per_step: int = 8192
    total_tokens: int = 1_000_000
    model: str = "small"
    dim: int | None = None
    n_layers: int | None = None
    n_heads: int | None = None
    lr: float = 3e-3
    min_lr_ratio: float = 0.1
    warmup_frac: float = 0.05
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    z_loss: float = 0.0
    seed: int = 0
    eval_every: int = 20
    eval_docs: int = 200
    """held-out documents evaluated during training (a fixed random sample)"""
    final_eval_docs: int | None = None
    """held-out documents in the final evaluation (None = all)"""
    ckpt_every: int = 50
    out: Path | None = None
    name: str = ""
    resume: Path | None = None
    """a run folder to continue (its config.yaml is used; other flags must agree)"""
    stop_after: int | None = None
    """stop (as if killed) after this many steps, keeping the last checkpoint"""
    device: str = "auto"
    threads: int = 1


RESUME_FREE = ("resume", "stop_after", "device", "threads", "out", "name")


def build_model(cfg: TrainConfig, vocab_size: int) -> LlamaLM:
    if cfg.model not in PRESETS:
        raise QuartetError(f"unknown model preset {cfg.model!r}; choose from {', '.join(PRESETS)}")
    mc = dataclasses.replace(PRESETS[cfg.model], vocab_size=vocab_size, max_seq_len=cfg.seq_len)
    for k in ("dim", "n_layers", "n_heads"):
        if getattr(cfg, k) is not None:
            mc = dataclasses.replace(mc, **{k: getattr(cfg, k)})
    return LlamaLM(mc)


def build_sampler(cfg: TrainConfig, data: PreparedData, dist: DistInfo) -> Any:
    if cfg.seq_len & (cfg.seq_len - 1):
        raise QuartetError(f"seq_len {cfg.seq_len} must be a power of two")
    kw = {"seed": cfg.seed, "world_size": dist.world_size, "rank": dist.rank}
    if cfg.arm == "dd":
        kmax = int(math.log2(cfg.seq_len))
        kmin = int(math.log2(cfg.min_len)) if cfg.min_len else data.min_log2
        if kmax > data.max_log2:
            raise QuartetError(f"seq_len {cfg.seq_len} exceeds the longest prepared bucket 2^{data.max_log2}")
        buckets = {k: v for k, v in data.buckets.items() if kmin <= k <= kmax}
        return VSLSampler(buckets, cfg.tokens_per_step, cfg.curriculum, cfg.cycles, **kw)
    if cfg.arm in ("cc", "cc_dm"):
        return ConcatChunkSampler(data.stream, cfg.seq_len, cfg.tokens_per_step, doc_mask=cfg.arm == "cc_dm", **kw)
    return PackSampler(data.stream, cfg.seq_len, cfg.tokens_per_step, pad_id=data.eos_id, **kw)


def lr_at(step: int, total: int, cfg: TrainConfig) -> float:
    """Linear warm-up then cosine decay to ``min_lr_ratio · lr`` over all ``total`` steps."""
    warm = max(1, int(cfg.warmup_frac * total))
    if step < warm:
        return cfg.lr * (step + 1) / warm
    t = (step - warm) / max(1, total - warm)
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(t, 1.0))))


def _resolve_resume(cfg: TrainConfig) -> tuple[TrainConfig, RunDir]:
    run = RunDir(cfg.resume)  # type: ignore[arg-type]
    saved = from_dict(TrainConfig, load_yaml(run.path / "config.yaml"))
    a, b = to_dict(saved), to_dict(cfg)
    defaults = to_dict(TrainConfig())
    diff = {k: (a[k], b[k]) for k in a if k not in RESUME_FREE and b[k] != a[k] and b[k] != defaults[k]}
    if diff:
        raise QuartetError(f"resume of {run.path} with different settings {diff} (saved, given); drop those flags")
    keep = {k: getattr(cfg, k) for k in RESUME_FREE}
    return dataclasses.replace(saved, **keep), run


class Trainer:
    """One training run split into steps, so several runs can be interleaved step by step in one process
    (``quartet lm reproduce`` does this: on a shared machine every arm then sees the same background load)."""

    def __init__(self, cfg: TrainConfig, dist: DistInfo | None = None):
        self.dist = dist or init_distributed(cfg.device)
        torch.set_num_threads(max(1, cfg.threads))
        self.run: RunDir | None = None
        if cfg.resume is not None:
            cfg, self.run = _resolve_resume(cfg)
        self.cfg = cfg
        seed_everything(cfg.seed)
        self.data = PreparedData(cfg.data)
        self.model = build_model(cfg, self.data.vocab_size).to(self.dist.device)
        self.sampler = build_sampler(cfg, self.data, self.dist)
        self.steps = cfg.total_tokens // cfg.tokens_per_step
        if self.steps < 1:
            raise QuartetError(f"total_tokens {cfg.total_tokens} < tokens_per_step {cfg.tokens_per_step}")
        named = list(self.model.named_parameters())
        decay = [p for n, p in named if p.ndim >= 2 and "embed" not in n]
        no_decay = [p for n, p in named if not (p.ndim >= 2 and "embed" not in n)]
        self.opt = adamw([{"params": decay, "weight_decay": cfg.weight_decay},
                          {"params": no_decay, "weight_decay": 0.0}], self.dist.device, lr=cfg.lr, betas=(0.9, 0.95),
                         eps=1e-8)
        if self.dist.is_main and self.run is None:
            name = cfg.name or f"lm-{cfg.arm}" + (f"-{cfg.curriculum}-x{cfg.cycles}" if cfg.arm == "dd" else
                                                  f"-{cfg.seq_len}")
            self.run = RunDir.create(name, root=cfg.out, config=cfg)
        run_path = broadcast_object(str(self.run.path) if self.run else None)
        self.run = self.run or RunDir(run_path)  # type: ignore[arg-type]
        self.ckpt = self.run.checkpoints / "last.pt"
        self.step_i, self.wall, self.tokens = 0, 0.0, 0
        if cfg.resume is not None and self.ckpt.is_file():
            self._load()
        self.ddp = torch.nn.parallel.DistributedDataParallel(self.model) if self.dist.distributed else self.model
        self.rows = eval_rows(self.data.val, cfg.seq_len, cfg.eval_docs, seed=0)
        self.step_times: dict[int, list[float]] = {}
        if self.dist.is_main:
            log.info("%s: %d steps x %d tokens, %s params, %s", cfg.arm, self.steps, cfg.tokens_per_step,
                     f"{self.model.num_params():,}", self.run.path)
        if self.step_i == 0:
            self.evaluate()

    @property
    def finished(self) -> bool:
        return self.step_i >= self.steps

    def _load(self) -> None:
        st = torch.load(self.ckpt, map_location=self.dist.device, weights_only=True)
        self.model.load_state_dict(st["model"])
        self.opt.load_state_dict(st["optim"])
        self.sampler.load_state_dict(st["sampler"])
        torch.set_rng_state(st["torch_rng"].cpu())
        self.step_i, self.wall, self.tokens = int(st["step"]), float(st["wall_s"]), int(st["tokens"])
        if self.dist.is_main:  # drop records logged after the checkpoint
            keep = [r for r in self.run.read_metrics() if r.get("step", 0) <= self.step_i]
            atomic_write_text(self.run.metrics_path, "".join(json.dumps(r) + "\n" for r in keep))
        log.info("resumed %s at step %d", self.run.path, self.step_i)

    def evaluate(self) -> float:
        ev = heldout_loss(self.model, self.rows, self.dist.device)
        if self.dist.is_main:
            self.run.log({"eval": True, "step": self.step_i, "tokens": self.tokens, "wall_s": self.wall,
                          "val_loss": ev["loss"]})
        return ev["loss"]

    def checkpoint(self) -> None:
        if self.dist.is_main:
            state = {"model": self.model.state_dict(), "optim": self.opt.state_dict(),
                     "sampler": self.sampler.state_dict(), "step": self.step_i, "wall_s": self.wall,
                     "tokens": self.tokens, "torch_rng": torch.get_rng_state()}
            with atomic_path(self.ckpt) as tmp:
                torch.save(state, tmp)

    def step(self) -> dict[str, Any]:
        """One optimizer step (timed), then held-out evaluation / checkpoint when due (not timed)."""
        cfg, dev = self.cfg, self.dist.device
        t0 = time.perf_counter()
        batch = self.sampler.next()
        x = torch.from_numpy(batch.tokens).to(dev)
        seg = torch.from_numpy(batch.segments).to(dev) if batch.segments is not None else None
        lm = torch.from_numpy(batch.loss_mask).to(dev) if batch.loss_mask is not None else None
        lr = lr_at(self.step_i, self.steps, cfg)
        for g in self.opt.param_groups:
            g["lr"] = lr
        with autocast(dev):
            logits = self.ddp(x, seg)
        loss, ce = lm_loss(logits, x, seg, lm, cfg.z_loss)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        self.opt.step()
        synchronize(dev)
        dt = time.perf_counter() - t0
        self.wall += dt
        self.tokens += cfg.tokens_per_step
        self.step_i += 1
        self.step_times.setdefault(batch.seq_len, []).append(dt)
        ce_all = float(all_reduce_mean(ce))
        if not math.isfinite(ce_all):
            raise QuartetError(f"loss became {ce_all} at step {self.step_i}; lower --lr or enable --z-loss")
        rec = {"step": self.step_i, "tokens": self.tokens, "loss": ce_all, "lr": lr, "seq_len": batch.seq_len,
               "step_s": dt, "wall_s": self.wall, "grad_norm": float(gnorm)}
        if self.dist.is_main:
            self.run.log(rec)
        done = self.step_i
        if done % cfg.eval_every == 0 or done == self.steps:
            self.evaluate()
        if done % cfg.ckpt_every == 0 or done == self.steps or done == cfg.stop_after:
            self.checkpoint()
        barrier()
        return rec

    def finish(self) -> dict[str, Any]:
        """Final evaluation on all held-out documents, HF-format model, ``result.json`` and the loss plot."""
        if not self.dist.is_main:
            return {}
        cfg = self.cfg
        final = heldout_loss(self.model, eval_rows(self.data.val, cfg.seq_len, cfg.final_eval_docs, seed=1),
                             self.dist.device)
        evals = [r for r in self.run.read_metrics() if r.get("eval")]
        result = {
            "arm": cfg.arm, "curriculum": cfg.curriculum if cfg.arm == "dd" else None,
            "cycles": cfg.cycles if cfg.arm == "dd" else None, "seq_len": cfg.seq_len, "seed": cfg.seed,
            "steps": self.steps, "tokens": self.tokens, "wall_s": self.wall, "world_size": self.dist.world_size,
            "final_val_loss": final["loss"], "val_by_position": final["by_position"],
            "eval_curve": [{"wall_s": r["wall_s"], "tokens": r["tokens"], "val_loss": r["val_loss"]} for r in evals],
            "step_time_by_len": {str(k): float(np.median(v)) for k, v in sorted(self.step_times.items())},
            "steps_by_len": {str(k): len(v) for k, v in sorted(self.step_times.items())},
            "params": self.model.num_params(), "run": str(self.run.path),
        }
        save_hf(self.model, self.run.path / "model")
        self.run.write_result(result)
        _plot(self.run)
        return result


def train(cfg: TrainConfig) -> dict[str, Any]:
    """Run (or resume) one training run; returns the result summary (also in ``result.json``)."""
    tr = Trainer(cfg)
    with progress_bar(tr.steps - tr.step_i, desc=f"train {tr.cfg.arm}", unit="step") as bar:
        while not tr.finished:
            tr.step()
            bar.update(1)
            stop = tr.cfg.stop_after
            if stop is not None and tr.step_i >= stop and not tr.finished:
                log.info("stopping after step %d as asked (resume with --resume %s)", tr.step_i, tr.run.path)
                cleanup()
                return {"stopped_at": tr.step_i, "run": str(tr.run.path)}
    result = tr.finish()
    cleanup()
    return result


def _plot(run: RunDir) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    recs = run.read_metrics()
    tr = [r for r in recs if "loss" in r]
    ev = [r for r in recs if r.get("eval")]
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.5))
    ax[0].plot([r["tokens"] for r in tr], [r["loss"] for r in tr], lw=0.8, label="train")
    ax[0].plot([r["tokens"] for r in ev], [r["val_loss"] for r in ev], "o-", label="held-out")
    ax[0].set_xlabel("tokens")
    ax[1].plot([r["wall_s"] for r in ev], [r["val_loss"] for r in ev], "o-")
    ax[1].set_xlabel("training wall time (s)")
    for a in ax:
        a.set_ylabel("loss")
        a.grid(alpha=0.3)
    ax[0].legend()
    fig.tight_layout()
    fig.savefig(run.plot_path("loss"), dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    cfg = parse_cli(TrainConfig, argv, prog="quartet lm train")
    res = train(cfg)
    if res.get("stopped_at"):
        print(f"stopped after step {res['stopped_at']}; resume with: quartet lm train --resume {res['run']}")
    elif res:
        print(f"{res['arm']}: {res['steps']} steps, {res['tokens']:,} tokens, {res['wall_s']:.1f} s training, "
              f"held-out loss {res['final_val_loss']:.4f}")
        print(f"run folder: {res['run']} (metrics.jsonl, plots/loss.png, model/ loads with LlamaForCausalLM)")
    return 0
