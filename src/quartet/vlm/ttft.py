"""``quartet vlm ttft``: time to first token = vision encoder + projector + LLM prefill, measured separately.

One run measures, with arms interleaved (``core.bench.interleaved``; median of repeats, warm-up excluded):

- encoders: FastViTHD (fused) at each resolution, FastViTHD unfused at the largest, ViT-L/14 at 336 and at each
  resolution (full mode), the stride-32 encoder (FastViT-MCi2) at each resolution;
- projectors (``mlp2x_gelu``) for every (tokens, LLM width);
- prefill of (image tokens + ``prompt_tokens``) for each Qwen2-shaped LLM (random weights; built one at a time).

TTFT of a configuration is the sum of its three medians. The issue's targets are printed as met/missed ratios:
FastViTHD vs ViT-L/14 at 336 (>= 4x lower encoder latency, 16x fewer tokens), fused vs unfused FastViTHD at 1024
(>= 1.3x), and TTFT of FastViTHD@1024 <= ViT-L/14@336 with the 0.5B LLM. ``--quick`` keeps the arms those targets
need (about 5 minutes on 2 shared CPU cores); the full sweep (4 resolutions x 2 LLMs, ViT-L up to 1024 px with
5,329 tokens) takes tens of minutes on CPU. ``--results a/result.json ...`` (from ``vlm train``/``eval``) adds the
accuracy-vs-TTFT Pareto plot.
"""

from __future__ import annotations

import copy
import gc
from dataclasses import dataclass
from typing import Any

import torch

from quartet.core.bench import interleaved
from quartet.core.device import pick_device, reuse_freed_cpu_memory, synchronize
from quartet.core.progress import get_logger
from quartet.vlm.encoder import build_encoder, get_encoder_config
from quartet.vlm.model import build_projector
from quartet.vlm.text import qwen2_config

log = get_logger("vlm.ttft")


@dataclass
class TTFTConfig:
    """TTFT benchmark over encoders x resolutions x LLM sizes."""

    quick: bool = False
    resolutions: tuple[int, ...] = (256, 512, 768, 1024)
    llms: tuple[str, ...] = ("qwen2_0.5b", "qwen2_1.5b")
    encoder: str = "fastvithd"
    vit: str = "vit_l14_336"
    stride32: str = "fastvit_mci2"
    vit_max_resolution: int = 1024  # ViT-L at equal resolution up to this size (5,329 tokens at 1024)
    prompt_tokens: int = 40  # chat template + a short question
    repeats: int = 3
    warmup: int = 1
    threads: int | None = 2
    device: str = "auto"
    reuse_memory: bool = True  # CPU: reuse freed activation memory instead of page-faulting it in (all arms alike)
    results: tuple[str, ...] = ()  # result.json files of vlm train/eval for the Pareto plot
    out: str | None = None
    name: str = "vlm-ttft"


def _plan(cfg: TTFTConfig) -> tuple[list[tuple[str, str, int, bool]], tuple[str, ...]]:
    """Encoder arms ``(label, preset, resolution, fused)`` and the LLMs to time."""
    if cfg.quick:
        top = 1024
        arms = [(f"{cfg.encoder}@256", cfg.encoder, 256, True), (f"{cfg.encoder}@336", cfg.encoder, 336, True),
                (f"{cfg.encoder}@1024", cfg.encoder, top, True),
                (f"{cfg.encoder}@1024 unfused", cfg.encoder, top, False),
                (f"{cfg.vit}@336", cfg.vit, 336, True), (f"{cfg.stride32}@336", cfg.stride32, 336, True)]
        return arms, cfg.llms[:1]
    res = sorted(set(cfg.resolutions) | {336})
    arms = [(f"{cfg.encoder}@{r}", cfg.encoder, r, True) for r in res]
    arms.append((f"{cfg.encoder}@{max(res)} unfused", cfg.encoder, max(res), False))
    arms += [(f"{cfg.vit}@{r}", cfg.vit, r, True) for r in res if r <= cfg.vit_max_resolution]
    arms += [(f"{cfg.stride32}@{r}", cfg.stride32, r, True) for r in res]
    return arms, cfg.llms


def time_encoders(arms: list[tuple[str, str, int, bool]], repeats: int, warmup: int,
                  dev: torch.device) -> tuple[dict[str, float], dict[str, dict[str, Any]]]:
    """Median seconds per encoder arm (interleaved) and each arm's tokens/width."""
    built: dict[tuple[str, int], Any] = {}
    fused_cache: dict[str, Any] = {}
    fns, info = {}, {}
    for label, preset, r, fused in arms:
        key = (preset, r if get_encoder_config(preset).family == "vit" else 0)  # convnets take any size
        if key not in built:
            log.info("building %s (random weights)", preset)
            built[key] = build_encoder(preset, resolution=r, device=dev)
        enc = built[key]
        if fused and enc.cfg.family == "fastvit":
            if preset not in fused_cache:
                fused_cache[preset] = copy.deepcopy(enc).reparameterize()
            enc = fused_cache[preset]
        x = torch.rand(1, 3, r, r, device=dev)

        def run(enc=enc, x=x) -> None:
            with torch.no_grad():
                enc(x)

        fns[label] = run
        info[label] = {"encoder": preset, "resolution": r, "fused": fused, "tokens": enc.num_tokens(r),
                       "dim": enc.out_dim}
    log.info("timing %d encoder arms x %d repeats", len(fns), repeats)
    res = interleaved(fns, repeats=repeats, warmup=warmup, sync=lambda: synchronize(dev))
    return {k: res.median(k) for k in fns}, info


def time_llm(llm_name: str, token_counts: list[int], dims: list[int], prompt_tokens: int, repeats: int,
             warmup: int, dev: torch.device) -> tuple[dict[int, float], dict[tuple[int, int], float]]:
    """Prefill medians per image-token count, and projector medians per (tokens, encoder width)."""
    from transformers import AutoModelForCausalLM

    log.info("building %s (random weights)", llm_name)
    llm = AutoModelForCausalLM.from_config(qwen2_config(llm_name)).to(dev).eval()
    d = llm.config.hidden_size
    fns: dict[str, Any] = {}
    for n in token_counts:
        emb = torch.randn(1, n + prompt_tokens, d, device=dev) * 0.02

        def pre(emb=emb) -> None:
            with torch.no_grad():
                llm(inputs_embeds=emb, use_cache=True, logits_to_keep=1)

        fns[f"prefill {n}"] = pre
    projs = {}
    for dim in sorted(set(dims)):
        projs[dim] = build_projector("mlp2x_gelu", dim, d).to(dev).eval()
    pairs = sorted({(n, dim) for n, dim in zip(token_counts, dims)})
    for n, dim in pairs:
        f = torch.randn(1, n, dim, device=dev)

        def proj(f=f, p=projs[dim]) -> None:
            with torch.no_grad():
                p(f)

        fns[f"proj {n}x{dim}"] = proj
    log.info("timing %s prefill for %s image tokens", llm_name, sorted(set(token_counts)))
    res = interleaved(fns, repeats=repeats, warmup=warmup, sync=lambda: synchronize(dev))
    prefill = {n: res.median(f"prefill {n}") for n in token_counts}
    projector = {(n, dim): res.median(f"proj {n}x{dim}") for n, dim in pairs}
    fns.clear()
    return prefill, projector


def run_benchmark(cfg: TTFTConfig) -> dict[str, Any]:
    """Measure everything; returns rows (one per encoder arm x LLM) and the target checks."""
    dev = pick_device(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if cfg.reuse_memory and dev.type == "cpu":
        reuse_freed_cpu_memory()  # every arm alike: no page faults on re-used activations
    arms, llms = _plan(cfg)
    enc_t, info = time_encoders(arms, cfg.repeats, cfg.warmup, dev)
    gc.collect()
    rows: list[dict[str, Any]] = []
    for llm_name in llms:
        labels = list(enc_t)
        counts = [info[k]["tokens"] for k in labels]
        dims = [info[k]["dim"] for k in labels]
        prefill, proj = time_llm(llm_name, counts, dims, cfg.prompt_tokens, cfg.repeats, cfg.warmup, dev)
        for k in labels:
            n, dim = info[k]["tokens"], info[k]["dim"]
            row = {"config": k, "llm": llm_name, **info[k], "encoder_ms": 1000 * enc_t[k],
                   "projector_ms": 1000 * proj[(n, dim)], "prefill_ms": 1000 * prefill[n]}
            row["ttft_ms"] = row["encoder_ms"] + row["projector_ms"] + row["prefill_ms"]
            rows.append(row)
    return {"rows": rows, "targets": check_targets(rows, cfg), "device": str(dev),
            "threads": torch.get_num_threads()}


def check_targets(rows: list[dict[str, Any]], cfg: TTFTConfig) -> list[dict[str, Any]]:
    """The issue's ratio targets, each with the measured value and met/missed."""
    by = {(r["config"], r["llm"]): r for r in rows}
    llm = cfg.llms[0]
    e, v = cfg.encoder, cfg.vit
    out = []

    def add(name: str, value: float | None, target: float, higher: bool = True) -> None:
        if value is None:
            return
        met = value >= target if higher else value <= target
        out.append({"target": name, "measured": round(value, 3), "goal": (">= " if higher else "<= ") + str(target),
                    "status": "met" if met else "missed"})

    def get(label: str) -> dict[str, Any] | None:
        return by.get((label, llm))

    a, b = get(f"{e}@336"), get(f"{v}@336")
    if a and b:
        add(f"encoder latency {v}@336 / {e}@336", b["encoder_ms"] / a["encoder_ms"], 4.0)
        add(f"tokens {v}@336 / {e}@336", b["tokens"] / a["tokens"], 16.0)
    top = 1024 if cfg.quick else max(cfg.resolutions)
    f, u = get(f"{e}@{top}"), get(f"{e}@{top} unfused")
    if f and u:
        add(f"encoder latency unfused / fused {e}@{top}", u["encoder_ms"] / f["encoder_ms"], 1.3)
    if f and b:
        add(f"TTFT {e}@{top} / {v}@336 ({llm})", f["ttft_ms"] / b["ttft_ms"], 1.0, higher=False)
    return out


def _load_points(paths: tuple[str, ...]) -> list[dict[str, Any]]:
    from quartet.core.io import read_json

    pts = []
    for p in paths:
        res = read_json(p)
        for r in res.get("results", [res]):
            if "accuracy" in r and "ttft_s" in r:
                pts.append({"label": f"{r.get('encoder', '?')}@{r.get('resolution', '?')}",
                            "accuracy": float(r["accuracy"]), "ttft_s": float(r["ttft_s"])})
    return pts


def main(argv: list[str]) -> int:
    from quartet.core.config import parse_cli
    from quartet.core.report import markdown_table
    from quartet.core.runs import RunDir
    from quartet.vlm.pareto import plot_breakdown, plot_pareto

    cfg = parse_cli(TTFTConfig, argv, prog="quartet vlm ttft")
    run = RunDir.create(cfg.name, root=cfg.out, config=cfg)
    out = run_benchmark(cfg)
    cols = ("config", "llm", "tokens", "encoder_ms", "projector_ms", "prefill_ms", "ttft_ms")
    table = markdown_table([{c: r[c] for c in cols} for r in out["rows"]], floatfmt=".1f")
    targets = markdown_table(out["targets"])
    print(f"{table}\n\ntargets (one run, interleaved arms, median of {cfg.repeats}):\n{targets}")
    (run.path / "ttft.md").write_text(table + "\n\n" + targets + "\n", encoding="utf-8")
    labelled = [{**r, "label": f"{r['config']} / {r['llm']}"} for r in out["rows"]]
    plot_breakdown(labelled, run.plot_path("ttft_breakdown"))
    pts = _load_points(cfg.results)
    if pts:
        plot_pareto(pts, run.plot_path("pareto"))
        out["pareto_points"] = pts
    run.write_result(out)
    print(f"results: {run.path} (ttft.md, result.json, plots/)")
    return 0
