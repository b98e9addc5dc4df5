"""``quartet robot simulate``: one MuJoCo run through a beam channel, written as a lab-format telemetry log.

Outputs (in the run folder): ``sim_gap<g>_<shell>.txt`` (24-column log), ``.calib.json`` (the simulated sensor's
calibration, use it as ``analyze --calib``), ``.truth.csv`` (contact ground truth), ``.meta.json`` (scene, mean
speed, which ``analyze`` reads for the trial's forward speed), ``scene.xml`` (the compiled scene's MJCF) and a plot
of the ground-truth drag and lift.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from quartet.core.config import parse_cli
from quartet.core.io import atomic_write_json, atomic_write_text
from quartet.core.progress import get_logger
from quartet.core.runs import RunDir
from quartet.robot.calibration import save_calibration
from quartet.robot.scene import SceneConfig, build_xml
from quartet.robot.sim import TRUTH_COLUMNS, SimConfig, SimResult, run_simulation
from quartet.robot.telemetry import write_log
from quartet.robot.trials import sidecar_path

log = get_logger("robot.simulate")


@dataclass
class SimulateConfig:
    """Simulate the robot running through a channel of compliant beams and write telemetry + ground truth."""

    gap: float = 8.0
    """channel gap (cm); shortcut for --sim.scene.gap-cm"""
    shell: str = "ellipsoid"
    """ellipsoid, box or flat; shortcut for --sim.scene.shell"""
    sim: SimConfig = field(default_factory=SimConfig)
    out: Path | None = None
    """output folder (default runs/<timestamp>-robot-simulate)"""
    plot: bool = True


def write_run(res: SimResult, folder: Path, stem: str, scene: SceneConfig, plot: bool = True) -> dict[str, Path]:
    """Write the log and its sidecars into ``folder``; returns the paths by kind."""
    folder.mkdir(parents=True, exist_ok=True)
    log_path = write_log(folder / f"{stem}.txt", res.raw, res.header)
    calib = save_calibration(res.calibration, folder / f"{stem}.calib.json")[0]
    truth = folder / f"{stem}.truth.csv"
    body = "\n".join(",".join(f"{v:.6g}" for v in row) for row in res.truth)
    atomic_write_text(truth, ",".join(TRUTH_COLUMNS) + "\n" + body + "\n")
    meta = sidecar_path(log_path)
    atomic_write_json(meta, res.meta)
    atomic_write_text(folder / f"{stem}.scene.xml", build_xml(scene))
    out = {"log": log_path, "calib": calib, "truth": truth, "meta": meta}
    if plot:
        from quartet.robot.analysis import lowpass
        from quartet.robot.plots import time_series

        t = res.truth[:, 0]
        lp = lowpass(res.truth[:, [1, 3]], 1000.0, 10.0, 4, "zerophase")
        out["plot"] = time_series(t, {"drag Fx": lp[:, 0], "lift Fz": lp[:, 1]}, folder / f"{stem}_contact.png",
                                  ylabel="N", title=f"shell contact wrench (ground truth, 10-Hz zero-phase), gap "
                                                    f"{scene.gap_cm:g} cm, {scene.shell} shell")
    return out


def main(argv: list[str] | None = None) -> int:
    cfg = parse_cli(SimulateConfig, argv, prog="quartet robot simulate")
    cfg.sim.scene.gap_cm = cfg.gap
    cfg.sim.scene.shell = cfg.shell  # type: ignore[assignment]
    run = RunDir.create("", root=cfg.out, config=cfg, exist_ok=True) if cfg.out else \
        RunDir.create("robot-simulate", config=cfg)
    log.info("simulating %.1f s at gap %.1f cm, %s shell, beams %.2f N/m ...", cfg.sim.duration_s, cfg.gap, cfg.shell,
             cfg.sim.scene.beam_stiffness)
    t0 = time.perf_counter()
    res = run_simulation(cfg.sim)
    wall = time.perf_counter() - t0
    stem = f"sim_gap{cfg.gap:g}_{cfg.shell}"
    paths = write_run(res, run.path, stem, cfg.sim.scene, plot=cfg.plot)
    sim_s = cfg.sim.duration_s + cfg.sim.settle_s
    res.meta["wall_s"], res.meta["real_time_factor"] = wall, sim_s / wall
    atomic_write_json(paths["meta"], res.meta)
    run.write_result(res.meta)
    mv = slice(res.meta["settle_rows"], None)
    print(f"simulated {sim_s:.1f} s in {wall:.1f} s ({sim_s / wall:.1f}x real time); MuJoCo warnings: "
          f"{res.warnings or 'none'}")
    print(f"mean speed {100 * res.meta['speed_m_s']:.2f} cm/s; contact {100 * res.meta['contact_fraction']:.0f}% of "
          f"the time; mean drag {np.mean(res.truth[mv, 1]):.4f} N, mean lift {np.mean(res.truth[mv, 3]):.4f} N "
          f"(ground truth, shell frame)")
    for k, p in paths.items():
        print(f"{k:>6}: {p}")
    print(f"analyze it with: quartet robot analyze {paths['log']} --calib {paths['calib']}")
    return 0
