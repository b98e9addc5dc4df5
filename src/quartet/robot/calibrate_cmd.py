"""``quartet robot calibrate``: fit the shell's 24x6 cubic calibration from a sensor log and a reference
force/torque recording (e.g. an ATI Nano17), report held-out RMS error per axis, save JSON + the lab's 24x6 CSV.

Inputs: ``--sensor LOG`` (a 24-column telemetry log of the shell being pressed) and ``--reference CSV`` with
columns ``time_s,Fx,Fy,Fz,Mx,My,Mz`` (N, mN·m) on the reference's own clock. Both recordings must contain a tap
("flick") on the shell: the streams are aligned on it, the reference is resampled onto the sensor clock, both are
low-passed zero-phase (``--smooth-hz``), the reference offset is removed, and C is fitted by least squares on the
first 80% and evaluated on the last 20% (contiguous). ``--synthetic`` makes a known-matrix session instead (for a
check of the whole path: the recovered matrix must reproduce the known one).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from quartet.core.config import parse_cli
from quartet.core.errors import DataCorruptError, QuartetError
from quartet.core.runs import RunDir
from quartet.robot.calibration import (
    AXES,
    AXIS_UNITS,
    features,
    fit_calibration,
    load_calibration,
    pair_streams,
    save_calibration,
    synthetic_pair,
    tare,
)
from quartet.robot.telemetry import read_log


@dataclass
class CalibrateConfig:
    """Fit W = C·[s, s², s³] from paired shell-sensor and reference-wrench recordings."""

    sensor: Path | None = None
    """24-column telemetry log recorded while pressing the shell"""
    reference: Path | None = None
    """CSV time_s,Fx,Fy,Fz,Mx,My,Mz (N, mN·m) from the reference sensor"""
    synthetic: bool = False
    """fit on a synthetic session generated from --known (default: shared N_matrix_trial9.mat)"""
    known: Path | None = None
    noise_n: float = 0.003
    holdout: float = 0.2
    smooth_hz: float = 20.0
    out: Path | None = None


def _read_reference(p: Path) -> tuple[np.ndarray, np.ndarray]:
    if not p.is_file():
        raise QuartetError(f"reference recording {p} not found")
    try:
        a = np.loadtxt(p, delimiter=",", skiprows=1, ndmin=2)
    except ValueError as e:
        raise DataCorruptError(f"{p}: expected a CSV header and rows time_s,Fx,Fy,Fz,Mx,My,Mz ({e})") from e
    if a.shape[1] != 7:
        raise DataCorruptError(f"{p}: {a.shape[1]} columns, expected 7 (time_s,Fx,Fy,Fz,Mx,My,Mz)")
    return a[:, 0], a[:, 1:]


def main(argv: list[str] | None = None) -> int:
    from quartet.robot.analysis import lowpass

    cfg = parse_cli(CalibrateConfig, argv, prog="quartet robot calibrate")
    run = RunDir.create("", root=cfg.out, config=cfg, exist_ok=True) if cfg.out else \
        RunDir.create("robot-calibrate", config=cfg)
    known = None
    if cfg.synthetic:
        from quartet.core.paths import shared_data

        known = load_calibration(cfg.known or shared_data("velociroach", "N_matrix_trial9.mat"))
        t, counts, wrench = synthetic_pair(known.matrix, n=8000, noise_n=cfg.noise_n)
        t_ref, w_ref = t[::2] - 0.25, wrench[::2]  # a 500-Hz reference on a clock 250 ms off
        t_s, s = t, counts
        source = f"synthetic session from {known.label}"
    else:
        if cfg.sensor is None or cfg.reference is None:
            raise QuartetError("give --sensor LOG and --reference CSV, or --synthetic for a self-check")
        tel = read_log(cfg.sensor)
        t_s, s = tel.t, tel.shell_counts
        t_ref, w_ref = _read_reference(cfg.reference)
        source = f"{cfg.sensor.name} + {cfg.reference.name}"
    s_p, w_p, off = pair_streams(t_s, s, t_ref, w_ref)
    fs = 1.0 / float(np.median(np.diff(t_s)))
    if cfg.smooth_hz > 0:
        s_p = lowpass(s_p, fs, cfg.smooth_hz, 4, "zerophase")
        w_p = lowpass(w_p, fs, cfg.smooth_hz, 4, "zerophase")
    cal = fit_calibration(s_p, w_p, holdout=cfg.holdout, source=source)
    paths = save_calibration(cal, run.path / "calibration.json")
    result = {"clock_offset_s": off, "samples": int(s_p.shape[0]), "heldout_rms": cal.heldout_rms}
    print(f"aligned on the tap: reference clock offset {off * 1e3:.1f} ms; {s_p.shape[0]} paired samples")
    print(f"held-out RMS error (last {100 * cfg.holdout:.0f}%): "
          + ", ".join(f"{a} {cal.heldout_rms[a]:.4f} {u}" for a, u in zip(AXES, AXIS_UNITS, strict=True)))
    if known is not None:
        # compare tared wrenches (what the analysis uses): the fit never sees the reference's absolute offset
        pred, ref = tare(features(s) @ cal.matrix), tare(features(s) @ known.matrix)
        rel = np.linalg.norm(pred - ref, axis=0) / np.linalg.norm(ref - ref.mean(0), axis=0)
        result["relative_error_vs_known"] = dict(zip(AXES, rel.tolist(), strict=True))
        print("recovered vs known matrix (relative error of the tared wrench): "
              + ", ".join(f"{a} {100 * r:.2f}%" for a, r in zip(AXES, rel, strict=True)))
    run.write_result(result)
    print(f"saved: {paths[0]} and {paths[1]} (24x6, lab layout)")
    return 0
