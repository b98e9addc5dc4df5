from __future__ import annotations

import numpy as np
import pytest

from quartet.core.errors import QuartetError
from quartet.robot.analysis import (
    GRAVITY,
    ROBOT_MASS_KG,
    AnalysisOptions,
    analyze_log,
    electrical_power,
    lowpass,
    pipeline_effects,
    stride_bounds,
    summarize,
)
from quartet.robot.calibration import load_calibration
from quartet.robot.telemetry import (
    DUTY_FULL_SCALE,
    RAD_PER_COUNT,
    VBATT_V_PER_COUNT,
    LogHeader,
    format_log,
    parse_log_text,
)


def test_stride_bounds_at_each_wrap_and_robust_to_jitter():
    a = np.linspace(0.5, 4 * 2 * np.pi + 0.5, 4001)
    a[1000:1003] -= 0.01  # encoder jitter backwards
    b = stride_bounds(a)
    assert len(b) == 4
    assert np.all(a[b] >= 2 * np.pi * np.arange(1, 5)) and np.all(a[b - 1] < 2 * np.pi * np.arange(1, 5))


def _synthetic(duty=0.5, vb_counts=800, bemf=0, n=5000, freq=1.0, shell=False):
    t = 1000 * np.arange(1, n + 1)
    raw = np.zeros((n, 24 if shell else 16), dtype=np.int64)
    raw[:, 0] = t
    raw[:, 1] = np.round(2 * np.pi * freq * t / 1e6 / RAD_PER_COUNT)
    raw[:, 2] = raw[:, 1] + 32768
    raw[:, 5:7] = int(duty * DUTY_FULL_SCALE)
    raw[:, 13:15] = bemf
    raw[:, 15] = vb_counts
    if shell:
        raw[:, 16:24] = 1800
    h = LogHeader(stride_frequency_hz=(freq, freq), phase=32768)
    return parse_log_text(format_log(raw, h))


def test_specific_resistance_matches_the_formula():
    tel = _synthetic()
    st = analyze_log(tel, AnalysisOptions(speed_m_s=0.06))
    vb = 800 * VBATT_V_PER_COUNT
    duty = int(0.5 * DUTY_FULL_SCALE) / DUTY_FULL_SCALE
    p = 2 * duty * vb * vb / 3.3
    assert len(st) == 4
    np.testing.assert_allclose(st.mean_power_w, p, rtol=1e-6)
    np.testing.assert_allclose(st.mean_power_side_w, p / 2, rtol=1e-6)
    assert st.rows()[0]["power_right_w"] == pytest.approx(p / 2)
    np.testing.assert_allclose(st.sr, p / (ROBOT_MASS_KG * GRAVITY * 0.06), rtol=1e-6)
    assert st.drag_energy_j is None
    s = summarize(st)
    assert s["n_strides"] == 4 and s["sr_sem"] == pytest.approx(0, abs=1e-9)


def test_electrical_power_is_per_side_and_absolute():
    p = electrical_power(np.array([[0.5, -0.5]]), np.array([4.0]), np.array([[1.0, 1.0]]), 2.0)
    np.testing.assert_allclose(p, [[3.0, 3.0]])


def test_drag_energy_of_a_known_force():
    # identity-like calibration on channel 1: Fx = (s1 - 1800) * 0.001 N after tare; a -0.05 N step after 1 s
    tel = _synthetic(shell=True)
    tel.raw[1000:, 16] = 1750
    from quartet.robot.calibration import Calibration

    m = np.zeros((24, 6))
    m[0, 0] = 0.001
    st = analyze_log(tel, AnalysisOptions(speed_m_s=0.06, calibration=Calibration(matrix=m)))
    # strides from t~1 s on see Fx = -0.05 N (after the filter settles): E = -0.05 * 0.06 * 1 s
    np.testing.assert_allclose(st.drag_energy_j[1:], -0.003, rtol=0.01)
    np.testing.assert_allclose(st.mean_drag_n[1:], -0.05, rtol=0.01)


def test_zero_phase_has_no_lag_causal_does():
    fs, t = 1000.0, np.arange(4000) / 1000
    x = np.exp(-((t - 2) / 0.05) ** 2)
    zp, ca = lowpass(x, fs, 10, 4, "zerophase"), lowpass(x, fs, 10, 4, "causal")
    assert abs(np.argmax(zp) - 2000) <= 1
    assert 20 < np.argmax(ca) - 2000 < 80
    with pytest.raises(QuartetError):
        lowpass(x, fs, 10, 4, "bogus")


def test_real_8cm_log(log8, real_dir):
    cal = load_calibration(real_dir / "N_matrix_trial9.mat")
    opts = AnalysisOptions(speed_m_s=0.05842, calibration=cal)
    st = analyze_log(log8, opts)
    assert len(st) == 11  # ~12 revolutions, partial first/last dropped
    assert np.all(np.isfinite(st.sr)) and np.all((st.sr > 5) & (st.sr < 200))
    assert np.all(np.isfinite(st.drag_energy_j))
    assert any("interpolated" in n for n in st.notes) and any("battery" in n for n in st.notes)
    eff = pipeline_effects(log8, opts)
    assert eff["causal_peak_drag_lag_ms_median"] > 10  # the lab's causal filter delays the drag peak
    assert eff["resampled_inserted_samples"] == 2


def test_no_strides_is_a_clear_error():
    tel = _synthetic(n=300)
    with pytest.raises(QuartetError, match="full stride"):
        analyze_log(tel, AnalysisOptions(speed_m_s=0.06))
