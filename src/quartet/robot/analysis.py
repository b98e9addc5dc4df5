"""Per-stride lift, drag, drag energy, electrical power and specific resistance (Koc et al., ICRA 2019 §III-IV;
lab pipeline: bsuper-archive/veloplot, facts only).

Pipeline for one log:
1. resample onto a uniform clock at the median interval (missing samples are linearly interpolated; the count is
   reported), because the Butterworth filters assume uniform sampling;
2. battery: isolated ADC glitches replaced by their neighbours' mean (counted, ``despike_battery``; off with
   ``despike=False``);
3. strides cut where the right-leg crank angle wraps (each maximum of angle mod 2π); partial first/last strides
   dropped;
4. shell wrench (only with a calibration matrix): W = features(S)·N, tared on the first 50 samples, low-passed
   with a 4th-order Butterworth at 10 Hz, zero-phase (``filtfilt``) by default. The lab used a causal ``lfilter``
   at the same cutoff (``Wn = 20/1000`` of the Nyquist-normalised 1-kHz rate); ``filter_mode="causal"`` reproduces
   it, and :func:`pipeline_effects` measures the difference (peak-drag lag, energy change) on a log;
5. drag = Fx, lift = Fz (shell frame x forward, z up; negative lift pushes the body down), drag energy per stride
   E_d = ∫ Fx·v dt with the trial's forward speed v;
6. electrical power per side P = |duty·V_bat·(V_bat − V_bemf)| / R (R = 3.3 Ω), SR per stride =
   mean(P_R + P_L) / (m g v) with m = 73.3 g.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.signal import butter, sosfilt, sosfiltfilt

from quartet.core.errors import QuartetError
from quartet.robot.calibration import Calibration, tare
from quartet.robot.telemetry import Telemetry, despike_battery

ROBOT_MASS_KG = 0.0733  # without the bottom shell, as in the lab's SR
GRAVITY = 9.81
MOTOR_R_OHM = 3.3  # SS7-3.3 winding resistance (lab code marks it "need to check")
MOTOR_KT_NM_A = 1.41e-3


@dataclass
class AnalysisOptions:
    speed_m_s: float  # forward speed of the trial
    calibration: Calibration | None = None
    cutoff_hz: float = 10.0
    order: int = 4
    filter_mode: str = "zerophase"  # or "causal" (the lab's lfilter)
    tare_samples: int = 50
    despike: bool = True
    mass_kg: float = ROBOT_MASS_KG
    resistance_ohm: float = MOTOR_R_OHM


@dataclass
class StrideTable:
    """Per-stride results (arrays of equal length) and the per-sample signals they came from."""

    start_s: np.ndarray
    duration_s: np.ndarray
    elec_energy_j: np.ndarray
    mean_power_w: np.ndarray
    sr: np.ndarray
    mean_power_side_w: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))  # [strides, (right, left)]
    drag_energy_j: np.ndarray | None = None
    mean_drag_n: np.ndarray | None = None
    peak_drag_n: np.ndarray | None = None  # most negative Fx
    peak_drag_time_s: np.ndarray | None = None  # time of the most negative Fx since stride start
    mean_lift_n: np.ndarray | None = None
    min_lift_n: np.ndarray | None = None
    signals: dict[str, np.ndarray] = field(default_factory=dict)
    bounds: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.sr.size)

    def rows(self) -> list[dict[str, float]]:
        out = []
        for i in range(len(self)):
            r = {"stride": i, "start_s": float(self.start_s[i]), "duration_s": float(self.duration_s[i]),
                 "elec_energy_j": float(self.elec_energy_j[i]), "mean_power_w": float(self.mean_power_w[i]),
                 "power_right_w": float(self.mean_power_side_w[i, 0]),
                 "power_left_w": float(self.mean_power_side_w[i, 1]), "sr": float(self.sr[i])}
            if self.drag_energy_j is not None:
                r.update(drag_energy_mj=1e3 * float(self.drag_energy_j[i]), mean_drag_n=float(self.mean_drag_n[i]),
                         peak_drag_n=float(self.peak_drag_n[i]), mean_lift_n=float(self.mean_lift_n[i]),
                         min_lift_n=float(self.min_lift_n[i]))
            out.append(r)
        return out


def uniform_resample(tel: Telemetry) -> tuple[np.ndarray, np.ndarray, int]:
    """(t [s], raw as float on a uniform grid, number of inserted samples)."""
    t = tel.t
    dt = np.median(np.diff(t))
    n = int(np.floor((t[-1] - t[0]) / dt + 1e-6)) + 1
    tu = t[0] + dt * np.arange(n)
    inserted = max(0, n - t.size)
    if inserted == 0 and np.allclose(tu, t, atol=0.1 * dt):
        return t, tel.raw.astype(np.float64), 0
    raw = tel.raw.astype(np.float64)
    out = np.empty((n, raw.shape[1]))
    for j in range(raw.shape[1]):
        out[:, j] = np.interp(tu, t, raw[:, j])
    return tu, out, inserted


def lowpass(x: np.ndarray, fs_hz: float, cutoff_hz: float, order: int, mode: str) -> np.ndarray:
    """Butterworth low-pass along axis 0: ``zerophase`` (sosfiltfilt, no lag, squared magnitude response) or
    ``causal`` (sosfilt, the lab's choice; group delay ~40 ms at 10 Hz / 4th order)."""
    sos = butter(order, cutoff_hz / (fs_hz / 2), output="sos")
    if mode == "zerophase":
        return sosfiltfilt(sos, x, axis=0)
    if mode == "causal":
        return sosfilt(sos, x, axis=0)
    raise QuartetError(f"filter mode {mode!r}: use 'zerophase' or 'causal'")


def stride_bounds(right_angle_rad: np.ndarray) -> np.ndarray:
    """Sample indices where the right crank angle passes each multiple of 2π (= maxima of angle mod 2π).

    Encoder jitter backwards across a wrap is ignored by searching the running maximum of the angle."""
    a = np.maximum.accumulate(right_angle_rad if right_angle_rad[-1] >= right_angle_rad[0] else -right_angle_rad)
    k0 = np.floor(a[0] / (2 * np.pi)) + 1
    k1 = np.floor(a[-1] / (2 * np.pi))
    if k1 < k0:
        return np.zeros(0, dtype=int)
    levels = 2 * np.pi * np.arange(k0, k1 + 1)
    return np.searchsorted(a, levels, side="left").astype(int)


def electrical_power(duty: np.ndarray, vbatt: np.ndarray, bemf: np.ndarray, r_ohm: float) -> np.ndarray:
    """Per-side electrical power [N, 2] (W): |duty·V_bat·(V_bat − V_bemf)| / R (the lab's formula)."""
    vb = vbatt[:, None]
    return np.abs(duty * vb * (vb - bemf)) / r_ohm


def analyze_log(tel: Telemetry, opts: AnalysisOptions) -> StrideTable:
    """Per-stride table for one log (see module docstring)."""
    from quartet.robot.telemetry import BEMF_V_PER_COUNT, DUTY_FULL_SCALE, RAD_PER_COUNT, VBATT_V_PER_COUNT

    if opts.speed_m_s <= 0:
        raise QuartetError(f"{tel.name}: forward speed must be positive, got {opts.speed_m_s} m/s")
    t, raw, inserted = uniform_resample(tel)
    notes = []
    if inserted:
        notes.append(f"{inserted} missing sample(s) linearly interpolated onto a uniform clock")
    fs = 1.0 / float(np.median(np.diff(t)))
    f_stride = tel.stride_frequency_hz
    if opts.calibration is not None and f_stride and f_stride > opts.cutoff_hz / 2:
        notes.append(f"stride frequency {f_stride:g} Hz is above half the {opts.cutoff_hz:g}-Hz cutoff: the "
                     "within-stride force profile is smoothed away (raise --cutoff-hz for fast gaits)")
    vb = raw[:, 15] * VBATT_V_PER_COUNT
    if opts.despike:
        vb, n_spk = despike_battery(vb)
        if n_spk:
            notes.append(f"{n_spk} isolated battery reading(s) replaced by their neighbours' mean")
    duty = raw[:, 5:7] / DUTY_FULL_SCALE
    bemf = raw[:, 13:15] * BEMF_V_PER_COUNT
    power_sides = electrical_power(duty, vb, bemf, opts.resistance_ohm)
    power = power_sides.sum(axis=1)
    bounds = stride_bounds(raw[:, 1] * RAD_PER_COUNT)
    if bounds.size < 2:
        raise QuartetError(f"{tel.name}: fewer than one full stride (right leg made < 1 revolution)")
    sig: dict[str, np.ndarray] = {"t": t, "power_w": power, "vbatt_v": vb}
    fx = fz = None
    if opts.calibration is not None:
        if not tel.has_shell:
            raise QuartetError(f"{tel.name}: no shell channels; drop --calib for this log or analyse SR only")
        w = tare(opts.calibration.apply(raw[:, 16:24]), opts.tare_samples)
        w = lowpass(w, fs, opts.cutoff_hz, opts.order, opts.filter_mode)
        fx, fz = w[:, 0], w[:, 2]
        sig.update(fx_n=fx, fy_n=w[:, 1], fz_n=fz)
    n = bounds.size - 1
    st = StrideTable(start_s=np.empty(n), duration_s=np.empty(n), elec_energy_j=np.empty(n),
                     mean_power_w=np.empty(n), sr=np.empty(n), mean_power_side_w=np.empty((n, 2)), signals=sig,
                     bounds=bounds, notes=notes)
    if fx is not None:
        st.drag_energy_j, st.mean_drag_n, st.peak_drag_n = np.empty(n), np.empty(n), np.empty(n)
        st.peak_drag_time_s, st.mean_lift_n, st.min_lift_n = np.empty(n), np.empty(n), np.empty(n)
    mg = opts.mass_kg * GRAVITY
    for i in range(n):
        a, b = bounds[i], bounds[i + 1] + 1  # include the end sample so strides tile the time axis
        ts = t[a:b]
        dur = ts[-1] - ts[0]
        st.start_s[i], st.duration_s[i] = ts[0], dur
        e = np.trapezoid(power[a:b], ts)
        st.elec_energy_j[i] = e
        st.mean_power_w[i] = e / dur
        st.mean_power_side_w[i] = np.trapezoid(power_sides[a:b], ts, axis=0) / dur
        st.sr[i] = st.mean_power_w[i] / (mg * opts.speed_m_s)
        if fx is not None:
            st.drag_energy_j[i] = opts.speed_m_s * np.trapezoid(fx[a:b], ts)
            st.mean_drag_n[i] = np.trapezoid(fx[a:b], ts) / dur
            k = int(np.argmin(fx[a:b]))
            st.peak_drag_n[i], st.peak_drag_time_s[i] = fx[a + k], ts[k] - ts[0]
            st.mean_lift_n[i] = np.trapezoid(fz[a:b], ts) / dur
            st.min_lift_n[i] = float(fz[a:b].min())
    return st


def mean_sem(x: np.ndarray) -> tuple[float, float]:
    x = np.asarray(x, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return float("nan"), float("nan")
    sem = float(x.std(ddof=1) / np.sqrt(x.size)) if x.size > 1 else float("nan")
    return float(x.mean()), sem


def summarize(st: StrideTable) -> dict[str, float]:
    """Mean and SEM over strides of every per-stride quantity (keys ``<q>_mean``, ``<q>_sem``) plus counts."""
    out: dict[str, float] = {"n_strides": len(st)}
    cols = {"sr": st.sr, "mean_power_w": st.mean_power_w, "elec_energy_j": st.elec_energy_j,
            "duration_s": st.duration_s}
    if st.drag_energy_j is not None:
        cols.update(drag_energy_mj=1e3 * st.drag_energy_j, mean_drag_n=st.mean_drag_n, peak_drag_n=st.peak_drag_n,
                    mean_lift_n=st.mean_lift_n, min_lift_n=st.min_lift_n)
    for k, v in cols.items():
        out[f"{k}_mean"], out[f"{k}_sem"] = mean_sem(v)
    return out


def stride_profiles(st: StrideTable, key: str, n_points: int = 100) -> np.ndarray:
    """Signal ``key`` of every stride resampled onto ``n_points`` of stride phase [0, 1) -> [n_strides, n_points]."""
    sig, b = st.signals[key], st.bounds
    ph = np.linspace(0, 1, n_points, endpoint=False)
    rows = [np.interp(ph, np.linspace(0, 1, b[i + 1] - b[i], endpoint=False), sig[b[i]:b[i + 1]])
            for i in range(b.size - 1)]
    return np.asarray(rows)


def pipeline_effects(tel: Telemetry, opts: AnalysisOptions) -> dict[str, float]:
    """Measured effect of each deviation from the lab's pipeline on one log.

    - zero-phase vs causal Butterworth (same order/cutoff): median lag of the per-stride peak drag (ms; causal
      minus zero-phase), median |Δ peak drag| (N) and median relative change of per-stride drag energy (%);
    - battery despiking: relative change of mean SR (%);
    - uniform resampling: number of inserted samples."""
    from dataclasses import replace

    out: dict[str, float] = {}
    zp = analyze_log(tel, replace(opts, filter_mode="zerophase"))
    raw_v = analyze_log(tel, replace(opts, despike=False))
    out["despike_sr_change_pct"] = float(100 * (np.mean(zp.sr) / np.mean(raw_v.sr) - 1))
    out["resampled_inserted_samples"] = float(uniform_resample(tel)[2])
    if opts.calibration is not None and tel.has_shell:
        ca = analyze_log(tel, replace(opts, filter_mode="causal"))
        out["causal_peak_drag_lag_ms_median"] = float(1e3 * np.median(ca.peak_drag_time_s - zp.peak_drag_time_s))
        out["causal_peak_drag_abs_diff_n_median"] = float(np.median(np.abs(ca.peak_drag_n - zp.peak_drag_n)))
        denom = np.where(np.abs(zp.drag_energy_j) > 1e-12, np.abs(zp.drag_energy_j), np.nan)
        rel = 100 * (ca.drag_energy_j - zp.drag_energy_j) / denom
        out["causal_drag_energy_rel_diff_pct_median"] = float(np.nanmedian(np.abs(rel)))
        out["causal_drag_energy_diff_mj_mean"] = float(1e3 * np.mean(ca.drag_energy_j - zp.drag_energy_j))
    return out
