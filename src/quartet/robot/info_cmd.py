"""``quartet robot info``: the real logs with their size, quirks, trial condition, forward speed and its source,
and the calibration matrices available (flagged as approximations)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from quartet.core.config import parse_cli
from quartet.core.paths import shared_data
from quartet.core.report import markdown_table
from quartet.robot.calibration import load_calibration
from quartet.robot.telemetry import read_log
from quartet.robot.trials import trial_info


@dataclass
class InfoConfig:
    """Describe telemetry logs (default: the shared real logs)."""

    folder: Path | None = None


def main(argv: list[str] | None = None) -> int:
    cfg = parse_cli(InfoConfig, argv, prog="quartet robot info")
    folder = cfg.folder or shared_data("velociroach")
    rows = []
    for p in sorted(folder.glob("*.txt")):
        tel = read_log(p)
        info = trial_info(tel)
        rows.append({"log": p.name, "samples": tel.raw.shape[0], "columns": tel.raw.shape[1],
                     "duration s": round(float(tel.t[-1] - tel.t[0]), 2), "stride Hz": tel.stride_frequency_hz,
                     "condition": info.condition, "speed cm/s": round(100 * info.speed_m_s, 3),
                     "speed source": info.speed_source})
        print(f"{p.name}: {tel.quirks.summary()}")
    print()
    print(markdown_table(rows))
    for m in sorted(folder.glob("*.mat")):
        cal = load_calibration(m)
        print(f"calibration {m.name}: 24x6 -> {cal.label}")
    return 0
