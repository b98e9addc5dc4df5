"""Accuracy-vs-TTFT Pareto analysis (FastVLM Fig. 1 / Sec. 3.2): the upper-left envelope of (TTFT, accuracy).

A configuration is on the frontier when no other one is both at least as fast and more accurate. The paper sweeps
LLM size x input resolution and finds that scaling FastViTHD's resolution alone traces most of the frontier.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def pareto_front(points: list[dict[str, Any]], x: str = "ttft_s", y: str = "accuracy") -> list[dict[str, Any]]:
    """The points not dominated by any other (lower ``x`` and higher ``y`` are better), sorted by ``x``.

    Ties in ``x`` keep only the most accurate point; equal points are kept once."""
    best: list[dict[str, Any]] = []
    top = float("-inf")
    for p in sorted(points, key=lambda p: (p[x], -p[y])):
        if p[y] > top:
            best.append(p)
            top = p[y]
    return best


def plot_pareto(points: list[dict[str, Any]], path: str | Path, title: str = "accuracy vs TTFT") -> Path:
    """Scatter every point (labelled) and draw the frontier as a step line; returns ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    front = pareto_front(points)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.scatter([1000 * p["ttft_s"] for p in points], [p["accuracy"] for p in points], c="tab:gray", zorder=2)
    for p in points:
        ax.annotate(p.get("label", ""), (1000 * p["ttft_s"], p["accuracy"]), fontsize=8,
                    xytext=(4, 4), textcoords="offset points")
    ax.step([1000 * p["ttft_s"] for p in front], [p["accuracy"] for p in front], where="post", c="tab:red",
            marker="o", label="Pareto frontier", zorder=3)
    ax.set_xlabel("time to first token (ms, this CPU)")
    ax.set_ylabel("accuracy")
    ax.set_title(title)
    ax.legend(loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def plot_breakdown(rows: list[dict[str, Any]], path: str | Path, title: str = "TTFT breakdown") -> Path:
    """Stacked bars of encoder / projector / prefill milliseconds per configuration (``label`` per row)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [r["label"] for r in rows]
    enc = [r["encoder_ms"] for r in rows]
    proj = [r["projector_ms"] for r in rows]
    pre = [r["prefill_ms"] for r in rows]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.7 * len(rows) + 2), 4))
    xs = range(len(rows))
    ax.bar(xs, enc, label="vision encoder")
    ax.bar(xs, proj, bottom=enc, label="projector")
    ax.bar(xs, pre, bottom=[a + b for a, b in zip(enc, proj)], label="LLM prefill")
    ax.set_xticks(list(xs), labels, rotation=35, ha="right", fontsize=8)
    ax.set_ylabel("ms (median)")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
