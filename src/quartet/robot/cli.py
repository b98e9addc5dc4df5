"""CLI verbs of ``quartet robot`` (targets are imported only when a verb runs)."""

from __future__ import annotations

COMMANDS: dict[str, tuple[str, str]] = {
    "analyze": ("quartet.robot.analyze_cmd:main", "per-stride SR, drag energy, lift/drag from real or simulated logs"),
    "calibrate": ("quartet.robot.calibrate_cmd:main", "fit the shell's cubic calibration from sensor + reference data"),
    "simulate": ("quartet.robot.simulate_cmd:main", "MuJoCo run of the robot through a beam channel -> telemetry log"),
    "sweep": ("quartet.robot.sweep:main", "gaps x shell shapes x beam stiffness in parallel, paper figures"),
    "info": ("quartet.robot.info_cmd:main", "list the real logs with their quirks, speeds and calibrations"),
}
