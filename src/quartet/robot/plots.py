"""Figures for the analysis and the sweep (matplotlib, Agg backend, PNG)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(plt: Any, fig: Any, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def forces_over_stride(profiles: dict[str, dict[str, np.ndarray]], path: Path, title: str = "") -> Path:
    """Mean ± SD of drag (Fx) and lift (Fz) over stride phase, one line per trial.

    ``profiles[trial] = {"fx_n": [strides, points], "fz_n": [...]}``."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharex=True)
    for name, prof in profiles.items():
        for ax, key, lab in ((axes[0], "fx_n", "drag Fx (N)"), (axes[1], "fz_n", "lift Fz (N)")):
            p = prof.get(key)
            if p is None or len(p) == 0:
                continue
            ph = np.linspace(0, 100, p.shape[1], endpoint=False)
            m, s = p.mean(axis=0), p.std(axis=0)
            ax.plot(ph, m, label=name)
            ax.fill_between(ph, m - s, m + s, alpha=0.2)
            ax.set_ylabel(lab)
    for ax in axes:
        ax.set_xlabel("stride phase (%)")
        ax.axhline(0, color="k", lw=0.5)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return _save(plt, fig, path)


def condition_bars(rows: list[dict[str, Any]], keys: list[tuple[str, str]], path: Path, title: str = "") -> Path:
    """One bar panel per (key, label): ``row[key + '_mean']`` with ``row[key + '_sem']`` error bars per condition."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(keys), figsize=(3.6 * len(keys), 3.4))
    axes = np.atleast_1d(axes)
    names = [str(r["condition"]) for r in rows]
    for ax, (key, lab) in zip(axes, keys, strict=True):
        m = [r.get(f"{key}_mean", np.nan) for r in rows]
        s = [r.get(f"{key}_sem", np.nan) for r in rows]
        m, s = np.asarray(m, dtype=float), np.nan_to_num(np.asarray(s, dtype=float))
        ax.bar(range(len(rows)), m, yerr=s, capsize=3, color="tab:blue", alpha=0.8)
        ax.set_xticks(range(len(rows)), names, rotation=30, ha="right", fontsize=7)
        ax.set_ylabel(lab)
        ax.axhline(0, color="k", lw=0.5)
        ax.grid(alpha=0.3, axis="y")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return _save(plt, fig, path)


def trend_panels(series: dict[str, dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]], xlabel: str,
                 panels: list[tuple[str, str]], path: Path, title: str = "") -> Path:
    """Line plots of y ± err vs x: ``series[line][key] = (x, y, err)``, one panel per (key, label)."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.4))
    axes = np.atleast_1d(axes)
    for ax, (key, lab) in zip(axes, panels, strict=True):
        for name, d in series.items():
            if key not in d:
                continue
            x, y, e = d[key]
            y, e = np.asarray(y, dtype=float), np.nan_to_num(np.asarray(e, dtype=float))
            ax.errorbar(x, y, yerr=e, marker="o", ms=4, capsize=2, label=name)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(lab)
        ax.axhline(0, color="k", lw=0.5)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return _save(plt, fig, path)


def time_series(t: np.ndarray, curves: dict[str, np.ndarray], path: Path, title: str = "",
                ylabel: str = "") -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 3.2))
    for name, y in curves.items():
        ax.plot(t, y, lw=0.9, label=name)
    ax.set_xlabel("time (s)")
    ax.set_ylabel(ylabel)
    ax.axhline(0, color="k", lw=0.5)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return _save(plt, fig, path)


def sensor_vs_truth(t: np.ndarray, sensor: dict[str, np.ndarray], truth: dict[str, np.ndarray], path: Path,
                    title: str = "") -> Path:
    """One panel per quantity: raw contact truth (light), truth low-passed like the sensor, and the sensor estimate."""
    plt = _plt()
    keys = list(sensor)
    fig, axes = plt.subplots(len(keys), 1, figsize=(8, 2.6 * len(keys)), sharex=True)
    axes = np.atleast_1d(axes)
    for ax, k in zip(axes, keys, strict=True):
        raw, smooth = truth[k]
        ax.plot(t, raw, color="0.8", lw=0.5, label="contact truth (raw, 1 kHz)")
        ax.plot(t, smooth, color="k", lw=1.2, label="contact truth, 10-Hz zero-phase")
        ax.plot(t, sensor[k], color="tab:red", lw=1.2, label="shell sensor via log + calibration")
        ax.set_ylabel(k)
        ax.axhline(0, color="k", lw=0.4)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, loc="upper left")
    axes[-1].set_xlabel("time (s)")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return _save(plt, fig, path)
