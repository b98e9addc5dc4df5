"""Analysis throughput: parse + analyse a 60-s, 1-kHz log (target < 1 s), made by tiling the real 8-cm log.

Arms, interleaved (core.bench): ``parse`` (read_log only, baseline), ``parse+analyze`` (SR only) and
``parse+analyze+forces`` (with the shared N_matrix_trial9 calibration, zero-phase filtering, per-stride drag
energy). Throughput is log samples per second.

    python benchmarks/robot/bench_analysis.py [--seconds 60] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from quartet.core.bench import interleaved
from quartet.core.paths import shared_data
from quartet.robot.analysis import AnalysisOptions, analyze_log
from quartet.robot.calibration import load_calibration
from quartet.robot.telemetry import format_log, read_log


def tiled_log(seconds: float, folder: Path) -> Path:
    """A continuous ``seconds``-long log: the real 8-cm log repeated with time and leg counts made continuous."""
    src = read_log(shared_data("velociroach", "2016.10.08_19.11.34_trial_imudata.txt"))
    raw = src.raw
    reps = int(np.ceil(seconds * 1000 / raw.shape[0]))
    parts = []
    t_off, leg_off = 0, np.zeros(4, dtype=np.int64)
    for _ in range(reps):
        r = raw.copy()
        r[:, 0] += t_off - raw[0, 0] + 1001
        r[:, 1:5] += leg_off
        parts.append(r)
        t_off = int(r[-1, 0])
        leg_off = r[-1, 1:5] - raw[0, 1:5] + 65536 - (r[-1, 1:5] - raw[0, 1:5]) % 65536
    out = np.concatenate(parts)[: int(seconds * 1000)]
    p = folder / "tiled_60s.txt"
    p.write_text(format_log(out, src.header))
    return p


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    cal = load_calibration(shared_data("velociroach", "N_matrix_trial9.mat"))
    with tempfile.TemporaryDirectory() as tmp:
        path = tiled_log(args.seconds, Path(tmp))
        n = read_log(path).raw.shape[0]

        def analyze(calibration=None):
            tel = read_log(path)
            return analyze_log(tel, AnalysisOptions(speed_m_s=0.05842, calibration=calibration))

        strides = len(analyze(cal))
        res = interleaved({"parse": lambda: read_log(path), "parse+analyze": analyze,
                           "parse+analyze+forces": lambda: analyze(cal)}, repeats=args.repeats, warmup=1,
                          work={k: n for k in ("parse", "parse+analyze", "parse+analyze+forces")})
    print(res.table(baseline="parse", unit="samples"))
    t = res.median("parse+analyze+forces")
    print(f"\n{n} samples ({n / 1000:.0f} s at 1 kHz, {strides} strides): full analysis {t:.3f} s "
          f"(target < 1 s: {'met' if t < 1 else 'MISSED'})")
    print(json.dumps({k: {"median_s": res.median(k), "samples_per_s": res.throughput(k)} for k in res.times}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
