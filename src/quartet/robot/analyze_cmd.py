"""``quartet robot analyze LOG...``: per-stride and per-trial specific resistance, drag energy, lift and drag.

Real logs and simulated logs (written by ``quartet robot simulate``) are read the same way. Without ``--calib``
only electrical quantities (power, SR) are computed; forces need a calibration matrix. The shared
``N_matrix_*.mat`` files are earlier calibrations of the sensor design, so results made with them are labelled
APPROXIMATION in every table, JSON and plot title.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import tyro

from quartet.core.config import parse_cli
from quartet.core.errors import QuartetError
from quartet.core.io import atomic_write_text
from quartet.core.paths import shared_data
from quartet.core.progress import get_logger, progress
from quartet.core.report import markdown_table
from quartet.core.runs import RunDir
from quartet.robot.analysis import AnalysisOptions, analyze_log, mean_sem, pipeline_effects, stride_profiles, summarize
from quartet.robot.calibration import Calibration, load_calibration
from quartet.robot.telemetry import read_log
from quartet.robot.trials import trial_info

log = get_logger("robot.analyze")


@dataclass
class AnalyzeConfig:
    """Analyse telemetry logs: strides, SR, electrical energy; with --calib also drag/lift and drag energy."""

    logs: tyro.conf.Positional[tuple[Path, ...]] = ()
    """log files (default: every log in shared/data/velociroach)"""
    speed_cm_s: float | None = None
    """forward speed for every log (default: the documented per-trial table, see quartet.robot.trials)"""
    calib: Path | None = None
    """calibration matrix (.json from `calibrate`, .mat with variable N/C, or 24x6 .csv)"""
    cutoff_hz: float = 10.0
    """low-pass cutoff of the 4th-order Butterworth on the wrench"""
    filter: Literal["zerophase", "causal"] = "zerophase"
    """zerophase (filtfilt, default) or causal (the lab's lfilter)"""
    despike: bool = True
    """replace isolated battery glitches (counted and reported)"""
    repair: bool = False
    """drop malformed lines / non-increasing time stamps instead of failing (counted and reported)"""
    effects: bool = True
    """measure the effect of each deviation from the lab pipeline on every log"""
    out: Path | None = None
    """output folder (default runs/<timestamp>-robot-analyze)"""
    plots: bool = True
    quiet: bool = False
    """print only the per-trial summary"""


def default_logs() -> list[Path]:
    return sorted(shared_data("velociroach").glob("*.txt"))


def analyze_paths(paths: list[Path], cfg: AnalyzeConfig) -> dict:
    """Analyse every log; returns {"trials": [...], "strides": [...], "conditions": [...], "profiles": {...}}."""
    cal: Calibration | None = load_calibration(cfg.calib) if cfg.calib else None
    trials, strides, profiles = [], [], {}
    for p in progress(paths, desc="analyze", unit="log"):
        tel = read_log(p, repair=cfg.repair)
        info = trial_info(tel, None if cfg.speed_cm_s is None else cfg.speed_cm_s / 100)
        use_cal = cal if (cal is not None and tel.has_shell) else None
        opts = AnalysisOptions(speed_m_s=float(info.speed_m_s), calibration=use_cal, cutoff_hz=cfg.cutoff_hz,
                               filter_mode=cfg.filter, despike=cfg.despike)
        st = analyze_log(tel, opts)
        summ = summarize(st)
        rec = {"log": tel.name, "condition": info.condition, "gap_cm": info.gap_cm,
               "speed_cm_s": 100 * info.speed_m_s, "speed_source": info.speed_source,
               "stride_frequency_hz": tel.stride_frequency_hz, "has_shell": tel.has_shell,
               "calibration": use_cal.label if use_cal else None,
               "quirks": tel.quirks.summary(), "missing_samples": tel.quirks.missing_samples,
               "battery_spikes": tel.quirks.battery_spikes, "pipeline_notes": st.notes, **summ}
        if cal is not None and not tel.has_shell:
            rec["pipeline_notes"] = [*st.notes, "16-column log: no shell channels, forces skipped"]
        if cfg.effects:
            rec["pipeline_effects"] = pipeline_effects(tel, opts)
        trials.append(rec)
        for r in st.rows():
            strides.append({"log": tel.name, "condition": info.condition, **r})
        if use_cal is not None:
            profiles[tel.name] = {k: stride_profiles(st, k) for k in ("fx_n", "fz_n")}
    conds: dict[str, list[dict]] = {}
    for r in strides:
        conds.setdefault(r["condition"], []).append(r)
    conditions = []
    for name, rows in conds.items():
        c: dict = {"condition": name, "n_trials": len({r["log"] for r in rows}), "n_strides": len(rows)}
        for k in ("sr", "mean_power_w", "drag_energy_mj", "mean_drag_n", "peak_drag_n", "mean_lift_n", "min_lift_n"):
            if k in rows[0]:
                c[f"{k}_mean"], c[f"{k}_sem"] = mean_sem(np.array([r[k] for r in rows]))
        conditions.append(c)
    return {"trials": trials, "strides": strides, "conditions": conditions, "profiles": profiles,
            "calibration": cal.label if cal else None}


def json_safe(v: Any) -> Any:
    """Non-finite floats (e.g. the SEM of a single stride) as null, so JSON files stay standard."""
    if isinstance(v, dict):
        return {k: json_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [json_safe(x) for x in v]
    if isinstance(v, (float, np.floating)):
        return float(v) if np.isfinite(v) else None
    return v


def _csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if k not in cols and not isinstance(r[k], (dict, list))]
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def _fmt_stride_table(strides: list[dict]) -> str:
    keep = ("stride", "start_s", "sr", "power_right_w", "power_left_w", "drag_energy_mj", "mean_drag_n", "min_lift_n")
    return markdown_table([{k: r[k] for k in keep if k in r} for r in strides])


def write_outputs(res: dict, out: Path, plots: bool = True) -> list[Path]:
    from quartet.core.io import atomic_write_json
    from quartet.robot import plots as P

    written = [atomic_write_text(out / "strides.csv", _csv(res["strides"])),
               atomic_write_text(out / "trials.csv", _csv(res["trials"])),
               atomic_write_text(out / "conditions.csv", _csv(res["conditions"])),
               atomic_write_json(out / "trials.json", json_safe({"calibration": res["calibration"],
                                                                 "trials": res["trials"],
                                                                 "conditions": res["conditions"]}))]
    if plots:
        tag = f" — forces with {res['calibration']}" if res["calibration"] else ""
        if res["profiles"]:
            written.append(P.forces_over_stride(res["profiles"], out / "plots" / "forces_over_stride.png",
                                                title="drag and lift over a stride (mean ± SD)" + tag))
        keys = [("sr", "specific resistance")]
        if any("drag_energy_mj_mean" in c for c in res["conditions"]):
            keys += [("drag_energy_mj", "drag energy / stride (mJ)"), ("min_lift_n", "min lift / stride (N)")]
        written.append(P.condition_bars(res["conditions"], keys, out / "plots" / "conditions.png",
                                        title="per condition, mean ± SEM over strides" + tag))
    return written


def main(argv: list[str] | None = None) -> int:
    cfg = parse_cli(AnalyzeConfig, argv, prog="quartet robot analyze")
    paths = list(cfg.logs) or default_logs()
    if not paths:
        raise QuartetError("no logs given and none found in shared/data/velociroach")
    res = analyze_paths(paths, cfg)
    run = RunDir.create("", root=cfg.out, config=cfg, exist_ok=True) if cfg.out else \
        RunDir.create("robot-analyze", config=cfg)
    files = write_outputs(res, run.path, plots=cfg.plots)
    if not cfg.quiet:
        for tr in res["trials"]:
            rows = [r for r in res["strides"] if r["log"] == tr["log"]]
            print(f"\n## {tr['log']}  [{tr['condition']}; v = {tr['speed_cm_s']:.3f} cm/s: {tr['speed_source']}]")
            print(f"quirks: {tr['quirks']}")
            for n in tr["pipeline_notes"]:
                print(f"pipeline: {n}")
            print(_fmt_stride_table(rows))
    print("\n## per trial (mean ± SEM over strides)")
    trial_rows = []
    for tr in res["trials"]:
        r = {"log": tr["log"][:34], "strides": tr["n_strides"], "v cm/s": round(tr["speed_cm_s"], 3),
             "SR": f"{tr['sr_mean']:.2f} ± {tr['sr_sem']:.2f}"}
        if "drag_energy_mj_mean" in tr:
            r["drag energy mJ"] = f"{tr['drag_energy_mj_mean']:.3f} ± {tr['drag_energy_mj_sem']:.3f}"
            r["min lift N"] = f"{tr['min_lift_n_mean']:.3f} ± {tr['min_lift_n_sem']:.3f}"
        else:
            r["drag energy mJ"] = "needs --calib"
        trial_rows.append(r)
    print(markdown_table(trial_rows))
    if len(res["conditions"]) > 1 or len(res["trials"]) > 1:
        print("\n## per condition (mean ± SEM over all strides of its trials)")
        crow = []
        for c in res["conditions"]:
            r = {"condition": c["condition"], "trials": c["n_trials"], "strides": c["n_strides"],
                 "SR": f"{c['sr_mean']:.2f} ± {c['sr_sem']:.2f}"}
            if "drag_energy_mj_mean" in c:
                r["drag energy mJ"] = f"{c['drag_energy_mj_mean']:.3f} ± {c['drag_energy_mj_sem']:.3f}"
            crow.append(r)
        print(markdown_table(crow))
    if res["calibration"]:
        print(f"forces computed with {res['calibration']}")
    else:
        print("drag energy / lift / drag need a calibration matrix: add --calib FILE (e.g. "
              "shared/data/velociroach/N_matrix_trial9.mat, an APPROXIMATION: earlier calibration of this sensor)")
    if cfg.effects:
        print("\n## measured effect of deviations from the lab pipeline")
        print(markdown_table([{"log": t["log"][:34], **{k: round(v, 4) for k, v in t["pipeline_effects"].items()}}
                              for t in res["trials"]]))
    print(f"\noutputs: {run.path} ({', '.join(p.name for p in files)})")
    return 0
