"""MuJoCo scene: the VelociRoACH-like robot of ``assets/velociroach.xml`` with a chosen shell, in a channel of
compliant beams (Koc et al., ICRA 2019 §IV; beam field after Li et al. 2015).

Beams are capsules standing on the floor, each a chain of ``beam_segments`` rigid segments joined by pairs of
hinges (lateral and fore-aft bending). The hinge stiffness is chosen so the static tip stiffness equals the
cantilever value k_tip = 3EI/L³: with n equal joints at heights x_j, a tip force F bends the beam by
δ = F·Σ(L − x_j)²/k_j, so k_j = k_tip·Σ(L − x_j)² (= 3EI/L for one joint), scaled up so that the beam's own weight
(an inverted pendulum) does not soften it (small-angle analysis, :func:`joint_stiffness`; the test measures it).
One joint (default) matches the tip stiffness but is stiffer than a real
cantilever when pushed below the tip (k_θ/h² instead of 3EI/h³); more segments approach the continuum beam at
proportionally more DOFs (two hinges per segment).

Contact groups: the shell touches only beams (bit 2); whegs and chassis touch only the floor (bit 1). Whegs and
chassis therefore pass through beams: all beam forces go through the shell and its sensor, which is what the
lab's shell measures when the beams rest on the shell.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from quartet.core.errors import QuartetError

ASSET = Path(__file__).with_name("assets") / "velociroach.xml"
SHELLS = ("ellipsoid", "box", "flat")
SHELL_BASE_Z = 0.0  # shell geometry starts at the shell body's origin (3 mm above the chassis top)
MOTOR_R_OHM = 3.3
"""winding resistance of the lab's motor (spec §2)"""
MOTOR_KT = 1.41e-3
"""torque constant (N·m/A) = back-EMF constant (V·s/rad) of the lab's motor (spec §2)"""
DUTY_LIMIT = 3800 / 4096
"""firmware duty saturation"""


@dataclass
class SceneConfig:
    """Geometry and material of the shell and the beam channel (SI units unless named otherwise)."""

    gap_cm: float = 8.0
    """channel gap between the two beam rows (shell width is 10 cm: deflection per side = (10 - gap)/2 cm)"""
    shell: Literal["ellipsoid", "box", "flat"] = "ellipsoid"
    shell_length: float = 0.14
    shell_width: float = 0.10
    shell_height: float = 0.03
    shell_friction: float = 0.3
    """shell-beam sliding friction"""
    floor_friction: float = 0.8
    beam_stiffness: float = 0.3
    """tip stiffness 3EI/L^3 of one beam (N/m)"""
    beam_length: float = 0.12
    beam_radius: float = 0.003
    beam_mass: float = 0.002
    beam_spacing: float = 0.10
    beams_per_side: int = 5
    beam_start_x: float = 0.15
    """x of the first beam; the shell nose starts at x = shell_length/2"""
    beam_segments: int = 1
    beam_damping_ratio: float = 0.3
    beam_contact_timeconst: float = 0.02
    """solref time constant of beam-shell contacts (s); 0.02 s instead of the 0.005 s used for the feet cuts
    contact chatter of the vibrating beams against the shell rim ~3x without changing mean forces (measured)"""
    leg_shape: Literal["wheel", "c_leg"] = "wheel"
    """"wheel": 200° arcs centred on the hip (roll without vaulting); "c_leg": half-circle arcs pivoted at one
    end like RHex/VelociRoACH C-legs (the hip rises and falls by up to 2·leg_radius each step, the body vaults over
    the leg tip and the feet slip when unloaded)"""
    leg_radius: float = 0.0078
    """arc radius of a leg (m). Default: rolling radius 7.8 + 1.5 mm (foot spheres) = 9.3 mm, so one crank turn
    rolls 5.84 cm, the stride length measured on the lab's 8-cm log (5.842 cm/s at 1 Hz). The real leg geometry is
    not in the data: this calibrates the wheel-like leg to the real robot's distance per stride (real slip
    included); 11 mm (12.5 mm rolling, 7.85 cm per turn) was the earlier, uncalibrated choice"""
    friction_cone: Literal["pyramidal", "elliptic"] = "pyramidal"
    impratio: float = 1.0
    """MuJoCo's frictional-to-normal constraint impedance ratio: 1 = soft friction that lets a loaded foot creep at
    a speed proportional to its traction force; > 1 (e.g. 10, with elliptic cones) = harder, Coulomb-like friction
    whose sliding starts only at the cone limit μ·N, so traction depends on the normal load"""
    gear_ratio: float = 45.0
    """motor-to-crank reduction N. Measured on the lab's 2016 logs: back-EMF vs encoder crank speed gives
    N·K_t = 0.060-0.066 V·s/rad (4 fits, correlation 0.52-0.89), i.e. N = 43-47 with K_t = 1.41 mN·m/A"""
    battery_v: float = 3.7
    """battery voltage (the 2016 logs read 3.67-3.72 V)"""
    beam_lean_deg: float = 0.0
    """rest lean of every beam toward the channel axis (0 = vertical; grass-like drooping over the path > 0)"""


def half_ellipsoid_vertices(a: float, b: float, c: float, rings: int = 7, sectors: int = 24) -> np.ndarray:
    """Vertices of the upper half of an ellipsoid with semi-axes a, b, c (base ring at z = 0, apex at z = c)."""
    pts = []
    for i in range(rings):
        el = (math.pi / 2) * i / rings
        for j in range(sectors):
            az = 2 * math.pi * j / sectors
            pts.append((a * math.cos(el) * math.cos(az), b * math.cos(el) * math.sin(az), c * math.sin(el)))
    pts.append((0.0, 0.0, c))
    return np.asarray(pts)


def _tip_compliance(k_joint: np.ndarray, cfg: SceneConfig) -> float:
    """Static tip compliance (m/N) of the hinged chain under gravity, small angles.

    In absolute segment angles φ (θ_j = φ_j − φ_{j-1}), elastic energy is ½Σk_j θ_j² and gravity lowers the energy
    by ½Σ c_i φ_i² with c_i = g·l·(m_i/2 + Σ_{k>i} m_k); a tip force F does work F·Σ l φ_i."""
    n = cfg.beam_segments
    seg_l, seg_m = cfg.beam_length / n, cfg.beam_mass / n
    d = np.eye(n) - np.eye(n, k=-1)
    c = np.array([9.81 * seg_l * (seg_m / 2 + seg_m * (n - 1 - i)) for i in range(n)])
    k_tot = d.T @ np.diag(k_joint) @ d - np.diag(c)
    lev = np.full(n, seg_l)
    return float(lev @ np.linalg.solve(k_tot, lev))


def joint_stiffness(cfg: SceneConfig) -> tuple[float, float]:
    """(hinge stiffness N·m/rad, hinge damping N·m·s/rad), equal for every joint of a beam, chosen so the static
    tip stiffness under gravity equals ``beam_stiffness`` (= 3EI/L³): the elastic value k·Σ(L − x_j)² is scaled
    by the factor (found by bisection) that cancels the beam's own weight."""
    n, L = cfg.beam_segments, cfg.beam_length
    xs = L * np.arange(n) / n
    k0 = cfg.beam_stiffness * float(np.sum((L - xs) ** 2))
    lo, hi = 1.0, 1.0
    while 1.0 / _tip_compliance(np.full(n, k0 * hi), cfg) < cfg.beam_stiffness:
        hi *= 2
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if 1.0 / _tip_compliance(np.full(n, k0 * mid), cfg) < cfg.beam_stiffness:
            lo = mid
        else:
            hi = mid
    k = k0 * hi
    inertia = cfg.beam_mass * L**2 / 3 / n
    damping = 2 * cfg.beam_damping_ratio * math.sqrt(k * inertia)
    return k, damping


def beam_positions(cfg: SceneConfig) -> list[tuple[str, float, float]]:
    """(name, x, y) of every beam base; rows at y = ±(gap/2 + radius) so the beam surfaces are gap apart."""
    y = cfg.gap_cm / 200 + cfg.beam_radius
    out = []
    for side, sy in (("left", 1.0), ("right", -1.0)):
        for i in range(cfg.beams_per_side):
            out.append((f"beam_{side}_{i}", cfg.beam_start_x + i * cfg.beam_spacing, sy * y))
    return out


def build_xml(cfg: SceneConfig) -> str:
    """The scene's MJCF text: the robot asset with the chosen shell and the beam channel added."""
    if cfg.shell not in SHELLS:
        raise QuartetError(f"shell {cfg.shell!r}: choose one of {SHELLS}")
    if cfg.gap_cm <= 0 or cfg.beam_stiffness <= 0 or cfg.beam_segments < 1 or cfg.beams_per_side < 0:
        raise QuartetError(f"scene: gap ({cfg.gap_cm} cm), beam stiffness ({cfg.beam_stiffness} N/m) and beam "
                           f"segments ({cfg.beam_segments}) must be positive")
    root = ET.parse(ASSET).getroot()
    shell = root.find(".//body[@name='shell']")
    geom = shell.find("geom[@name='shell_geom']")
    a, b, c = cfg.shell_length / 2, cfg.shell_width / 2, cfg.shell_height
    for k in ("size", "pos", "type", "mesh"):
        geom.attrib.pop(k, None)
    geom.set("friction", f"{cfg.shell_friction} 0.005 0.0001")
    if cfg.shell == "ellipsoid":
        verts = half_ellipsoid_vertices(a, b, c)
        ET.SubElement(root.find("asset"), "mesh", name="shell_half_ellipsoid",
                      vertex=" ".join(f"{v:.6f}" for v in verts.ravel()))
        geom.set("type", "mesh")
        geom.set("mesh", "shell_half_ellipsoid")
    elif cfg.shell == "box":
        geom.set("type", "box")
        geom.set("size", f"{a} {b} {c / 2}")
        geom.set("pos", f"0 0 {c / 2}")
    else:
        geom.set("type", "box")
        geom.set("size", f"{a} {b} 0.002")
        geom.set("pos", "0 0 0.002")
    if cfg.gear_ratio <= 0 or cfg.battery_v <= 0:
        raise QuartetError(f"scene: gear ratio ({cfg.gear_ratio}) and battery voltage ({cfg.battery_v} V) must be "
                           "positive")
    ktn = MOTOR_KT * cfg.gear_ratio
    for motor in root.find("actuator"):
        motor.set("gainprm", f"{ktn / MOTOR_R_OHM:.6g}")
        motor.set("biasprm", f"0 0 {-ktn * ktn / MOTOR_R_OHM:.6g}")
        u = DUTY_LIMIT * cfg.battery_v
        motor.set("ctrlrange", f"{-u:.6g} {u:.6g}")
    _set_legs(root, cfg)
    if cfg.friction_cone not in ("pyramidal", "elliptic") or cfg.impratio < 1:
        raise QuartetError(f"friction cone {cfg.friction_cone!r} / impratio {cfg.impratio}: choose pyramidal or "
                           "elliptic and impratio >= 1")
    opt = root.find("option")
    opt.set("cone", cfg.friction_cone)
    opt.set("impratio", f"{cfg.impratio:g}")
    k, damp = joint_stiffness(cfg)
    world = root.find("worldbody")
    seg_len = cfg.beam_length / cfg.beam_segments
    for name, x, y in beam_positions(cfg):
        lean = math.radians(cfg.beam_lean_deg) * (1.0 if y > 0 else -1.0)  # rotate about x toward the axis
        parent = ET.SubElement(world, "body", name=name, pos=f"{x} {y} 0", euler=f"{lean:.6f} 0 0")
        for j in range(cfg.beam_segments):
            body = parent if j == 0 else ET.SubElement(parent, "body", name=f"{name}_seg{j}", pos=f"0 0 {seg_len}")
            kj = k
            for axis, tag in (("1 0 0", "lat"), ("0 1 0", "fwd")):
                ET.SubElement(body, "joint", name=f"{name}_j{j}_{tag}", type="hinge", axis=axis, stiffness=f"{kj:.6g}",
                              damping=f"{damp:.6g}", armature="1e-7")
            ET.SubElement(body, "geom", name=f"{name}_geom{j}", type="capsule", size=f"{cfg.beam_radius}",
                          fromto=f"0 0 0 0 0 {seg_len}", mass=f"{cfg.beam_mass / cfg.beam_segments:.6g}",
                          contype="0", conaffinity="2", friction=f"{cfg.shell_friction} 0.005 0.0001",
                          solref=f"{cfg.beam_contact_timeconst} 1",
                          rgba="0.2 0.7 0.3 1")
            parent = body
        ET.SubElement(parent, "site", name=f"{name}_tip", pos=f"0 0 {seg_len}", size="0.002")
    sensors = root.find("sensor")
    # net contact wrench on the shell (MuJoCo reports it in the world frame at the force-weighted centroid, with
    # the sign of the force the shell exerts; sim.py converts it to the force on the shell about the sensor site)
    ET.SubElement(sensors, "contact", name="shell_contact", geom1="shell_geom", data="found force torque pos",
                  reduce="netforce", num="1")
    for name, _, _ in beam_positions(cfg):
        ET.SubElement(sensors, "framepos", name=f"{name}_tip_pos", objtype="site", objname=f"{name}_tip")
    # MuJoCo uses the larger friction of the two geoms in contact: set it on the floor and on every geom that
    # touches the floor (whegs, chassis) so floor_friction is the effective foot-ground friction
    fric = f"{cfg.floor_friction} 0.005 0.0001"
    world.find("geom[@name='floor']").set("friction", fric)
    root.find(".//default[@class='wheg']/geom").set("friction", fric)
    root.find(".//geom[@name='chassis_geom']").set("friction", fric)
    return ET.tostring(root, encoding="unicode")


def leg_points(cfg: SceneConfig, n: int = 9) -> np.ndarray:
    """[n, 3] sphere centres of one leg in its hip frame (x forward, z up, standing phase)."""
    r = cfg.leg_radius
    if cfg.leg_shape == "wheel":  # 200° arc centred on the hip, open upward
        phi = np.radians(np.linspace(-100, 100, n))
        return np.column_stack([r * np.sin(phi), np.zeros(n), -r * np.cos(phi)])
    if cfg.leg_shape == "c_leg":  # 180° arc from the hip (φ = 0) to the tip (φ = 180°, 2r below the hip), bulging
        phi = np.radians(np.linspace(22.5, 180, n))  # forward, so the convex side touches down first and rolls
        return np.column_stack([r * np.sin(phi), np.zeros(n), r * np.cos(phi) - r])
    raise QuartetError(f"leg shape {cfg.leg_shape!r}: choose 'wheel' or 'c_leg'")


def _set_legs(root: ET.Element, cfg: SceneConfig) -> None:
    """Place the sphere geoms of every leg on its arc and lift the chassis so the legs start above the floor."""
    if not 0.004 <= cfg.leg_radius <= 0.03:
        raise QuartetError(f"leg radius {cfg.leg_radius} m: choose 0.004-0.03 m")
    pts = leg_points(cfg)
    for body in root.iter("body"):
        if body.get("name", "").endswith("_leg"):
            geoms = [g for g in body.findall("geom") if "_wheg_" in g.get("name", "")]
            for g, p in zip(geoms, pts, strict=True):
                g.set("pos", f"{p[0]:.5f} {p[1]:.5f} {p[2]:.5f}")
    reach = float(-pts[:, 2].min()) + 0.0015
    chassis = root.find(".//body[@name='chassis']")
    chassis.set("pos", f"0 0 {max(0.0135, reach + 0.0025):.5f}")


def build_model(cfg: SceneConfig):  # -> mujoco.MjModel
    """Compile the scene (raises :class:`QuartetError` with MuJoCo's message on a bad configuration)."""
    import mujoco

    try:
        return mujoco.MjModel.from_xml_string(build_xml(cfg))
    except ValueError as e:
        raise QuartetError(f"scene did not compile: {e}") from e


def shell_contact_wrench(model, data, shell_geom: int, site: int) -> tuple[np.ndarray, int]:
    """Sum of contact forces on the shell geom (force on the shell, world frame) and their moment about the sensor
    site, both rotated into the site frame; returns ([Fx, Fy, Fz, Mx, My, Mz] in N and N·m, number of contacts)."""
    import mujoco

    f6 = np.zeros(6)
    total_f, total_m = np.zeros(3), np.zeros(3)
    n = 0
    origin = data.site_xpos[site]
    for i in range(data.ncon):
        con = data.contact[i]
        if con.geom1 != shell_geom and con.geom2 != shell_geom:
            continue
        mujoco.mj_contactForce(model, data, i, f6)
        frame = con.frame.reshape(3, 3)
        fw = frame.T @ f6[:3]  # force of geom1 on geom2, world frame
        if con.geom1 == shell_geom:
            fw = -fw
        total_f += fw
        total_m += np.cross(con.pos - origin, fw)
        n += 1
    rot = data.site_xmat[site].reshape(3, 3)
    return np.concatenate([rot.T @ total_f, rot.T @ total_m]), n
