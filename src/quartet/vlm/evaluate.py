"""Evaluation of a VLM on a QA set: exact-match accuracy of greedy answers, and the measured TTFT breakdown.

``quartet vlm eval --ckpt RUN/model --data textimage --resolution 128`` writes ``result.json`` with ``accuracy``,
``resolution``, ``ttft_s`` (median over single-image calls, first call excluded) and its encoder/projector/prefill
split; ``quartet vlm ttft --results`` reads these files for the accuracy-vs-TTFT Pareto plot.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from quartet.core.progress import get_logger, progress
from quartet.vlm.data import QADataset
from quartet.vlm.model import FastVLM
from quartet.vlm.preprocess import preprocess_batch

log = get_logger("vlm.eval")


def normalise(text: str) -> str:
    """Answer normal form for exact match: lower case, inner whitespace collapsed, trailing period dropped."""
    return " ".join(text.lower().split()).rstrip(".")


def evaluate_qa(model: FastVLM, ds: QADataset, resolution: int, batch_size: int = 32, max_new_tokens: int = 8,
                ttft_repeats: int = 5) -> dict[str, Any]:
    """Accuracy of greedy answers on ``ds`` at ``resolution``, plus the TTFT of single-image calls."""
    model.eval()
    dev = model.device
    preds: list[str] = []
    for i in progress(range(0, len(ds), batch_size), desc=f"eval @{resolution}px",
                      total=(len(ds) + batch_size - 1) // batch_size, unit="batch"):
        pix = preprocess_batch(list(ds.images[i:i + batch_size]), resolution).to(dev)
        out = model.generate(pix, ds.questions[i:i + batch_size], max_new_tokens=max_new_tokens)
        preds += out.texts
    correct = [normalise(p) == normalise(a) for p, a in zip(preds, ds.answers)]
    times: dict[str, list[float]] = {"ttft_s": [], "encoder_s": [], "projector_s": [], "prefill_s": []}
    one = preprocess_batch([ds.images[0]], resolution).to(dev)
    for r in range(ttft_repeats + 1):
        g = model.generate(one, [ds.questions[0]], max_new_tokens=1)
        if r == 0:
            continue  # warm-up
        times["ttft_s"].append(g.ttft_s)
        for k in ("encoder_s", "projector_s", "prefill_s"):
            times[k].append(g.timings[k])
    res = {
        "accuracy": sum(correct) / max(1, len(correct)),
        "n": len(correct),
        "resolution": resolution,
        "image_tokens": model.num_image_tokens(resolution),
        "encoder": model.cfg.encoder,
        "llm": model.cfg.llm_path or model.cfg.llm,
        **{k: statistics.median(v) for k, v in times.items()},
        "examples": [{"question": q, "answer": a, "prediction": p}
                     for q, a, p in list(zip(ds.questions, ds.answers, preds))[:8]],
    }
    log.info("accuracy %.3f on %d items at %d px; TTFT %.1f ms", res["accuracy"], res["n"], resolution,
             1000 * res["ttft_s"])
    return res


@dataclass
class EvalConfig:
    """Evaluate a checkpoint on a QA set at one or more resolutions."""

    ckpt: str = ""  # checkpoint folder (a run's ``model/``)
    data: str = "textimage"  # a build-data folder, or "textimage" (generated validation split)
    n: int = 200
    resolutions: tuple[int, ...] = ()  # default: the checkpoint's training resolution
    batch_size: int = 32
    max_new_tokens: int = 8
    ttft_repeats: int = 5  # single-image calls timed after one warm-up
    fused: bool = True
    device: str = "auto"
    threads: int | None = 2
    seed: int = 0
    out: str | None = None
    name: str = "vlm-eval"


def main(argv: list[str]) -> int:
    from quartet.core.config import parse_cli
    from quartet.core.device import pick_device
    from quartet.core.errors import QuartetError
    from quartet.core.runs import RunDir
    from quartet.vlm.model import load_vlm
    from quartet.vlm.train import load_split

    cfg = parse_cli(EvalConfig, argv, prog="quartet vlm eval")
    if not cfg.ckpt:
        raise QuartetError("--ckpt is required (a checkpoint folder written by `quartet vlm train`)")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    dev = pick_device(cfg.device)
    model = load_vlm(cfg.ckpt, device=dev, fused=cfg.fused)
    ds = load_split(cfg.data, "val", cfg.n, cfg.seed)
    run = RunDir.create(cfg.name, root=cfg.out, config=cfg)
    results = []
    for r in cfg.resolutions or (model.cfg.resolution,):
        res = evaluate_qa(model, ds, r, cfg.batch_size, cfg.max_new_tokens, cfg.ttft_repeats)
        run.log({k: v for k, v in res.items() if k != "examples"})
        results.append(res)
    out = results[0] if len(results) == 1 else {"results": results}
    path = run.write_result({**out, "ckpt": str(Path(cfg.ckpt))})
    for res in results:
        print(f"{res['resolution']} px: accuracy {res['accuracy']:.3f} (n={res['n']}), "
              f"TTFT {1000 * res['ttft_s']:.1f} ms")
    print(f"results: {path}")
    return 0
