from __future__ import annotations

import mujoco
import numpy as np
import pytest

from quartet.core.errors import QuartetError
from quartet.robot.motor import LegController, PIDGains
from quartet.robot.scene import SHELLS, SceneConfig, build_model, shell_contact_wrench
from quartet.robot.sim import SimConfig, _contact_truth, _sensor, run_simulation

NAMES = ("chassis", "shell", "right_front_leg", "left_rear_leg", "beam_left_0", "beam_right_4")


@pytest.mark.parametrize("shell", SHELLS)
def test_scene_compiles_named_and_steps_without_warnings(shell):
    m = build_model(SceneConfig(shell=shell, gap_cm=6))
    d = mujoco.MjData(m)
    for n in NAMES:
        assert mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, n) >= 0, n
    for s in ("shell_force", "shell_torque", "gyro", "accel", "shell_contact"):
        assert mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_SENSOR, s) >= 0, s
    assert mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_SITE, "shell_ft") >= 0
    assert m.opt.timestep == 0.0005 and m.opt.integrator == mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    chassis = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, "chassis")
    assert m.body_subtreemass[chassis] == pytest.approx(0.0733, abs=1e-6)
    ctl = LegController(m, PIDGains(), 3.7)
    for r in range(400):
        ctl.update(d, (2 * np.pi * r * 1e-3,) * 2, (2 * np.pi,) * 2, 1e-3)
        mujoco.mj_step(m, d, 2)
    assert all(int(w.number) == 0 for w in d.warning)
    assert np.all(np.isfinite(d.qpos))


def test_bad_scene_is_a_clear_error():
    with pytest.raises(QuartetError, match="shell"):
        build_model(SceneConfig(shell="sphere"))  # type: ignore[arg-type]
    with pytest.raises(QuartetError, match="positive"):
        build_model(SceneConfig(gap_cm=-1))


def test_at_rest_ground_normal_forces_sum_to_weight():
    m = build_model(SceneConfig(gap_cm=14))
    d = mujoco.MjData(m)
    mujoco.mj_step(m, d, 1000)  # 0.5 s to settle, servos holding angle 0
    floor = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, "floor")
    f6 = np.zeros(6)
    total = 0.0
    for i in range(d.ncon):
        c = d.contact[i]
        if floor in (c.geom1, c.geom2):
            mujoco.mj_contactForce(m, d, i, f6)
            total += f6[0] * c.frame[2] * (1 if c.geom1 == floor else -1)  # normal force, world z
    chassis = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, "chassis")
    weight = m.body_subtreemass[chassis] * 9.81
    assert total == pytest.approx(weight, rel=0.01)
    # the shell sensor at rest reads the shell's weight (force of the chassis on the shell, +z)
    fz = d.sensordata[_sensor(m, "shell_force")][2]
    shell = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, "shell")
    assert fz == pytest.approx(m.body_mass[shell] * 9.81, rel=0.01)


@pytest.mark.parametrize("segments", [1, 3])
def test_beam_tip_stiffness_matches_3EI_over_L3(segments):
    cfg = SceneConfig(gap_cm=14, beam_segments=segments, beam_stiffness=0.3)
    m = build_model(cfg)
    d = mujoco.MjData(m)
    tip = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_SITE, "beam_left_0_tip")
    top = m.site_bodyid[tip]
    mujoco.mj_forward(m, d)
    y0 = d.site_xpos[tip][1]
    force = np.array([0.0, 0.001, 0.0])  # 1 mN outward, ~3 mm of deflection
    for _ in range(4000):
        d.qfrc_applied[:] = 0
        mujoco.mj_applyFT(m, d, force, np.zeros(3), d.site_xpos[tip].copy(), top, d.qfrc_applied)
        mujoco.mj_step(m, d)
    k = force[1] / (d.site_xpos[tip][1] - y0)
    tol = 0.03
    assert k == pytest.approx(cfg.beam_stiffness, rel=tol)


def test_contact_sensor_truth_matches_python_sum():
    m = build_model(SceneConfig(gap_cm=5, beam_start_x=0.09))
    d = mujoco.MjData(m)
    g = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, "shell_geom")
    s = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_SITE, "shell_ft")
    seen = 0
    ctl = LegController(m, PIDGains(), 3.7)
    for r in range(1500):
        ctl.update(d, (2 * np.pi * r * 1e-3,) * 2, (2 * np.pi,) * 2, 1e-3)
        mujoco.mj_step(m, d, 2)
        if r % 100 == 99:
            ref, n = shell_contact_wrench(m, d, g, s)
            got, _ = _contact_truth(d.sensordata[_sensor(m, "shell_contact")][None], d.site_xpos[s][None],
                                        d.site_xmat[s][None])
            np.testing.assert_allclose(got[0], ref, atol=1e-9)
            seen += n > 0
    assert seen >= 3


def test_simulation_is_deterministic_and_logs_parse(tmp_path):
    from quartet.robot.analysis import AnalysisOptions, analyze_log
    from quartet.robot.scene import SceneConfig
    from quartet.robot.simulate_cmd import write_run
    from quartet.robot.telemetry import read_log

    cfg = SimConfig(scene=SceneConfig(gap_cm=6, beam_start_x=0.09, beams_per_side=2), duration_s=2.2, seed=3)
    a, b = run_simulation(cfg), run_simulation(cfg)
    np.testing.assert_array_equal(a.raw, b.raw)
    np.testing.assert_array_equal(a.truth, b.truth)
    assert a.warnings == []
    # mechanism diagnostics: wheel legs roll the calibrated stride with little slip, the PID duty is unsaturated
    assert a.meta["rolling_stride_m"] == pytest.approx(0.0584, abs=2e-4)
    assert -0.05 < a.meta["leg_slip"] < 0.2 and 0.05 < a.meta["mean_abs_duty"] < 0.5
    assert 0.0 <= a.meta["contact_force_within_3mm_of_rim"] <= 1.0
    paths = write_run(a, tmp_path, "sim", cfg.scene, plot=False)
    tel = read_log(paths["log"])
    assert tel.raw.shape == (a.raw.shape[0], 24) and tel.quirks.missing_samples == 0
    assert tel.quirks.shell_refresh_samples == pytest.approx(5, abs=0.5)
    from quartet.robot.calibration import load_calibration

    cal = load_calibration(paths["calib"])
    st = analyze_log(tel, AnalysisOptions(speed_m_s=a.meta["speed_m_s"], calibration=cal))
    assert len(st) >= 1 and np.all(np.isfinite(st.sr)) and np.all(st.sr > 0)
    # the shell sensor, through the simulated counts and calibration, sees the contact drag (filtered, tared)
    fx = st.signals["fx_n"]
    truth_fx = a.truth[:, 1]
    mask = np.abs(truth_fx) > 0.02
    assert mask.sum() > 50
    assert np.corrcoef(fx[mask], truth_fx[mask])[0, 1] > 0.6


def test_floor_friction_reaches_the_feet():
    m = build_model(SceneConfig(floor_friction=0.25))
    for name in ("floor", "right_front_wheg_4", "chassis_geom"):
        g = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, name)
        assert m.geom_friction[g][0] == pytest.approx(0.25), name


def test_every_body_joint_site_sensor_and_actuator_is_named():
    m = build_model(SceneConfig(gap_cm=6, beam_segments=2))
    kinds = [(mujoco.mjtObj.mjOBJ_BODY, m.nbody), (mujoco.mjtObj.mjOBJ_JOINT, m.njnt),
             (mujoco.mjtObj.mjOBJ_SITE, m.nsite), (mujoco.mjtObj.mjOBJ_SENSOR, m.nsensor),
             (mujoco.mjtObj.mjOBJ_ACTUATOR, m.nu), (mujoco.mjtObj.mjOBJ_GEOM, m.ngeom)]
    for obj, n in kinds:
        for i in range(1 if obj == mujoco.mjtObj.mjOBJ_BODY else 0, n):  # body 0 is the world
            assert mujoco.mj_id2name(m, obj, i), (obj, i)


def test_motor_torque_follows_dc_motor_law():
    from quartet.robot.scene import DUTY_LIMIT, MOTOR_KT, MOTOR_R_OHM

    cfg = SceneConfig(gap_cm=14)
    m = build_model(cfg)
    d = mujoco.MjData(m)
    a = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_ACTUATOR, "right_motor")
    dof = m.jnt_dofadr[m.actuator_trnid[a, 0]]
    ktn = MOTOR_KT * cfg.gear_ratio
    for duty, w in ((1.0, 0.0), (0.3, 6.0), (-0.5, 2.0)):
        d.ctrl[a] = duty * cfg.battery_v
        d.qvel[dof] = w
        mujoco.mj_forward(m, d)
        u = np.clip(duty, -DUTY_LIMIT, DUTY_LIMIT) * cfg.battery_v  # firmware saturation = ctrlrange
        assert d.actuator_force[a] == pytest.approx(ktn * (u - ktn * w) / MOTOR_R_OHM, rel=1e-4)


def test_pid_duty_grows_with_load_and_saturates():
    m = build_model(SceneConfig(gap_cm=14))
    d = mujoco.MjData(m)
    ctl = LegController(m, PIDGains(), 3.7)
    mujoco.mj_step(m, d, 600)
    free = []
    for r in range(600):
        free.append(ctl.update(d, (2 * np.pi * r * 1e-3,) * 2, (2 * np.pi,) * 2, 1e-3).copy())
        mujoco.mj_step(m, d, 2)
    # a crank held by a large opposing torque: the duty rises to the firmware limit
    dof = m.jnt_dofadr[m.actuator_trnid[ctl.act[0], 0]]
    held = []
    for r in range(600, 1200):
        d.qfrc_applied[:] = 0
        d.qfrc_applied[dof] = -0.2
        held.append(ctl.update(d, (2 * np.pi * r * 1e-3,) * 2, (2 * np.pi,) * 2, 1e-3).copy())
        mujoco.mj_step(m, d, 2)
    free, held = np.abs(np.array(free)[:, 0]), np.abs(np.array(held)[:, 0])
    assert held[-100:].min() == pytest.approx(3800 / 4096)
    assert free[-300:].mean() < 0.5 * held[-300:].mean()


@pytest.mark.parametrize("radius", [0.0075, 0.011])
def test_c_legs_rest_on_the_floor_and_step_cleanly(radius):
    m = build_model(SceneConfig(gap_cm=14, leg_shape="c_leg", leg_radius=radius))
    d = mujoco.MjData(m)
    ctl = LegController(m, PIDGains(), 3.7)
    mujoco.mj_step(m, d, 1000)
    chassis = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, "chassis")
    fz = sum(_floor_normal(m, d))
    assert fz == pytest.approx(m.body_subtreemass[chassis] * 9.81, rel=0.01)
    x0 = d.qpos[0]
    for r in range(1000):
        ctl.update(d, (2 * np.pi * r * 1e-3,) * 2, (2 * np.pi,) * 2, 1e-3)
        mujoco.mj_step(m, d, 2)
    assert all(int(w.number) == 0 for w in d.warning)
    assert d.qpos[0] - x0 > 0.03  # walks forward


def _floor_normal(m, d):
    floor = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, "floor")
    f6 = np.zeros(6)
    for i in range(d.ncon):
        c = d.contact[i]
        if floor in (c.geom1, c.geom2):
            mujoco.mj_contactForce(m, d, i, f6)
            yield f6[0] * c.frame[2] * (1 if c.geom1 == floor else -1)


def test_shell_push_probe_reads_as_negative_lift():
    from quartet.robot.sim import sensor_gain

    cfg = SimConfig(scene=SceneConfig(gap_cm=14, beams_per_side=0), duration_s=0.4, presettle_s=0.2,
                    settle_s=0.1, shell_push_n=0.2)
    res = run_simulation(cfg)
    _, g = sensor_gain()
    counts = res.raw[:, 16:24].astype(float)
    w = (counts - counts[:50].mean(axis=0)) @ np.linalg.pinv(g).T
    fz = w[res.meta["settle_rows"] + 50:, 2].mean()
    assert fz == pytest.approx(-0.2, abs=0.02)
