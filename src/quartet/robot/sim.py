"""Simulated runs through a beam channel, recorded as lab-format telemetry plus contact ground truth.

The robot drops onto the floor and settles unlogged for ``presettle_s``, then rests logged for ``settle_s`` (the
first 50 samples are the rest period used for tare), then both cranks
follow the ramp θ(t) = 2π f (t − settle_s) under the lab's PID (``motor.py``: gains identified on the real logs,
duty clipped at ±3800/4096, geared DC motor with back-EMF, so speed and power respond to load). Every 1 ms (two
0.5-ms steps, the firmware's control period) one telemetry row is written in the lab's 24-column integer format and
units (``telemetry.py``):

- leg positions: crank angles as cumulative encoder counts (left offset by half a turn, Phase = 32768);
- duty: the PID's output as applied (clipped at ±3800/4096); back-EMF V_bemf = N K_t ω (R = 3.3 Ω,
  K_t = 1.41 mN·m/A, gear ratio N = 45 measured from the real logs' back-EMF, ``SceneConfig.gear_ratio``);
  battery ``SceneConfig.battery_v`` = 3.7 V;
- gyro, accelerometer: MuJoCo sensors on the chassis ``imu`` site;
- S1..S8: a synthetic linear sensor s = s0 + G·W of the shell's force/torque sensor reading W (the wrench the
  environment applies to the shell, site frame), rounded to integer counts, with Gaussian noise and refreshed
  every ``hold_samples`` samples like the real board (~180 Hz). The exact inverse of G is saved as a 24x6
  calibration (linear rows only) next to the log, so ``analyze --calib <log>.calib.json`` recovers W.

Ground truth (``<log>.truth.csv``): time, summed shell contact wrench (N, N·m, shell frame), contact count,
chassis position and the largest beam tip deflection on each side. ``<log>.meta.json`` holds the scene, the mean
forward speed and summary numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from quartet.core.seed import numpy_rng
from quartet.robot.calibration import Calibration
from quartet.robot.motor import LegController, PIDGains
from quartet.robot.scene import DUTY_LIMIT, MOTOR_KT, SceneConfig, beam_positions, build_model
from quartet.robot.telemetry import (
    ACCEL_M_S2_PER_COUNT,
    BEMF_V_PER_COUNT,
    DUTY_FULL_SCALE,
    GYRO_RAD_S_PER_COUNT,
    RAD_PER_COUNT,
    VBATT_V_PER_COUNT,
    LogHeader,
)

TRUTH_COLUMNS = ("time_s", "fx_n", "fy_n", "fz_n", "mx_nm", "my_nm", "mz_nm", "n_contacts", "x_m", "y_m", "z_m",
                 "defl_left_m", "defl_right_m")


@dataclass
class SimConfig:
    """One simulated run."""

    scene: SceneConfig = field(default_factory=SceneConfig)
    duration_s: float = 10.0
    """simulated time after settling"""
    presettle_s: float = 0.4
    """unlogged settling after the drop onto the floor (so the logged rest period used for tare is truly at rest)"""
    settle_s: float = 0.3
    stride_hz: float = 1.0
    pid: PIDGains = field(default_factory=PIDGains)
    shell_push_n: float = 0.0
    """constant downward force on the shell while running (N): a controlled probe of the paper's traction
    mechanism (beams pressing the body down), independent of beam geometry; 0 = off"""
    sensor_noise_counts: float = 1.0
    hold_samples: int = 5
    seed: int = 0
    steer_gain: float = 2.0
    """heading hold: relative crank-speed difference per rad of heading error"""
    lateral_gain: float = 3.0
    """heading target per m of lateral offset from the channel axis (rad/m)"""
    steer_max: float = 0.3


@dataclass
class SimResult:
    raw: np.ndarray  # [N, 24] int64 telemetry rows
    truth: np.ndarray  # [N, len(TRUTH_COLUMNS)]
    header: LogHeader
    calibration: Calibration
    meta: dict
    warnings: list[str]


def sensor_gain(seed: int = 1234) -> tuple[np.ndarray, np.ndarray]:
    """(s0 [8], G [8, 6]): rest counts and counts per unit wrench (N; mN·m) of the synthetic shell sensor.

    Gains ~150 counts/N and ~3 counts/(mN·m), full rank, fixed by ``seed``."""
    rng = np.random.default_rng(seed)
    g = np.concatenate([rng.normal(0, 150, (8, 3)), rng.normal(0, 3, (8, 3))], axis=1)
    s0 = rng.uniform(1700, 2200, 8)
    return s0, g


def sim_calibration(g: np.ndarray) -> Calibration:
    """The 24x6 calibration (lab layout, linear rows only) that inverts the synthetic sensor after tare."""
    m = np.zeros((24, 6))
    m[0::3, :] = np.linalg.pinv(g).T
    return Calibration(matrix=m, source="simulated sensor (exact inverse of the synthetic linear model)",
                       note="linear rows only: s = s0 + G W, so tared W = pinv(G) (s - s_rest)")


def _sensor(m, name: str) -> slice:
    import mujoco

    i = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_SENSOR, name)
    if i < 0:
        raise KeyError(name)
    return slice(int(m.sensor_adr[i]), int(m.sensor_adr[i] + m.sensor_dim[i]))


def run_simulation(cfg: SimConfig) -> SimResult:
    """Run the scene and record telemetry and ground truth (see module docstring).

    The loop copies one ``sensordata`` row per 1 ms (every quantity logged is a named MuJoCo sensor, including the
    net shell contact wrench); all conversions are vectorised afterwards. Compile, loop and conversions add 3-10%
    to the stepping time (benchmarks/robot; an open-loop ``mujoco.rollout`` of the same run was no faster)."""
    import mujoco

    m = build_model(cfg.scene)
    d = mujoco.MjData(m)
    beams = beam_positions(cfg.scene)
    substeps = max(1, round(1e-3 / m.opt.timestep))
    dt_row = substeps * m.opt.timestep
    n_settle = round(cfg.settle_s / dt_row)
    n_rows = n_settle + round(cfg.duration_s / dt_row)
    sl = {k: _sensor(m, k) for k in ("shell_force", "shell_torque", "gyro", "accel", "chassis_pos", "chassis_quat",
                                      "right_crank_pos", "left_crank_pos", "right_crank_vel", "left_crank_vel",
                                      "right_motor_torque", "left_motor_torque", "shell_site_pos", "shell_site_x",
                                      "shell_site_y", "shell_site_z", "shell_contact")}
    iq, iy = sl["chassis_quat"].start, sl["chassis_pos"].start + 1
    mujoco.mj_step(m, d, round(cfg.presettle_s / m.opt.timestep))
    sens = np.zeros((n_rows, m.nsensordata))
    cmd = np.zeros((n_rows, 2))
    duty_log = np.zeros((n_rows, 2))
    ctl = LegController(m, cfg.pid, cfg.scene.battery_v)
    sd = d.sensordata  # a view that stays valid; one copy per row keeps the loop cheap
    phase_r = phase_l = 0.0
    vel_r = vel_l = 0.0
    w0 = 2 * math.pi * cfg.stride_hz
    shell_body = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, "shell")
    for r in range(n_rows):
        if r == n_settle:
            d.xfrc_applied[shell_body, 2] = -cfg.shell_push_n
        if r >= n_settle:
            # heading hold: steer back to the channel axis by speeding one side up (|u| <= steer_max)
            w, x, y, z = sd[iq], sd[iq + 1], sd[iq + 2], sd[iq + 3]
            yaw = math.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))
            u = cfg.steer_gain * (-cfg.lateral_gain * sd[iy] - yaw)
            u = min(cfg.steer_max, max(-cfg.steer_max, u))
            vel_r, vel_l = w0 * (1 + u), w0 * (1 - u)
            phase_r += vel_r * dt_row
            phase_l += vel_l * dt_row
        duty_log[r] = ctl.update(d, (phase_r, phase_l), (vel_r, vel_l), dt_row)
        mujoco.mj_step(m, d, substeps)
        sens[r] = sd
        cmd[r] = phase_r, phase_l
    warnings = [f"{mujoco.mjtWarning(i).name}: {int(w.number)}" for i, w in enumerate(d.warning) if int(w.number)]
    t = dt_row * np.arange(1, n_rows + 1)
    col = lambda k: sens[:, sl[k]]  # noqa: E731
    qv = np.column_stack([col("right_crank_pos"), col("left_crank_pos"), col("right_crank_vel"),
                          col("left_crank_vel")])
    quat = col("chassis_quat")
    site_pos = col("shell_site_pos")
    site_mat = np.stack([col("shell_site_x"), col("shell_site_y"), col("shell_site_z")], axis=2).reshape(-1, 9)
    # environment wrench on the shell = -(force of the chassis on the shell), site frame; moments in mN·m
    w_ext = np.concatenate([-sens[:, sl["shell_force"]], -1e3 * sens[:, sl["shell_torque"]]], axis=1)
    bemf = MOTOR_KT * cfg.scene.gear_ratio * qv[:, 2:4]
    duty = duty_log
    raw = np.zeros((n_rows, 24))
    raw[:, 0] = np.rint(t * 1e6)
    raw[:, 1] = qv[:, 0] / RAD_PER_COUNT
    raw[:, 2] = (qv[:, 1] + math.pi) / RAD_PER_COUNT
    raw[:, 3] = cmd[:, 0] / RAD_PER_COUNT
    raw[:, 4] = (cmd[:, 1] + math.pi) / RAD_PER_COUNT
    raw[:, 5:7] = duty * DUTY_FULL_SCALE
    raw[:, 7:10] = sens[:, sl["gyro"]] / GYRO_RAD_S_PER_COUNT
    raw[:, 10:13] = sens[:, sl["accel"]] / ACCEL_M_S2_PER_COUNT
    raw[:, 13:15] = bemf / BEMF_V_PER_COUNT
    raw[:, 15] = cfg.scene.battery_v / VBATT_V_PER_COUNT
    s0, g = sensor_gain()
    rng = numpy_rng(cfg.seed, 7)
    counts = s0 + w_ext @ g.T + rng.normal(0, cfg.sensor_noise_counts, (n_rows, 8))
    hold = max(1, cfg.hold_samples)
    raw[:, 16:24] = counts[(np.arange(n_rows) // hold) * hold]
    raw = np.rint(raw).astype(np.int64)
    contact_w, n_con = _contact_truth(col("shell_contact"), site_pos, site_mat)
    pos = sens[:, sl["chassis_pos"]]
    defl = np.zeros((n_rows, 2))
    for bname, _, y0 in beams:
        dy = np.abs(sens[:, _sensor(m, f"{bname}_tip_pos")][:, 1] - y0)
        k = 0 if y0 > 0 else 1
        defl[:, k] = np.maximum(defl[:, k], dy)
    truth = np.column_stack([t, contact_w, n_con, pos, defl])
    mv = slice(n_settle, None)
    speed = float((pos[-1, 0] - pos[n_settle, 0]) / max(1e-9, t[-1] - t[n_settle]))
    header = LogHeader(date="simulation (MuJoCo)", stride_frequency_hz=(cfg.stride_hz, cfg.stride_hz), phase=32768,
                       motor_gains=[0] * 10)
    meta = {"gap_cm": cfg.scene.gap_cm, "shell": cfg.scene.shell, "beam_stiffness_n_m": cfg.scene.beam_stiffness,
            "beam_length_m": cfg.scene.beam_length, "speed_m_s": speed,
            "deflection_nominal_cm": (10 - cfg.scene.gap_cm) / 2,
            "max_deflection_left_m": float(defl[mv, 0].max()), "max_deflection_right_m": float(defl[mv, 1].max()),
            "contact_fraction": float(np.mean(n_con[mv] > 0)),
            "mean_contact_fx_n": float(contact_w[mv, 0].mean()), "mean_contact_fz_n": float(contact_w[mv, 2].mean()),
            **_diagnostics(cfg, t, qv, duty, col("shell_contact"), site_pos, mv),
            "max_abs_yaw_deg": float(np.degrees(np.max(np.abs([_yaw(q) for q in quat[mv]])))),
            "final_y_m": float(pos[-1, 1]), "settle_rows": n_settle, "warnings": warnings}
    if "rolling_stride_m" in meta and meta["crank_turns_per_s"] > 0:
        meta["leg_slip"] = 1 - speed / (meta["crank_turns_per_s"] * meta["rolling_stride_m"])
    return SimResult(raw=raw, truth=truth, header=header, calibration=sim_calibration(g), meta=meta,
                     warnings=warnings)


def _contact_truth(c: np.ndarray, site_pos: np.ndarray, site_mat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Net contact wrench on the shell in the sensor-site frame ([N, 6], N and N·m) and contact counts, from the
    ``shell_contact`` sensor rows [found, force(3), torque(3), pos(3)] (world frame, force exerted by the shell)."""
    found, f, tq, p = c[:, 0], -c[:, 1:4], -c[:, 4:7], c[:, 7:10]
    m_site = np.cross(p - site_pos, f) + tq
    rot = site_mat.reshape(-1, 3, 3)
    f_s = np.einsum("nji,nj->ni", rot, f)
    m_s = np.einsum("nji,nj->ni", rot, m_site)
    out = np.concatenate([f_s, m_s], axis=1)
    out[found == 0] = 0.0
    return out, found


def _diagnostics(cfg: SimConfig, t: np.ndarray, qv: np.ndarray, duty: np.ndarray, contact: np.ndarray,
                 site_pos: np.ndarray, mv: slice) -> dict[str, float]:
    """Per-run mechanism numbers: stride length and leg slip, motor duty and saturation, where the beams touch the
    shell (force-weighted height above the shell's base rim; the rim is the shell's widest section)."""
    turns = float(np.mean(qv[mv.start:, 0:2][-1] - qv[mv.start, 0:2])) / (2 * math.pi)
    dur = float(t[-1] - t[mv.start])
    out = {"crank_turns_per_s": turns / max(dur, 1e-9),
           "mean_abs_duty": float(np.mean(np.abs(duty[mv]))),
           "duty_saturated_fraction": float(np.mean(np.abs(duty[mv]) >= 0.999 * DUTY_LIMIT))}
    if cfg.scene.leg_shape == "wheel":
        out["rolling_stride_m"] = 2 * math.pi * (cfg.scene.leg_radius + 0.0015)
    c = contact[mv]
    f = np.linalg.norm(c[:, 1:4], axis=1) * (c[:, 0] > 0)
    h = c[:, 9] - site_pos[mv][:, 2]
    if f.sum() > 0:
        out["contact_height_above_rim_m"] = float(np.sum(f * h) / f.sum())
        out["contact_force_within_3mm_of_rim"] = float(np.sum(f * (h < 0.003)) / f.sum())
    return out


def _yaw(q: np.ndarray) -> float:
    w, x, y, z = q
    return math.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))
