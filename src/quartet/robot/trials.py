"""What is known about each real trial that the log itself does not hold: beam gap and forward speed.

Forward speed was measured by hand per trial in the lab (Koc et al., ICRA 2019; the lab's notebooks in
bsuper-archive/veloplot). Every value carries its source so reports can label assumptions as such:

| log (date stamp) | gap | speed | source |
|---|---|---|---|
| 2016.10.08_19.11.34 | 8 cm | 5.842 cm/s | lab notebook (measured) |
| 2016.10.08_20.17.55 | 4 cm | 5.5 cm/s | ASSUMPTION: no measured 4-cm speed found; middle of 5-6 cm/s |
| 2015_beams_..._13Hz_... | beams, 10 cm spacing | none | estimated from stride frequency x 6 cm (ASSUMPTION) |
| 2015.02.28_behavior4_2Hz | no beams | none | estimated from stride frequency x 6 cm (ASSUMPTION) |

A speed given on the command line overrides the table; a simulated log carries its measured speed in its
``.meta.json`` sidecar.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from quartet.robot.telemetry import Telemetry

NOMINAL_STRIDE_LENGTH_M = 0.06  # ~6 cm per stride at 1 Hz (spec §4); used only to estimate unknown speeds


@dataclass(frozen=True)
class TrialInfo:
    condition: str  # e.g. "gap 8 cm"
    gap_cm: float | None
    speed_m_s: float | None
    speed_source: str  # "measured (lab notebook)", "ASSUMPTION ...", "simulation ground truth", "command line"


KNOWN_TRIALS: dict[str, TrialInfo] = {
    "2016.10.08_19.11.34": TrialInfo("gap 8 cm", 8.0, 0.05842, "measured (lab notebook)"),
    "2016.10.08_20.17.55": TrialInfo("gap 4 cm", 4.0, 0.055,
                                     "ASSUMPTION: no measured speed for the 4-cm trials; 5.5 cm/s (range 5-6)"),
    "2015_beams_s10cm": TrialInfo("2015 grass-like beams, 13 Hz", None, None, ""),
    "2015.02.28_behavior4": TrialInfo("2015 no beams, 2 Hz", None, None, ""),
}


def sidecar_path(log_path: Path) -> Path:
    return log_path.with_name(log_path.stem + ".meta.json")


def trial_info(tel: Telemetry, speed_m_s: float | None = None) -> TrialInfo:
    """Condition and speed of a trial: command line > simulation sidecar > known table > estimate."""
    base: TrialInfo | None = None
    if tel.path is not None:
        side = sidecar_path(tel.path)
        if side.is_file():
            meta = json.loads(side.read_text(encoding="utf-8"))
            gap = meta.get("gap_cm")
            base = TrialInfo(f"sim gap {gap:g} cm" if gap is not None else "sim", gap, meta.get("speed_m_s"),
                             "simulation ground truth (mean forward speed of the chassis)")
        else:
            base = next((v for k, v in KNOWN_TRIALS.items() if tel.path.name.startswith(k)), None)
    if base is None:
        base = TrialInfo(tel.name, None, None, "")
    if speed_m_s is not None:
        return TrialInfo(base.condition, base.gap_cm, speed_m_s, "command line")
    if base.speed_m_s is not None:
        return base
    f = tel.stride_frequency_hz or 1.0
    return TrialInfo(base.condition, base.gap_cm, f * NOMINAL_STRIDE_LENGTH_M,
                     f"ASSUMPTION: estimated as stride frequency {f:g} Hz x {100 * NOMINAL_STRIDE_LENGTH_M:g} cm")
