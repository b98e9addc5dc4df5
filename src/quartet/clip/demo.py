"""``quartet demo`` step for clip: teachers -> dataset reinforcement -> plain vs reinforced student.

Uses the ``quick`` reproduction's cached teachers and reinforced emoji data when they exist (``quartet clip
reproduce --preset quick`` leaves them in the cache), otherwise builds the smaller ``demo`` preset (two tiny
teachers and a tiny CoCa trained briefly, 400 pairs reinforced with 3 views and 2 synthetic captions; ~3 min on two
idle cores, cached for the next run). Then trains the same MCi-nano student for the same number of steps with plain
CLIP and with the stored knowledge, evaluating held-out zero-shot accuracy along the way, and reports the table and
a loss/accuracy plot.
"""

from __future__ import annotations

import time
from typing import Any

from quartet.core.report import Section, markdown_table


def run_demo(ctx: Any) -> Section:
    import torch

    from quartet.clip.evaluate import evaluate, load_eval_sets
    from quartet.clip.pipeline import reinforced_for
    from quartet.clip.reproduce import PRESETS, headline
    from quartet.clip.train import TrainConfig, train
    from quartet.clip.train_data import load_table
    from quartet.clip.train_teacher import load_teacher

    t0 = time.perf_counter()
    torch.set_num_threads(1)
    found = reinforced_for(PRESETS["quick"], train_missing=False)
    preset_name = "quick" if found else "demo"
    preset = PRESETS[preset_name]
    data_dir, paths = found or reinforced_for(preset)
    t_data = time.perf_counter() - t0
    table = load_table(data_dir)
    sets = load_eval_sets(("emoji-groups", "emoji-subgroups", "openmoji-groups", "emoji-retrieval"), size=64,
                          limit=300)

    def eval_fn(b: Any) -> dict[str, float]:
        m = evaluate(b, sets)
        return {**m, **headline(m)}

    student = dict(preset["student"])
    steps = student["steps"]
    student.update(eval_every=max(10, steps // 4), log_every=10)
    runs: dict[str, Any] = {}
    for mode in ("plain", "reinforced"):
        cfg = TrainConfig(**student, mode=mode, seed=ctx.seed, out=str(ctx.out_dir / f"student-{mode}"),
                          checkpoint_every=10**9)
        runs[mode] = train(cfg, table=table, eval_fn=eval_fn, quiet=True)
    rows = []
    for k, p in enumerate(paths[:-1]):
        m = eval_fn(load_teacher(p))
        rows.append({"model": f"teacher {k}: {p.name.split('-')[0]}-{p.name.split('-')[1]}", **_cols(m)})
    finals = {mode: r.metrics[-1] for mode, r in runs.items()}
    for mode, m in finals.items():
        rows.append({"model": f"student, {mode} ({steps} steps)", **_cols(m),
                     "samples/s": round(m.get("samples_per_s", 0), 1)})
    plot = ctx.out_dir / "clip_plain_vs_reinforced.png"
    _plot(runs, plot)
    seconds = time.perf_counter() - t0
    gain = finals["reinforced"]["zs"] - finals["plain"]["zs"]
    md = (f"Teachers and data: `{preset_name}` preset ({len(table)} reinforced emoji pairs, teachers "
          f"{table.teacher_names}, {len(table.aug[0])} stored views and {len(table.syn_texts[0])} synthetic captions "
          f"per pair; data stage {t_data:.0f} s). Example synthetic captions for \"{table.captions[0]}\": "
          f"{table.syn_texts[0][:2]}.\n\n"
          f"Same MCi-nano student, same data and {steps} steps: held-out zero-shot (balanced top-1, i.e. mean "
          f"per-class accuracy, averaged over emoji groups, emoji subgroups, OpenMoji groups; chance ~7.4%) "
          f"plain {finals['plain']['zs']:.2f}% vs reinforced "
          f"{finals['reinforced']['zs']:.2f}% ({gain:+.2f} points); one seed, see `quartet clip reproduce` for "
          f"seeds and ablations.\n\n" + markdown_table(rows) + f"\n\nTotal {seconds:.0f} s.")
    return Section(title="clip: multi-modal reinforced training (MobileCLIP2)", markdown=md, images=[plot],
                   metrics={"zs_plain": finals["plain"]["zs"], "zs_reinforced": finals["reinforced"]["zs"],
                            "zs_gain": gain, "seconds": seconds, "preset": preset_name})


def _cols(m: dict[str, float]) -> dict[str, float]:
    return {"zs (balanced top-1)": round(m["zs"], 2), "emoji groups": round(m["emoji-groups/bal1"], 2),
            "emoji subgroups": round(m["emoji-subgroups/bal1"], 2),
            "OpenMoji groups": round(m["openmoji-groups/bal1"], 2), "plain top-1 (mean)": round(m["zs_top1"], 2),
            "retrieval R@1": round(m["ret"], 2)}


def _plot(runs: dict[str, Any], path: Any) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.4))
    for mode, r in runs.items():
        ms = r.run.read_metrics()
        a.plot([m["step"] for m in ms], [m["clip_real"] if mode == "plain" else m["loss"] for m in ms], label=mode)
        ev = [m for m in ms if "zs" in m]
        b.plot([m["step"] for m in ev], [m["zs"] for m in ev], marker="o", label=mode)
    a.set_xlabel("step")
    a.set_ylabel("training loss (own objective)")
    b.set_xlabel("step")
    b.set_ylabel("held-out zero-shot top-1 (%)")
    a.legend()
    b.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
