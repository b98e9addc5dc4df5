"""``quartet clip reproduce``: the MobileCLIP/MobileCLIP2 ablations at laptop scale, next to the paper's numbers.

Pipeline (all stages cached, see ``quartet.clip.pipeline``): train two CLIP teachers of different architectures
(MCi-micro, ViT-micro) and a CoCa-micro captioner on the emoji training split -> reinforce that split (N_aug=10
stored views, N_syn=5 synthetic captions, fp32 storage) -> train MCi-nano students for the same number of steps in
every arm -> evaluate on held-out emoji (groups, subgroups, retrieval) and OpenMoji (another drawing style).

Arms (paper: MobileCLIP 2311.17049 Tables 2-5, MobileCLIP2 2508.20691 §3): plain CLIP; + synthetic captions (CLIP
loss on both batches); distillation only (λ=1, real captions); full reinforced (λ=1, real + synthetic); single
teacher vs ensemble; KD scale sweep vs each teacher's own trained scale; N_aug ∈ {1,2,5,10}; N_syn ∈ {1,2,5}; fp16
vs fp32 storage; λ sweep. The headline pair (plain vs full) runs with several seeds (mean ± std). Results are
written after every arm (``results.json``), so an interrupted run resumes at the next arm.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from quartet.clip.train import TrainConfig
from quartet.clip.train_teacher import TeacherConfig
from quartet.core.errors import QuartetError
from quartet.core.io import atomic_write_json, atomic_write_text, read_json
from quartet.core.progress import get_logger
from quartet.core.runs import RunDir

log = get_logger("quartet.clip.reproduce")

HEADLINE = "zs"  # mean zero-shot top-1 over the held-out sets


@dataclass
class ReproduceConfig:
    """``quartet clip reproduce``."""

    preset: Literal["quick", "lit", "lit_captions", "full", "demo", "smoke"] = "quick"
    steps: int = 0  # student steps per arm (0 = the preset's)
    seeds: int = 3  # seeds of the headline pair
    arms: list[str] = field(default_factory=list)  # run only these arms (empty = all)
    data: str = ""  # use this reinforced folder / shard file instead of reinforcing the preset's data
    threads: int = 1  # torch CPU threads; more than the free cores makes OpenMP spin (10x slower when shared)
    out: str | None = None  # report folder (resumed when it holds results.json)
    report_only: bool = False  # rewrite report.md from the results.json in --out, train nothing
    reevaluate: bool = False  # with report_only: re-run the evaluation on every arm's saved model


PRESETS: dict[str, dict[str, Any]] = {
    "quick": dict(
        teachers=[TeacherConfig(model="MCi-micro", image_size=32, limit=600, steps=80, lr=2e-3, warmup=8),
                  TeacherConfig(model="ViT-micro", image_size=32, limit=600, steps=80, lr=1e-3, warmup=8)],
        captioner=TeacherConfig(model="CoCa-micro", image_size=32, limit=600, steps=30, batch_size=32, lr=2e-3,
                                warmup=3),
        n_aug=10, n_syn=5, crop_size=32, limit=600,
        student=dict(model="MCi-nano", image_size=32, steps=80, batch_size=32, warmup=8, lr=2e-3, log_every=10),
        kd_sweep=[10.0, 100.0], lam_sweep=[0.5], aug_sweep=[1, 2, 5], syn_sweep=[1, 2]),
    # quick's students and sweeps, with stronger teachers: a LiT teacher (MCi-micro image tower against the frozen
    # pretrained MiniLM) and an MCi-micro CLIP, each 400 steps on all 3,107 training pairs
    "lit": dict(
        teachers=[TeacherConfig(model="lit:MCi-micro", image_size=32, steps=400, lr=2e-3, warmup=40),
                  TeacherConfig(model="MCi-micro", image_size=32, steps=400, lr=2e-3, warmup=40)],
        captioner=TeacherConfig(model="CoCa-micro", image_size=32, limit=600, steps=30, batch_size=32, lr=2e-3,
                                warmup=3),
        n_aug=10, n_syn=5, crop_size=32, limit=600,
        student=dict(model="MCi-nano", image_size=32, steps=80, batch_size=32, warmup=8, lr=2e-3, log_every=10),
        kd_sweep=[10.0, 100.0], lam_sweep=[0.5], aug_sweep=[1, 2, 5], syn_sweep=[1, 2]),
    "full": dict(
        teachers=[TeacherConfig(model="MCi-micro", steps=2000, seed=0),
                  TeacherConfig(model="ViT-micro", steps=2000, lr=5e-4, seed=0)],
        captioner=TeacherConfig(model="CoCa-micro", steps=1500, batch_size=64, seed=0),
        n_aug=10, n_syn=5, crop_size=64, limit=None,
        student=dict(model="MCi-nano", image_size=64, steps=2000, batch_size=128, warmup=200, lr=1e-3,
                     log_every=50),
        kd_sweep=[10.0, 30.0, 50.0, 70.0, 100.0], lam_sweep=[0.25, 0.5, 0.75], aug_sweep=[1, 2, 5],
        syn_sweep=[1, 2]),
    # the demo's first run on a fresh machine (~3 min on 2 idle cores); later runs reuse every cached stage
    "demo": dict(
        teachers=[TeacherConfig(model="MCi-micro", image_size=32, limit=400, steps=40, lr=2e-3, warmup=4),
                  TeacherConfig(model="ViT-micro", image_size=32, limit=400, steps=40, lr=1e-3, warmup=4)],
        captioner=TeacherConfig(model="CoCa-micro", image_size=32, limit=400, steps=15, batch_size=32, lr=2e-3,
                                warmup=2),
        n_aug=3, n_syn=2, crop_size=32, limit=400,
        student=dict(model="MCi-nano", image_size=32, steps=60, batch_size=32, warmup=6, lr=2e-3, log_every=10),
        kd_sweep=[], lam_sweep=[], aug_sweep=[], syn_sweep=[]),
    # a few seconds end to end: checks the pipeline and the report, measures nothing
    "smoke": dict(
        teachers=[TeacherConfig(model="MCi-nano", image_size=32, limit=48, steps=3, batch_size=16, seed=0),
                  TeacherConfig(model="MCi-nano", image_size=32, limit=48, steps=3, batch_size=16, seed=1)],
        captioner=TeacherConfig(model="CoCa-micro", image_size=32, limit=48, steps=2, batch_size=8, seed=0),
        n_aug=2, n_syn=2, crop_size=32, limit=48,
        student=dict(model="MCi-nano", image_size=32, steps=3, batch_size=16, warmup=1, log_every=1),
        kd_sweep=[30.0], lam_sweep=[0.5], aug_sweep=[1], syn_sweep=[1]),
}
# lit with a captioner trained as long as the teachers (400 steps on all pairs instead of 30 on 600)
PRESETS["lit_captions"] = {**PRESETS["lit"], "captioner": TeacherConfig(model="CoCa-micro", image_size=32, steps=400,
                                                                        lr=2e-3, warmup=40)}

# The paper's numbers each group is compared with (ViT-B/16 on a 12.8M subset, ImageNet zero-shot top-1, %).
PAPER = {
    "components": "plain CLIP 44.5 -> +synthetic captions 51.9 -> distillation only 54.5 -> +strong aug 59.3 -> "
                  "+ensemble (full) 61.7 (MobileCLIP Table 2)",
    "ensemble": "single teacher 59.3 vs two-teacher ensemble 61.7",
    "kd_scale": "best KD scale is not the teacher's own: DataComp-XL L/14 50, DFN2B-L/14 70, DFN5B-H/14 90 "
                "(flat within ±5); v1 used 100 (MobileCLIP2 §3)",
    "n_aug": "gains saturate near 5 stored augmentations (MobileCLIP Fig. 6)",
    "n_syn": "gains saturate near 2 synthetic captions (MobileCLIP Fig. 6)",
    "storage": "bf16 storage did not change accuracy (MobileCLIP §4)",
    "lambda": "λ=1 best for ImageNet zero-shot, λ=0.7 best for retrieval (MobileCLIP v1)",
}


def arms_for(preset: dict[str, Any], seeds: int) -> list[tuple[str, str, dict[str, Any]]]:
    """``(group, arm name, TrainConfig overrides)`` for every arm, headline pair first."""
    full: dict[str, Any] = dict(mode="reinforced", lam=1.0, syn_captions=True)
    arms: list[tuple[str, str, dict[str, Any]]] = []
    for s in range(seeds):
        arms.append(("headline", f"plain/s{s}", dict(mode="plain", seed=s)))
        arms.append(("headline", f"full/s{s}", dict(full, seed=s)))
    arms.append(("components", "syn-captions", dict(mode="reinforced", lam=0.0, syn_captions=True)))
    arms.append(("components", "distill-only", dict(mode="reinforced", lam=1.0, syn_captions=False)))
    n_teachers = len(preset["teachers"])
    for k in range(n_teachers):
        arms.append(("ensemble", f"teacher-{k}", dict(full, teachers=[k])))
    for sc in preset["kd_sweep"]:
        arms.append(("kd_scale", f"kd-{sc:g}", dict(full, kd_scales=[sc])))
    for n in preset["aug_sweep"]:
        arms.append(("n_aug", f"aug-{n}", dict(full, n_aug=n)))
    for n in preset["syn_sweep"]:
        arms.append(("n_syn", f"syn-{n}", dict(full, n_syn=n)))
    arms.append(("storage", "fp16", dict(full, storage="fp16")))
    for lam in preset["lam_sweep"]:
        arms.append(("lambda", f"lam-{lam:g}", dict(full, lam=lam)))
    return arms


ZS_SETS = ("emoji-groups", "emoji-subgroups", "openmoji-groups")


def headline(metrics: dict[str, float]) -> dict[str, float]:
    """``zs``: balanced zero-shot top-1 averaged over the held-out sets; ``zs_top1``: the same with plain top-1;
    ``ret``: mean image->text / text->image R@1 on held-out emoji."""
    zs = [metrics[f"{k}/bal1"] for k in ZS_SETS if f"{k}/bal1" in metrics]
    top1 = [metrics[f"{k}/top1"] for k in ZS_SETS if f"{k}/top1" in metrics]
    ret = [metrics[k] for k in ("emoji-retrieval/i2t_r1", "emoji-retrieval/t2i_r1") if k in metrics]
    return {"zs": sum(zs) / max(1, len(zs)), "zs_top1": sum(top1) / max(1, len(top1)),
            "ret": sum(ret) / max(1, len(ret))}


def reevaluate(run: RunDir, results: dict[str, Any], sets: Any, preset: dict[str, Any]) -> None:
    """Recompute the teachers' and every arm's metrics from the saved models (after the evaluation changed)."""
    from quartet.clip.evaluate import evaluate
    from quartet.clip.lit import load_for_eval
    from quartet.clip.models import load_checkpoint
    from quartet.clip.train_teacher import checkpoint_path

    for t, cfg in zip(results.get("teachers", {}).values(), preset["teachers"]):
        if checkpoint_path(cfg).exists():
            m = evaluate(load_for_eval(checkpoint_path(cfg)), sets)
            t.update({**m, **headline(m)})

    for name, a in results["arms"].items():
        path = run.path / "arms" / name.replace("/", "-") / "model.safetensors"
        if path.exists():
            m = evaluate(load_checkpoint(path), sets)
            a.update(m)
            a.update(headline(m))


def run_reproduce(cfg: ReproduceConfig) -> Path:
    """Run every arm (resuming a previous run in ``cfg.out``) and write the report; returns its path."""
    import torch

    from quartet.clip.augment import AugConfig
    from quartet.clip.evaluate import evaluate, load_eval_sets
    from quartet.clip.pipeline import build_models, emoji_train_shards, reinforced_dataset
    from quartet.clip.reinforce import ReinforceConfig
    from quartet.clip.train import train
    from quartet.clip.train_data import load_table

    if cfg.preset not in PRESETS:
        raise QuartetError(f"unknown preset {cfg.preset!r}; use one of {list(PRESETS)}")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    p = PRESETS[cfg.preset]
    if cfg.steps:
        p = {**p, "student": {**p["student"], "steps": cfg.steps}}
    wanted = {a.strip() for entry in cfg.arms for a in entry.split(",") if a.strip()}
    known = {n for _, n, _ in arms_for(p, cfg.seeds)} | {g for g, _, _ in arms_for(p, cfg.seeds)}
    if wanted - known:
        raise QuartetError(f"--arms: no arm or group named {sorted(wanted - known)} in preset {cfg.preset!r} with "
                           f"--seeds {cfg.seeds}; choose from {sorted(known)}")
    run = RunDir(cfg.out) if cfg.out else RunDir.create(f"clip-reproduce-{cfg.preset}", config=cfg)
    res_path = run.path / "results.json"
    if cfg.report_only:
        if not res_path.exists():
            raise QuartetError(f"{res_path} does not exist; run without --report-only first")
        results = read_json(res_path)
        if cfg.reevaluate:
            from quartet.clip.evaluate import load_eval_sets

            sets = load_eval_sets(("emoji-groups", "emoji-subgroups", "openmoji-groups", "emoji-retrieval",
                                   "emoji-keywords"), size=64, limit=p["limit"])
            reevaluate(run, results, sets, p)
            atomic_write_json(res_path, results)
        return write_report(run, results, p)
    results: dict[str, Any] = read_json(res_path) if res_path.exists() else {"arms": {}}
    t_start = time.perf_counter()

    shards = emoji_train_shards(size=p["crop_size"], limit=p["limit"])
    ensemble, captioner, paths = build_models(p["teachers"], p["captioner"])
    rcfg = ReinforceConfig(n_aug=p["n_aug"], n_syn=p["n_syn"], dtype="fp32", aug=AugConfig(crop_size=p["crop_size"]),
                           seed=0)
    data_dir = Path(cfg.data) if cfg.data else reinforced_dataset(shards, ensemble, captioner, rcfg, paths)
    table = load_table(data_dir)
    sets = load_eval_sets(("emoji-groups", "emoji-subgroups", "openmoji-groups", "emoji-retrieval",
                           "emoji-keywords"), size=64,
                          limit=p["limit"])
    teacher_eval = results.setdefault("teachers", {})
    for t, path in zip(ensemble.teachers, paths):
        if t.name not in teacher_eval:
            from quartet.clip.lit import load_for_eval

            m = evaluate(load_for_eval(path), sets)
            teacher_eval[t.name] = {**m, **headline(m), "own_scale": t.logit_scale}
    results["data"] = {"reinforced": str(data_dir), "samples": len(table), "teachers": table.teacher_names,
                       "teacher_scales": table.teacher_scales, "syn_example": table.syn_texts[0][:3],
                       "caption_example": table.captions[0]}
    atomic_write_json(res_path, results)

    student = dict(p["student"])
    for group, name, over in arms_for(p, cfg.seeds):
        if wanted and name not in wanted and group not in wanted:
            continue
        if name in results["arms"]:
            continue
        tcfg = TrainConfig(**{**student, **over}, out=str(run.path / "arms" / name.replace("/", "-")),
                           checkpoint_every=10**9)
        t0 = time.perf_counter()
        tr = train(tcfg, table=table, eval_fn=lambda b: evaluate(b, sets), quiet=True)
        final = tr.metrics[-1] if tr.metrics else {}
        evals = {k: v for k, v in final.items() if "/" in k}
        results["arms"][name] = {"group": group, **headline(evals), **evals, "loss": final.get("loss"),
                                 "steps": tcfg.steps,
                                 "seconds": time.perf_counter() - t0,
                                 "samples_per_s": final.get("samples_per_s"),
                                 "curve": [(m["step"], m["loss"]) for m in tr.run.read_metrics()]}
        atomic_write_json(res_path, results)
        log.info("%s: zs %.2f ret %.2f (%.0f s)", name, results["arms"][name]["zs"], results["arms"][name]["ret"],
                 time.perf_counter() - t0)
    results["seconds"] = results.get("seconds", 0) + time.perf_counter() - t_start
    atomic_write_json(res_path, results)
    return write_report(run, results, p)


def _paired_seeds(arms: dict[str, Any]) -> list[str]:
    """Seed tags (``s0``, ``s1``...) present for both headline arms."""
    tags = [n.split("/", 1)[1] for n in arms if n.startswith("plain/")]
    return [t for t in tags if f"full/{t}" in arms]


def seed_noise_verdict(gains: list[float], alpha: float = 0.05) -> str:
    """Whether per-seed paired gains are beyond seed noise: a two-sided paired t-test (one-sample t on the gains)."""
    if len(gains) < 3:
        return "Too few seeds for a test."
    from scipy import stats

    t, p = stats.ttest_1samp(gains, 0.0)
    wins = sum(g > 0 for g in gains)
    verdict = "beyond seed noise" if p < alpha else "within seed noise"
    return (f"Reinforced wins {wins} of {len(gains)} seeds; paired t-test t = {t:.2f}, p = {p:.3f}: {verdict} "
            f"at {alpha:g}.")


def _mean_std(vals: list[float]) -> str:
    if not vals:
        return "-"
    if len(vals) == 1:
        return f"{vals[0]:.2f}"
    return f"{statistics.mean(vals):.2f} ± {statistics.stdev(vals):.2f}"


def write_report(run: RunDir, results: dict[str, Any], preset: dict[str, Any]) -> Path:
    """``report.md`` with one table per ablation group (ours beside the paper's) and plots."""
    from quartet.core.report import markdown_table

    arms = results["arms"]
    scales = [round(s, 1) for s in results["data"]["teacher_scales"]]
    steps = sorted({int(a["steps"]) for a in arms.values() if "steps" in a}) or [preset["student"]["steps"]]
    lines = ["# MobileCLIP2 ablations at small scale", "",
             f"Student {preset['student']['model']} at {preset['student']['image_size']} px, "
             f"{'/'.join(map(str, steps))} steps x batch {preset['student']['batch_size']} per arm; "
             f"reinforced data: {results['data']['samples']} emoji training pairs, teachers "
             f"{results['data']['teachers']} (trained scales {scales}). "
             "`zs` = balanced zero-shot top-1 (%, mean per-class accuracy) averaged over held-out emoji groups, "
             "emoji subgroups and OpenMoji groups (`zs_top1`: plain top-1, inflated by the majority class); "
             "`ret` = mean held-out emoji image<->text R@1 (%).", ""]
    lines += ["## Teachers", "", markdown_table([{"teacher": k, "zs": round(v["zs"], 2),
                                                   "zs_top1": round(v.get("zs_top1", 0), 2), "ret": round(v["ret"], 2),
                                                   "own scale": round(v["own_scale"], 1)}
                                                  for k, v in results.get("teachers", {}).items()]), ""]
    heads = {m: [a for n, a in arms.items() if n.startswith(m + "/")] for m in ("plain", "full")}
    if heads["plain"] and heads["full"]:
        rows = [{"arm": m, "seeds": len(v), "zs": _mean_std([a["zs"] for a in v]),
                 "zs_top1": _mean_std([a.get("zs_top1", 0) for a in v]),
                 "ret": _mean_std([a["ret"] for a in v]),
                 **{k.split("/")[0]: _mean_std([a[k] for a in v]) for k in
                    ("emoji-groups/bal1", "emoji-subgroups/bal1", "openmoji-groups/bal1", "emoji-keywords/bal1")
                    if k in v[0]}}
                for m, v in heads.items()]
        dz = [arms[f"full/{s}"]["zs"] - arms[f"plain/{s}"]["zs"] for s in _paired_seeds(arms)]
        lines += ["## Headline: plain CLIP vs full reinforced (equal steps)", "", markdown_table(rows), "",
                  f"Per-seed gain in zs: {[round(d, 2) for d in dz]} (mean {statistics.mean(dz):.2f}). "
                  + seed_noise_verdict(dz), ""]
        for key, label in (("ret", "retrieval R@1 (`ret`)"), ("emoji-keywords/bal1", "keyword zero-shot")):
            seeds = [t for t in _paired_seeds(arms) if key in arms[f"full/{t}"] and key in arms[f"plain/{t}"]]
            d = [arms[f"full/{t}"][key] - arms[f"plain/{t}"][key] for t in seeds]
            if d:
                lines += [f"Per-seed gain in {label}: {[round(x, 2) for x in d]} (mean {statistics.mean(d):.2f}). "
                          + seed_noise_verdict(d), ""]
    base = heads["full"][0] if heads["full"] else None
    groups: dict[str, list[dict[str, Any]]] = {}
    for name, a in arms.items():
        if a["group"] != "headline":
            groups.setdefault(a["group"], []).append({"arm": name, "zs": round(a["zs"], 2),
                                                      "zs_top1": round(a.get("zs_top1", 0), 2),
                                                      "ret": round(a["ret"], 2), "loss": round(a["loss"] or 0, 3)})
    ref = {"components": ("plain/s0", "full/s0"), "ensemble": ("full/s0",), "kd_scale": ("full/s0",),
           "n_aug": ("full/s0",), "n_syn": ("full/s0",), "storage": ("full/s0",), "lambda": ("full/s0",)}
    for g, rows in groups.items():
        for r in ref.get(g, ()):
            if r in arms:
                label = {"full/s0": {"kd_scale": "own scale (full)", "n_aug": "aug-10 (full)",
                                     "n_syn": "syn-5 (full)", "storage": "fp32 (full)", "lambda": "lam-1 (full)",
                                     "ensemble": "ensemble (full)"}.get(g, "full")}.get(r, "plain")
                rows.append({"arm": label, "zs": round(arms[r]["zs"], 2),
                             "zs_top1": round(arms[r].get("zs_top1", 0), 2), "ret": round(arms[r]["ret"], 2),
                             "loss": round(arms[r]["loss"] or 0, 3)})
        lines += [f"## {g}", "", f"Paper: {PAPER.get(g, '')}", "", markdown_table(rows), ""]
    plots = _plots(run, results)
    lines += [f"![{Path(p).stem}](plots/{Path(p).name})" for p in plots]
    if base is not None:
        lines += ["", f"Total time: {results.get('seconds', 0) / 60:.1f} min."]
    path = run.path / "report.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path


def _plots(run: RunDir, results: dict[str, Any]) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arms = results["arms"]
    out = []
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, a in arms.items():
        if a["group"] == "headline":
            st, lo = zip(*a["curve"])
            ax.plot(st, lo, color="C0" if name.startswith("plain") else "C1", alpha=0.7,
                    label=name.split("/")[0] if name.endswith("s0") else None)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (own objective)")
    ax.legend()
    fig.tight_layout()
    p = run.plot_path("headline_loss")
    fig.savefig(p, dpi=100)
    plt.close(fig)
    out.append(p)
    names = [n for n in arms]
    fig, ax = plt.subplots(figsize=(max(6, len(names) * 0.35), 3.5))
    ax.bar(range(len(names)), [arms[n]["zs"] for n in names],
           color=[f"C{sorted({a['group'] for a in arms.values()}).index(arms[n]['group'])}" for n in names])
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=70, fontsize=7)
    ax.set_ylabel("held-out zero-shot top-1 (%)")
    fig.tight_layout()
    p = run.plot_path("arms_zs")
    fig.savefig(p, dpi=100)
    plt.close(fig)
    out.append(p)
    return out


def main(argv: list[str]) -> int:
    from quartet.core.config import parse_cli

    cfg = parse_cli(ReproduceConfig, argv, prog="quartet clip reproduce")
    path = run_reproduce(cfg)
    print(f"report: {path}")
    return 0

