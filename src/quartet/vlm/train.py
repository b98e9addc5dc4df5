"""``quartet vlm train --stage 1|1.5|2``: the LLaVA-1.5 recipe used by FastVLM (arXiv 2412.13303).

- Stage 1 (alignment): only the projector trains; defaults lr 1e-3, global batch 256.
- Stage 1.5 (resolution scaling, FastVLM's 3-stage setup): everything trains at the target resolution
  (``--resolution``) on densely captioned images (a build-data folder of "Describe the image." pairs); defaults lr
  2e-5, global batch 128 (stage 2's values). ``--no-train-encoder`` and ``--lora`` apply as in stage 2.
- Stage 2 (instruction tuning): everything trains (or LoRA adapters on the LLM via ``peft`` with ``--lora``);
  defaults lr 2e-5, global batch 128. ``--no-train-encoder`` keeps the vision encoder frozen (LLaVA-1.5 style).
- Both: 1 epoch, cosine schedule with 3% linear warm-up, weight decay 0, AdamW; loss only on answer tokens (and
  the closing ``<|im_end|>``), never on the prompt or the image tokens.

When the encoder is frozen its outputs are computed once per image and cached (``cache_features``): on CPU the
encoder's depthwise-conv backward dominates a step, and a frozen encoder makes each step 5-20x cheaper here.
Multi-process: launch with ``torchrun --nproc_per_node N -m quartet vlm train ...`` (DDP, gloo on CPU / NCCL on
GPU); each rank takes every N-th micro-batch. Resume: ``--resume RUN_DIR`` continues from the last saved step.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from quartet.core.errors import QuartetError
from quartet.core.progress import get_logger, progress_bar
from quartet.vlm.data import QADataset, load_qa, make_textimage
from quartet.vlm.model import IGNORE, FastVLM, VLMConfig, build_vlm, load_vlm
from quartet.vlm.preprocess import preprocess_batch
from quartet.vlm.text import DEFAULT_SYSTEM, IM_END, IM_START, IMAGE_TOKEN, build_tokenizer

log = get_logger("vlm.train")

STAGE_DEFAULTS = {1: dict(lr=1e-3, batch_size=256), 1.5: dict(lr=2e-5, batch_size=128),
                  2: dict(lr=2e-5, batch_size=128)}  # LLaVA-1.5 (stage 1.5 reuses stage 2's values)


def check_stage(stage: float) -> float:
    if stage not in STAGE_DEFAULTS:
        raise QuartetError(f"--stage must be 1, 1.5 or 2, got {stage:g}")
    return float(stage)


@dataclass
class TrainConfig:
    """One training stage of a FastVLM."""

    stage: float = 1  # 1 (projector), 1.5 (resolution scaling: everything), 2 (instruction tuning: everything)
    model: VLMConfig = field(default_factory=VLMConfig)
    init: str | None = None  # checkpoint folder to start from (stage 2: stage 1's ``model/``)
    resolution: int | None = None  # input size; None: the model's (``--model.resolution`` or the checkpoint's)
    data: str = "textimage"  # a build-data folder, or "textimage" (generated on the fly)
    n_train: int = 2000
    lr: float | None = None  # None: 1e-3 (stage 1) / 2e-5 (stages 1.5 and 2)
    batch_size: int | None = None  # global batch; None: 256 (stage 1) / 128 (stages 1.5 and 2)
    micro_batch: int = 32
    epochs: float = 1.0
    warmup_ratio: float = 0.03
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    train_encoder: bool = True  # stages 1.5 and 2
    lora: bool = False
    lora_r: int = 8
    lora_alpha: int = 16
    cache_features: bool = True
    tokenizer_vocab: int = 384
    eval_n: int = 200
    max_new_tokens: int = 8
    save_every: int = 50  # steps
    device: str = "auto"
    threads: int | None = 2
    seed: int = 0
    out: str | None = None
    name: str = "vlm-train"
    resume: str | None = None  # a run folder to continue


@functools.lru_cache(maxsize=4)
def _textimage(n: int, seed: int, split: str) -> QADataset:
    return make_textimage(n, seed=seed, split=split)


def load_split(data: str, split: str, n: int, seed: int) -> QADataset:
    """``textimage`` generates ``n`` items of ``split``; a folder is split 90/10 (train/val) deterministically."""
    if data == "textimage":
        return _textimage(n, seed, split)
    ds = load_qa(data)
    order = np.random.default_rng(seed).permutation(len(ds))
    cut = int(0.9 * len(ds))
    idx = order[:cut] if split == "train" else order[cut:]
    return ds.subset(idx[:n])


def tokenizer_corpus(ds: QADataset) -> list[str]:
    """Texts a task tokenizer is trained on: the chat template pieces, questions and answers."""
    return [f"{IM_START}system\n{DEFAULT_SYSTEM}{IM_END}\n{IM_START}user\n{IMAGE_TOKEN}\n{q}{IM_END}\n"
            f"{IM_START}assistant\n{a}{IM_END}\n" for q, a in zip(ds.questions, ds.answers)]


def encode_example(model: FastVLM, question: str, answer: str) -> tuple[list[int], list[int]]:
    """Token ids of prompt + answer + ``<|im_end|>`` and labels that are ``IGNORE`` on the prompt."""
    p = model.tokenize_prompt(question)
    a = model.tokenizer(answer, add_special_tokens=False)["input_ids"] + [model.tokenizer.convert_tokens_to_ids(IM_END)]
    return p + a, [IGNORE] * len(p) + a


def configure_trainable(model: FastVLM, cfg: TrainConfig) -> list[torch.nn.Parameter]:
    """Freeze/unfreeze per stage; returns the parameters the optimiser updates."""
    for p in model.parameters():
        p.requires_grad_(False)
    for p in model.projector.parameters():
        p.requires_grad_(True)
    if check_stage(cfg.stage) in (1.5, 2):
        if cfg.lora:
            from peft import LoraConfig, get_peft_model

            lcfg = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=0.0,
                              target_modules=["q_proj", "k_proj", "v_proj", "o_proj"])
            model.llm = get_peft_model(model.llm, lcfg)
        else:
            for p in model.llm.parameters():
                p.requires_grad_(True)
        if cfg.train_encoder:
            for p in model.encoder.parameters():
                p.requires_grad_(True)
    return [p for p in model.parameters() if p.requires_grad]


def lr_at(step: int, total: int, base: float, warmup_ratio: float) -> float:
    """Linear warm-up over ``warmup_ratio`` of the steps, then cosine to 0."""
    warm = max(1, math.ceil(warmup_ratio * total))
    if step < warm:
        return base * (step + 1) / warm
    t = (step - warm) / max(1, total - warm)
    return base * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))


@torch.no_grad()
def cache_encoder(model: FastVLM, ds: QADataset, resolution: int, batch: int = 64) -> torch.Tensor:
    """Encoder outputs ``(N, tokens, dim)`` for a frozen encoder, computed once."""
    model.encoder.eval()
    out = []
    with progress_bar(len(ds), desc=f"encode @{resolution}px", unit="img") as bar:
        for i in range(0, len(ds), batch):
            pix = preprocess_batch(list(ds.images[i:i + batch]), resolution).to(model.device)
            out.append(model.encoder(pix).cpu())
            bar.update(pix.shape[0])
    return torch.cat(out)


def _save_state(run_dir: Path, model: FastVLM, opt: torch.optim.Optimizer, step: int) -> None:
    from quartet.core.io import atomic_path

    ck = run_dir / "checkpoints"
    model_to_save = _merged(model)
    model_to_save.save(ck / "last")
    with atomic_path(ck / "trainer.pt") as tmp:
        torch.save({"step": step, "optimizer": opt.state_dict()}, tmp)


def _merged(model: FastVLM) -> FastVLM:
    """The model with LoRA adapters folded into the LLM weights (a plain HF model, as checkpoints store it)."""
    if hasattr(model.llm, "merge_and_unload"):
        import copy

        m = copy.deepcopy(model)
        m.llm = m.llm.merge_and_unload()
        return m
    return model


def train(cfg: TrainConfig) -> dict:
    """Run one stage; returns the result dict (also written to the run folder's ``result.json``)."""
    from quartet.core.device import adamw, autocast, channels_last_for_training
    from quartet.core.distributed import cleanup, init_distributed
    from quartet.core.runs import RunDir
    from quartet.core.seed import seed_everything
    from quartet.vlm.evaluate import evaluate_qa

    check_stage(cfg.stage)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    seed_everything(cfg.seed)
    dist = init_distributed(None if cfg.device == "auto" else cfg.device)
    dev = dist.device
    lr = cfg.lr if cfg.lr is not None else STAGE_DEFAULTS[cfg.stage]["lr"]
    batch = cfg.batch_size or STAGE_DEFAULTS[cfg.stage]["batch_size"]
    train_ds = load_split(cfg.data, "train", cfg.n_train, cfg.seed)
    if cfg.resume:
        run = RunDir(cfg.resume)
        model = load_vlm(run.path / "checkpoints" / "last")
    else:
        run = RunDir.create(cfg.name, root=cfg.out, config=cfg) if dist.is_main else None
        if cfg.init:
            model = load_vlm(cfg.init)
        elif cfg.model.llm_path:
            model = build_vlm(cfg.model)
        else:
            model = build_vlm(cfg.model, build_tokenizer(tokenizer_corpus(train_ds), cfg.tokenizer_vocab))
    res = cfg.resolution or model.cfg.resolution
    model.cfg.resolution = res
    model.to(dev)
    if model.encoder.cfg.family != "vit":
        channels_last_for_training(model.encoder)  # CPU depthwise-conv backward is ~5x faster in NHWC
    params = configure_trainable(model, cfg)
    frozen_encoder = not any(p.requires_grad for p in model.encoder.parameters())
    feats = cache_encoder(model, train_ds, res) if frozen_encoder and cfg.cache_features else None
    model.train()
    if frozen_encoder:
        model.encoder.eval()
    ddp_model: torch.nn.Module = model
    if dist.world_size > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        ddp_model = DDP(model, device_ids=[dev.index] if dev.type == "cuda" else None)
    opt = adamw(params, dev, lr=lr, weight_decay=cfg.weight_decay)
    start = 0
    if cfg.resume and (run.path / "checkpoints" / "trainer.pt").is_file():
        st = torch.load(run.path / "checkpoints" / "trainer.pt", map_location="cpu", weights_only=True)
        opt.load_state_dict(st["optimizer"])
        start = int(st["step"])
    per_step = max(1, batch // (cfg.micro_batch * dist.world_size))
    total = max(1, math.ceil(cfg.epochs * len(train_ds) / batch))
    examples = [encode_example(model, q, a) for q, a in zip(train_ds.questions, train_ds.answers)]
    log.info("stage %g: %d trainable params, lr %.2g, global batch %d (%d x %d x %d), %d steps at %d px",
             cfg.stage, sum(p.numel() for p in params), lr, batch, cfg.micro_batch, per_step, dist.world_size,
             total, res)
    t0 = time.perf_counter()
    losses: list[float] = []
    with progress_bar(total - start, desc=f"stage {cfg.stage:g}", unit="step") as bar:
        for step in range(start, total):
            epoch_pos = (step * batch) // len(train_ds)
            order = np.random.default_rng([cfg.seed, epoch_pos]).permutation(len(train_ds))
            lo = (step * batch) % len(train_ds)
            idx = np.take(order, np.arange(lo, lo + batch), mode="wrap")
            for g in opt.param_groups:
                g["lr"] = lr_at(step, total, lr, cfg.warmup_ratio)
            opt.zero_grad(set_to_none=True)
            step_loss = 0.0
            for k in range(per_step):
                mb = idx[(k * dist.world_size + dist.rank) * cfg.micro_batch:][:cfg.micro_batch]
                if len(mb) == 0:
                    continue
                ids = [examples[i][0] for i in mb]
                labs = [examples[i][1] for i in mb]
                with autocast(dev):
                    if feats is not None:
                        loss = ddp_model(None, ids, labs, image_embeds=feats[mb].to(dev))
                    else:
                        pix = preprocess_batch(list(train_ds.images[mb]), res).to(dev)  # NCHW: see device.py
                        loss = ddp_model(pix, ids, labs)
                (loss / per_step).backward()
                step_loss += float(loss.detach()) / per_step
            if cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            opt.step()
            losses.append(step_loss)
            bar.update(1)
            bar.set_postfix(loss=f"{step_loss:.3f}")
            if dist.is_main and run is not None:
                run.log({"step": step + 1, "loss": step_loss, "lr": opt.param_groups[0]["lr"]})
                if cfg.save_every and (step + 1) % cfg.save_every == 0 and step + 1 < total:
                    _save_state(run.path, model, opt, step + 1)
    train_s = time.perf_counter() - t0
    result: dict = {"stage": cfg.stage, "steps": total, "train_s": train_s, "resolution": res,
                    "final_loss": float(np.mean(losses[-5:])) if losses else None}
    if dist.is_main and run is not None:
        final = _merged(model)
        final.eval()
        ckpt = final.save(run.path / "model")
        result["ckpt"] = str(ckpt)
        if cfg.eval_n:
            val = load_split(cfg.data, "val", cfg.eval_n, cfg.seed)
            ev = evaluate_qa(final, val, res, max_new_tokens=cfg.max_new_tokens)
            result.update({k: v for k, v in ev.items()})
        _plot_loss(run, losses)
        run.write_result(result)
        result["run"] = str(run.path)
    cleanup()
    return result


def _plot_loss(run, losses: list[float]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3))
    ax.plot(range(1, len(losses) + 1), losses)
    ax.set_xlabel("step")
    ax.set_ylabel("answer-token loss")
    ax.set_yscale("log")
    fig.tight_layout()
    fig.savefig(run.plot_path("loss"), dpi=100)
    plt.close(fig)


def main(argv: list[str]) -> int:
    from quartet.core.config import parse_cli

    cfg = parse_cli(TrainConfig, argv, prog="quartet vlm train")
    res = train(cfg)
    if "run" in res:
        acc = f", val accuracy {res['accuracy']:.3f}" if "accuracy" in res else ""
        print(f"stage {cfg.stage:g} done in {res['train_s']:.0f} s (loss {res['final_loss']:.3f}{acc})")
        print(f"checkpoint: {res['ckpt']}\nrun folder: {res['run']}")
    return 0
