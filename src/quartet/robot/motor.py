"""Leg motor control of the simulated VelociRoACH: the lab's PID on crank position, output as a PWM duty cycle,
driving a geared DC motor (Koc et al., ICRA 2019; motor constants from the spec, gains identified on the lab's
logs).

The firmware computes a duty from the crank-angle error, clips it at ±3800/4096 and applies duty x V_bat to the
winding; the motor's torque at the crank is N·K_t·(u − N·K_t·ω)/R (MuJoCo ``general`` actuator with an affine
back-EMF bias, set up in ``scene.py``). So the leg speed, the duty and the electrical power respond to load as on
the robot: a heavier load needs a larger position error, the duty saturates and the crank falls behind its ramp.

Gains (duty per rad, per rad/s, per rad·s) were identified by least squares of the logged duty on the logged
position error e, its rate ė and its integral ∫e in both 2016 logs, both sides, unsaturated samples
(R² 0.91-0.98): Kp = 2.99-3.06, Kd = 0.028-0.034, Ki = 0.80-1.17. The header's gains (Kp 5000, Ki 400, Kd 200)
are in firmware units.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from quartet.robot.scene import DUTY_LIMIT


@dataclass
class PIDGains:
    """Crank-position PID in duty-cycle units (fraction of full scale)."""

    kp: float = 3.0
    """duty per rad of position error"""
    kd: float = 0.030
    """duty per rad/s of velocity error"""
    ki: float = 1.0
    """duty per rad·s of integrated error"""
    i_max: float = 0.5
    """anti-windup: |Ki ∫e| is held at or below this duty"""


class LegController:
    """PID of both crank motors of a compiled scene (actuators ``right_motor``, ``left_motor`` on the front hips)."""

    def __init__(self, model, gains: PIDGains, battery_v: float) -> None:
        import mujoco

        self.gains, self.battery_v = gains, battery_v
        self.act = [mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_ACTUATOR, n) for n in ("right_motor", "left_motor")]
        jnt = [int(model.actuator_trnid[a, 0]) for a in self.act]
        self.qadr = [int(model.jnt_qposadr[j]) for j in jnt]
        self.vadr = [int(model.jnt_dofadr[j]) for j in jnt]
        self.integral = np.zeros(2)
        self.duty = np.zeros(2)

    def update(self, data, target: tuple[float, float], target_vel: tuple[float, float], dt: float) -> np.ndarray:
        """Set the motor voltages for the next control period from crank targets (rad) and their rates (rad/s);
        returns the duty cycles [right, left] (fractions, clipped at ±3800/4096)."""
        g = self.gains
        for i in range(2):
            e = target[i] - data.qpos[self.qadr[i]]
            ev = target_vel[i] - data.qvel[self.vadr[i]]
            self.integral[i] += e * dt
            if g.ki > 0:
                lim = g.i_max / g.ki
                self.integral[i] = min(lim, max(-lim, self.integral[i]))
            duty = g.kp * e + g.kd * ev + g.ki * self.integral[i]
            duty = min(DUTY_LIMIT, max(-DUTY_LIMIT, duty))
            self.duty[i] = duty
            data.ctrl[self.act[i]] = duty * self.battery_v
        return self.duty
