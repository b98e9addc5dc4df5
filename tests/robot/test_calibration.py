from __future__ import annotations

import numpy as np
import pytest

from quartet.core.errors import QuartetError
from quartet.robot.calibration import (
    Calibration,
    features,
    fit_calibration,
    load_calibration,
    pair_streams,
    save_calibration,
    synthetic_pair,
    tare,
)


@pytest.fixture(scope="module")
def known(real_dir):
    return load_calibration(real_dir / "N_matrix_trial9.mat")


def test_shared_matrix_loads_and_is_labelled_approximate(known):
    assert known.matrix.shape == (24, 6) and known.approximate
    assert "APPROXIMATION" in known.label


def test_features_order_matches_lab_layout():
    s = np.arange(1, 9, dtype=float)[None] * 10
    f = features(s)
    np.testing.assert_allclose(f[0, :3], [10, 100, 1000])
    np.testing.assert_allclose(f[0, 21:], [80, 6400, 512000])


def test_fit_recovers_known_matrix(known):
    _, s, w = synthetic_pair(known.matrix, n=6000, noise_n=0.002, seed=1)
    cal = fit_calibration(s, w, holdout=0.2)
    # held-out error at the noise level (forces 2 mN, moments 20 uN·m)
    assert all(cal.heldout_rms[a] < 0.004 for a in ("Fx", "Fy", "Fz"))
    assert all(cal.heldout_rms[a] < 0.04 for a in ("Mx", "My", "Mz"))
    _, s2, _ = synthetic_pair(known.matrix, n=2000, noise_n=0.0, seed=2)
    pred, ref = features(s2) @ cal.matrix, features(s2) @ known.matrix
    rel = np.linalg.norm(pred - ref, axis=0) / np.linalg.norm(ref - ref.mean(0), axis=0)
    assert np.all(rel < 0.02)
    # coefficients: relative error of each channel's linear term on the scale of the data
    scale = np.abs(features(s2)).max(0)[:, None]
    err = np.abs((cal.matrix - known.matrix) * scale).max() / np.abs(known.matrix * scale).max()
    assert err < 0.05


def test_tap_alignment_recovers_clock_offset(known):
    t, s, w = synthetic_pair(known.matrix, n=3000, noise_n=0.001, seed=3)
    t_ref = np.arange(0, 3.2, 0.0005) - 0.137  # reference logged at 2 kHz on a clock 137 ms behind
    w_ref = np.stack([np.interp(t_ref + 0.137, t, w[:, j]) for j in range(6)], axis=1)
    s_p, w_p, off = pair_streams(t, s, t_ref, w_ref)
    assert off == pytest.approx(0.137, abs=0.0015)
    cal = fit_calibration(s_p, w_p)
    # the reference is tared (offset removed) and the cubic has no constant term, so the residual is the cost of
    # fitting that offset with the polynomial: still < 5% of each axis' spread
    for j, a in enumerate(("Fx", "Fy", "Fz", "Mx", "My", "Mz")):
        assert cal.heldout_rms[a] < 0.05 * w_p[:, j].std()


def test_save_load_roundtrip(tmp_path, known):
    json_p, csv_p = save_calibration(known, tmp_path / "c.json")
    a, b = load_calibration(json_p), load_calibration(csv_p)
    np.testing.assert_allclose(a.matrix, known.matrix)
    np.testing.assert_allclose(b.matrix, known.matrix, rtol=1e-9)
    assert a.approximate


def test_bad_inputs():
    with pytest.raises(QuartetError, match="24x6"):
        Calibration(matrix=np.zeros((5, 5)))
    with pytest.raises(QuartetError, match="not found"):
        load_calibration("/nonexistent/c.json")
    with pytest.raises(QuartetError, match="rest samples"):
        tare(np.zeros((10, 6)))


def test_real_log_wrench_shape_finite_and_tared(log8, known):
    w = tare(known.apply(log8.shell_counts))
    assert w.shape == (log8.raw.shape[0], 6) and np.all(np.isfinite(w))
    np.testing.assert_allclose(w[:50].mean(0), 0, atol=1e-9)
    # at rest the sensor noise is small next to what happens during the run
    assert np.all(w[:50, :3].std(0) < 0.1 * np.ptp(w[:, :3], axis=0))
