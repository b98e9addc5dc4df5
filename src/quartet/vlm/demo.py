"""FastVLM demo: a tiny VLM trained stage 1 + stage 2 on the text-in-image task at two input resolutions.

For each resolution the recipe runs end to end (projector alignment, then full fine-tuning of encoder, projector
and LLM), the checkpoint is evaluated by exact match on held-out images, and its TTFT is measured (encoder /
projector / prefill). The accuracies and TTFTs feed the Pareto plot. Everything is random-init (no image encoder or
causal LM weights ship offline), so stage 2 uses a higher learning rate than LLaVA-1.5's 2e-5.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from typing import Any

import torch

from quartet.core.progress import get_logger
from quartet.core.report import Section, markdown_table
from quartet.vlm.model import VLMConfig
from quartet.vlm.pareto import pareto_front, plot_breakdown, plot_pareto
from quartet.vlm.train import TrainConfig, train

log = get_logger("vlm.demo")


@dataclass
class DemoPlan:
    """Sizes of the demo (``quick``: fits about 4 minutes on 2 shared CPU cores)."""

    resolutions: tuple[int, ...] = (16, 64)
    n_train: int = 2400
    n_val: int = 200
    stage1_epochs: float = 0.2
    stage2_epochs: float = 1.0
    stage2_lr: float = 3e-3
    batch: int = 16


def run_demo(ctx: Any) -> Section:
    plan = DemoPlan() if getattr(ctx, "quick", True) else DemoPlan(resolutions=(16, 32, 64), n_train=4800,
                                                                                  stage2_epochs=2.0)
    t0 = time.perf_counter()
    old_threads = torch.get_num_threads()
    out = ctx.out_dir
    points, rows, images = [], [], []
    try:
        for r in plan.resolutions:
            base = dict(model=VLMConfig(encoder="fastvithd_tiny", llm="qwen2_tiny", resolution=r),
                        n_train=plan.n_train, batch_size=plan.batch, micro_batch=plan.batch, threads=1,
                        seed=ctx.seed, out=str(out), save_every=0)
            s1 = train(TrainConfig(stage=1, lr=3e-3, epochs=plan.stage1_epochs, eval_n=0, name=f"stage1-{r}px",
                                   **base))
            s2 = train(TrainConfig(stage=2, init=s1["ckpt"], lr=plan.stage2_lr, epochs=plan.stage2_epochs,
                                   eval_n=plan.n_val, name=f"stage2-{r}px", **base))
            points.append({"label": f"tiny@{r}px", "accuracy": s2["accuracy"], "ttft_s": s2["ttft_s"]})
            rows.append({"resolution": r, "image tokens": s2["image_tokens"], "accuracy": s2["accuracy"],
                         "stage 2 loss": s2["final_loss"], "TTFT ms": 1000 * s2["ttft_s"],
                         "encoder ms": 1000 * s2["encoder_s"], "projector ms": 1000 * s2["projector_s"],
                         "prefill ms": 1000 * s2["prefill_s"], "train s": s1["train_s"] + s2["train_s"],
                         "label": f"tiny@{r}px"})
            images.append(out / s2["run"].split("/")[-1] / "plots" / "loss.png")
            log.info("%d px: accuracy %.3f, TTFT %.1f ms", r, s2["accuracy"], 1000 * s2["ttft_s"])
    finally:
        torch.set_num_threads(old_threads)
    pareto = plot_pareto(points, out / "pareto.png", title="tiny FastVLM: text-in-image accuracy vs TTFT")
    breakdown = plot_breakdown([{"label": r["label"], "encoder_ms": r["encoder ms"],
                                 "projector_ms": r["projector ms"], "prefill_ms": r["prefill ms"]} for r in rows],
                               out / "ttft_breakdown.png", title="tiny FastVLM TTFT breakdown (this CPU)")
    accs = [r["accuracy"] for r in rows]
    rises = all(b > a for a, b in itertools.pairwise(accs))
    front = [p["label"] for p in pareto_front(points)]
    table = markdown_table([{k: v for k, v in r.items() if k != "label"} for r in rows], floatfmt=".3g")
    md = (
        "A tiny FastVLM (FastViTHD-design encoder `fastvithd_tiny`, 5 stages, stride 64; `mlp2x_gelu` projector; "
        "2-layer Qwen2-shaped LLM with a BPE tokenizer trained on the task text) trained from random init with the "
        "two-stage recipe (stage 1: projector only; stage 2: everything) on generated text-in-image questions "
        "(\"What number is written in the image?\", a digit rendered ~7 px tall on a 64 px canvas, so ~2 px at 16 px "
        f"input and ~7 px at 64 px), one model per input resolution, {plan.n_train} training images, exact match "
        f"on {plan.n_val} held-out images.\n\n"
        f"{table}\n\n"
        f"Accuracy {'rises' if rises else 'does NOT rise'} with resolution "
        f"({' -> '.join(f'{a:.2f}' for a in accs)}); Pareto frontier: {', '.join(front)}. The full-size "
        "TTFT comparison (FastViTHD vs ViT-L/14 and a stride-32 encoder with Qwen2-0.5B/1.5B shapes) is "
        "`quartet vlm ttft --quick` (see docs/vlm.md)."
    )
    metrics = {f"accuracy@{r['resolution']}": r["accuracy"] for r in rows}
    metrics.update({f"ttft_ms@{r['resolution']}": r["TTFT ms"] for r in rows})
    metrics["accuracy_rises_with_resolution"] = rises
    metrics["demo_s"] = time.perf_counter() - t0
    return Section(title="vlm: FastVLM", markdown=md, images=[pareto, breakdown, *images], metrics=metrics)
