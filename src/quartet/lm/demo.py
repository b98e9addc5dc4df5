"""Demo of ``quartet.lm`` (<= 4 minutes on 2 CPU cores): prepare a slice of Debian descriptions + Python docs into
power-of-two buckets, train concat-and-chunk (C&C-1024) and Dataset Decomposition (Grow-P2, 2 cycles) briefly on the
same model with equal tokens, interleaved step by step, and plot held-out loss vs training wall time."""

from __future__ import annotations

from typing import Any

from quartet.core.report import Section, markdown_table
from quartet.lm.stats import format_table


def run_demo(ctx: Any) -> Section:
    from quartet.lm.prepare import PrepareConfig, prepare
    from quartet.lm.reproduce import plot_curves, run_interleaved, time_to_reach
    from quartet.lm.store import PreparedData
    from quartet.lm.train import TrainConfig

    out = ctx.out_dir
    sample = 0.004 if ctx.quick else 0.02
    m = prepare(PrepareConfig(source="debian,pydocs", out=out / "data", tokenizer="bpe:2048", min_log2=5,
                              max_log2=10, sample=sample, val_fraction=0.005, engine="local", seed=ctx.seed))
    data = PreparedData(out / "data")
    b = 2048
    dd_tokens = sum(len(a) << k for k, a in data.buckets.items())
    steps = max(4, min(dd_tokens // b, 12 if ctx.quick else 60))
    common = {"data": out / "data", "seq_len": 1024, "tokens_per_step": b, "total_tokens": steps * b,
              "model": "narrow", "seed": ctx.seed, "eval_every": 3, "eval_docs": 30, "final_eval_docs": 40,
              "out": out / "runs", "ckpt_every": 10**9}
    res = run_interleaved({
        "cc": TrainConfig(arm="cc", name="cc", **common),
        "dd_grow_p2_x2": TrainConfig(arm="dd", curriculum="grow_p2", cycles=2, name="dd", **common),
    }, desc="demo C&C vs DD")
    img = plot_curves({"cc": res["cc"], "dd_grow_p2_x2": res["dd_grow_p2_x2"]}, out / "loss_vs_time.png", 1024)
    cc, dd = res["cc"], res["dd_grow_p2_x2"]
    t = time_to_reach(dd["eval_curve"], cc["eval_curve"][-1]["val_loss"])
    rows = [{"arm": name, "steps": r["steps"], "tokens": r["tokens"], "train wall s": r["wall_s"],
             "final held-out loss": r["final_val_loss"],
             "median step s by length": ", ".join(f"{k}: {v:.2f}" for k, v in r["step_time_by_len"].items())}
            for name, r in (("C&C-1024", cc), ("DD-Grow-P2 x2", dd))]
    md = "\n".join([
        f"Slice of {m['stream']['documents']:,} training documents ({m['stream']['tokens']:,} tokens, "
        f"bpe:2048), decomposed into buckets 2^5..2^10:", "", "```", format_table(m["stats"]), "```", "",
        f"Both arms: model `narrow` ({cc['params']:,} parameters), {steps} steps x {b} tokens, interleaved.", "",
        markdown_table(rows), "",
        f"DD / C&C training wall time: {dd['wall_s'] / cc['wall_s']:.3f}; DD reached C&C's last held-out loss at "
        + (f"{t / cc['wall_s']:.3f}x C&C's time." if t is not None else "no point of its curve (not reached)."),
        "A few steps on a tiny slice: a smoke run of the full comparison (`quartet lm reproduce`), not evidence.",
    ])
    return Section(title="lm: Dataset Decomposition", markdown=md, images=[img], metrics={
        "dd_over_cc_wall": dd["wall_s"] / cc["wall_s"], "cc_final_loss": cc["final_val_loss"],
        "dd_final_loss": dd["final_val_loss"], "dd_time_to_cc_loss": (t / cc["wall_s"]) if t is not None else None,
        "dropped_pct": m["stats"]["dropped %"]})
