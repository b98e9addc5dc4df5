"""Shell sensor calibration: per-channel cubic model W = C·[s, s², s³] (Goldberg & Fearing, UCB/EECS-2016-26;
Koc et al., ICRA 2019 §II). Layout and units follow the lab's ``N`` matrices (bsuper-archive/veloplot,
cemkoc/roach_JG_CemCanBrian): a 24x6 matrix whose rows are S1, S1², S1³, S2, ... S8³ and whose columns are
Fx, Fy, Fz (N), Mx, My, Mz (mN·m), so ``W = features(S) @ N``.

Fitting is ordinary least squares on column-scaled features (raw counts ~2,000 make s³ ~1e10; without scaling the
normal equations lose ~20 digits, with it the fit is as accurate as the data). Reference and sensor streams are
aligned on a tap event (largest jump of the force norm), cross-correlation-refined, then resampled onto the
sensor clock. Held-out error is measured on a contiguous final block (default 20%), never on shuffled samples,
because neighbouring 1-kHz samples are nearly identical and a shuffled split would overstate accuracy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from quartet.core.errors import DataCorruptError, QuartetError
from quartet.core.io import atomic_write_json, atomic_write_text

AXES: tuple[str, ...] = ("Fx", "Fy", "Fz", "Mx", "My", "Mz")
AXIS_UNITS: tuple[str, ...] = ("N", "N", "N", "mN·m", "mN·m", "mN·m")
N_CHANNELS = 8
N_FEATURES = 3 * N_CHANNELS
TARE_SAMPLES = 50


@dataclass
class Calibration:
    """A 24x6 calibration matrix in the lab's layout plus where it came from."""

    matrix: np.ndarray  # [24, 6]
    source: str = ""
    approximate: bool = False  # True for matrices not made for the log they are applied to
    note: str = ""
    heldout_rms: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        m = np.asarray(self.matrix, dtype=np.float64)
        if m.shape == (6, N_FEATURES):
            m = m.T
        if m.shape != (N_FEATURES, 6):
            raise QuartetError(f"calibration {self.source or ''}: matrix shape {m.shape}, expected 24x6 (or 6x24)")
        if not np.all(np.isfinite(m)):
            raise DataCorruptError(f"calibration {self.source}: matrix holds NaN/inf")
        self.matrix = m

    @property
    def label(self) -> str:
        tag = " (APPROXIMATION: earlier calibration of the same sensor design, not this log's)" if self.approximate \
            else ""
        return f"{Path(self.source).name if self.source else 'calibration'}{tag}"

    def apply(self, counts: np.ndarray) -> np.ndarray:
        """Wrench [N, 6] (N, mN·m) from raw counts [N, 8]."""
        return features(counts) @ self.matrix

    def to_json(self) -> dict:
        return {"layout": "24x6 rows S1,S1^2,S1^3,...,S8^3; columns Fx,Fy,Fz [N], Mx,My,Mz [mN*m]",
                "matrix": self.matrix.tolist(), "source": self.source, "approximate": self.approximate,
                "note": self.note, "heldout_rms": self.heldout_rms}


def features(counts: np.ndarray) -> np.ndarray:
    """[N, 8] raw counts -> [N, 24] features ordered S1, S1², S1³, S2, ... (the lab's row order)."""
    s = np.asarray(counts, dtype=np.float64)
    if s.ndim != 2 or s.shape[1] != N_CHANNELS:
        raise QuartetError(f"shell counts must be [N, 8], got {s.shape}")
    out = np.empty((s.shape[0], N_FEATURES))
    out[:, 0::3] = s
    out[:, 1::3] = s * s
    out[:, 2::3] = s * s * s
    return out


def tare(wrench: np.ndarray, n: int = TARE_SAMPLES) -> np.ndarray:
    """Subtract the mean of the first ``n`` samples (robot at rest) from every axis."""
    w = np.asarray(wrench, dtype=np.float64)
    if w.shape[0] < n:
        raise QuartetError(f"tare needs {n} rest samples, the log has {w.shape[0]}")
    return w - w[:n].mean(axis=0)


def fit_matrix(counts: np.ndarray, wrench: np.ndarray) -> np.ndarray:
    """Least-squares 24x6 matrix with ``features(counts) @ N ≈ wrench`` (column-scaled for conditioning)."""
    x = features(counts)
    w = np.asarray(wrench, dtype=np.float64)
    if w.ndim != 2 or w.shape[1] != 6 or w.shape[0] != x.shape[0]:
        raise QuartetError(f"reference wrench must be [N, 6] matching {x.shape[0]} sensor samples, got {w.shape}")
    if x.shape[0] < 4 * N_FEATURES:
        raise QuartetError(f"need at least {4 * N_FEATURES} paired samples to fit 24 coefficients, got {x.shape[0]}")
    scale = np.abs(x).max(axis=0)
    scale[scale == 0] = 1.0
    sol, *_ = np.linalg.lstsq(x / scale, w, rcond=None)
    return sol / scale[:, None]


def rms_per_axis(pred: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    err = np.sqrt(np.mean((np.asarray(pred) - np.asarray(ref)) ** 2, axis=0))
    return {a: float(e) for a, e in zip(AXES, err, strict=True)}


def fit_calibration(counts: np.ndarray, wrench: np.ndarray, holdout: float = 0.2, source: str = "fit") -> Calibration:
    """Fit on the first ``1-holdout`` of the samples, report RMS per axis on the final block, refit on all."""
    n = counts.shape[0]
    k = round(n * (1 - holdout))
    rms: dict[str, float] = {}
    if 0 < holdout < 1 and n - k >= 10:
        m = fit_matrix(counts[:k], wrench[:k])
        rms = rms_per_axis(features(counts[k:]) @ m, wrench[k:])
    cal = Calibration(matrix=fit_matrix(counts, wrench), source=source, heldout_rms=rms)
    cal.note = f"OLS fit on {n} samples; held-out RMS on the last {100 * holdout:.0f}%"
    return cal


def tap_index(signal: np.ndarray, fraction: float = 0.5) -> int:
    """Index of the tap ("flick") event: the first sample whose jump (norm of the per-channel standardised
    sample-to-sample change) exceeds ``fraction`` of the largest jump. Taking the onset rather than the maximum
    keeps both streams on the same edge when the tap's release is as sharp as its onset."""
    sig = np.asarray(signal, dtype=np.float64).reshape(len(signal), -1)
    scale = sig.std(axis=0)
    scale[scale == 0] = 1.0
    jump = np.linalg.norm(np.diff(sig / scale, axis=0), axis=1)
    return int(np.flatnonzero(jump >= fraction * jump.max())[0]) + 1


def align_on_tap(t_sensor: np.ndarray, sensor_sig: np.ndarray, t_ref: np.ndarray, ref_sig: np.ndarray,
                 refine_window_s: float = 0.05) -> float:
    """Clock offset (s) to add to ``t_ref`` so the reference tap coincides with the sensor tap.

    Coarse: match the tap indices; fine: maximise the correlation of the two streams' jump profiles within
    ``refine_window_s`` (resolution = the sensor sampling interval)."""
    coarse = t_sensor[tap_index(sensor_sig)] - t_ref[tap_index(ref_sig)]
    dt = float(np.median(np.diff(t_sensor)))
    a = np.linalg.norm(np.atleast_2d(sensor_sig.T).T - sensor_sig[:1], axis=1)
    b_full = np.linalg.norm(np.atleast_2d(ref_sig.T).T - ref_sig[:1], axis=1)
    a = (a - a.mean()) / (a.std() + 1e-12)
    best, best_off = -np.inf, coarse
    for off in coarse + dt * np.arange(-int(refine_window_s / dt), int(refine_window_s / dt) + 1):
        b = np.interp(t_sensor, t_ref + off, b_full)
        b = (b - b.mean()) / (b.std() + 1e-12)
        c = float(np.dot(a, b))
        if c > best:
            best, best_off = c, off
    return float(best_off)


def pair_streams(t_sensor: np.ndarray, counts: np.ndarray, t_ref: np.ndarray, ref_wrench: np.ndarray,
                 tare_n: int = TARE_SAMPLES) -> tuple[np.ndarray, np.ndarray, float]:
    """Align the reference on the tap, resample it onto the sensor clock, keep the overlap, remove the reference
    offset (mean of its first ``tare_n`` samples). Returns (counts, wrench, offset_s)."""
    off = align_on_tap(t_sensor, counts, t_ref, ref_wrench)
    tr = t_ref + off
    keep = (t_sensor >= tr[0]) & (t_sensor <= tr[-1])
    if keep.sum() < 4 * N_FEATURES:
        raise QuartetError(f"after tap alignment only {int(keep.sum())} samples overlap; check the two recordings")
    w = np.stack([np.interp(t_sensor[keep], tr, ref_wrench[:, j]) for j in range(6)], axis=1)
    w = w - w[: min(tare_n, w.shape[0])].mean(axis=0)
    return np.asarray(counts)[keep], w, off


def load_calibration(path: str | Path, approximate: bool | None = None) -> Calibration:
    """Load a calibration from ``.json`` (ours), ``.mat`` (MATLAB v5, variable ``N`` or ``C``; read with
    ``scipy.io.loadmat``, which does not unpickle) or ``.csv`` (24 rows x 6 columns).

    The shared ``N_matrix_*.mat`` files are earlier calibrations of the sensor design: they are flagged
    ``approximate`` unless the caller says otherwise."""
    p = Path(path)
    if not p.is_file():
        raise QuartetError(f"calibration file {p} not found")
    suffix = p.suffix.lower()
    if suffix == ".json":
        try:
            d = json.loads(p.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise DataCorruptError(f"{p}: not valid JSON ({e})") from e
        if "matrix" not in d:
            raise DataCorruptError(f"{p}: no 'matrix' key; expected a file written by `quartet robot calibrate`")
        cal = Calibration(matrix=np.asarray(d["matrix"]), source=str(p), approximate=bool(d.get("approximate")),
                          note=str(d.get("note", "")), heldout_rms=dict(d.get("heldout_rms", {})))
    elif suffix == ".mat":
        import scipy.io

        try:
            d = scipy.io.loadmat(str(p))
        except (ValueError, NotImplementedError, OSError) as e:
            raise DataCorruptError(f"{p}: cannot read as a MATLAB v5 file ({e})") from e
        key = next((k for k in ("N", "C") if k in d), None)
        if key is None:
            found = sorted(k for k in d if not k.startswith("_"))
            raise DataCorruptError(f"{p}: no variable 'N' or 'C' (found {found})")
        is_shared = p.name.startswith("N_matrix")
        cal = Calibration(matrix=np.asarray(d[key], dtype=np.float64), source=str(p), approximate=is_shared,
                          note="earlier calibration of the same sensor design (approximation)" if is_shared else "")
    elif suffix == ".csv":
        cal = Calibration(matrix=np.loadtxt(p, delimiter=",", ndmin=2), source=str(p))
    else:
        raise QuartetError(f"calibration {p}: unknown format {suffix!r}; use .json, .mat (variable N/C) or .csv")
    if approximate is not None:
        cal.approximate = approximate
    return cal


def save_calibration(cal: Calibration, path: str | Path) -> list[Path]:
    """Write ``path`` (.json) and, beside it, the lab's 24x6 layout as ``.csv``. Returns both paths."""
    p = Path(path).with_suffix(".json")
    atomic_write_json(p, cal.to_json())
    csv = p.with_suffix(".csv")
    rows = [",".join(f"{v:.10e}" for v in row) for row in cal.matrix]
    atomic_write_text(csv, "\n".join(rows) + "\n")
    return [p, csv]


def synthetic_pair(matrix: np.ndarray, n: int = 4000, noise_n: float = 0.005, seed: int = 0,
                   fs_hz: float = 1000.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A synthetic calibration session: smooth random counts around 1,800 (±300), the wrench they produce under
    ``matrix`` plus Gaussian noise (``noise_n`` N on forces, 10x in mN·m on moments), and a tap at 10% of the
    record. Returns (t_s, counts [n, 8], wrench [n, 6])."""
    from scipy.signal import butter, sosfiltfilt

    rng = np.random.default_rng(seed)
    t = np.arange(n) / fs_hz
    sos = butter(2, 5.0 / (fs_hz / 2), output="sos")
    margin = 500  # crop the filter's edge transients
    base = sosfiltfilt(sos, rng.standard_normal((n + 2 * margin, N_CHANNELS)), axis=0)[margin:-margin]
    base /= base.std(axis=0, keepdims=True)
    counts = 1800 + 300 * base
    tap = n // 10
    counts[tap : tap + 20] += np.array([600, 500, -400, -300, 500, -600, 400, -500])  # the flick (not common-mode)
    w = features(counts) @ np.asarray(matrix)
    w += rng.standard_normal(w.shape) * np.array([noise_n] * 3 + [10 * noise_n] * 3)
    return t, counts, w
