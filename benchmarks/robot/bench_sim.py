"""Simulation real-time factor of the beam scene (target: >= 5x real time for the robot in a 10-beam channel at a
0.5-ms step on one core).

Arms, interleaved (core.bench) so machine load hits all equally:
- ``step: robot only``: mj_step of the robot with no beams (baseline);
- ``step: 10-beam channel``: mj_step of the robot walking through a 10-beam channel at gap 8 cm (in contact);
- ``simulate: 10-beam channel``: the full ``run_simulation`` (telemetry recording, contact truth, conversions).
Each call advances the same simulated time; throughput = simulated seconds per wall second = real-time factor.
The same arms are also timed in CPU seconds of this process (``time.process_time``), a proxy for one dedicated core
on a shared machine where wall time includes time spent waiting for a core.

    OMP_NUM_THREADS=1 python benchmarks/robot/bench_sim.py [--seconds 2] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import mujoco
import numpy as np

from quartet.core.bench import interleaved
from quartet.robot.motor import LegController, PIDGains
from quartet.robot.scene import SceneConfig, build_model
from quartet.robot.sim import SimConfig, run_simulation


def _stepper(scene: SceneConfig, seconds: float):
    m = build_model(scene)
    d = mujoco.MjData(m)
    mujoco.mj_step(m, d, 800)
    # start with the shell already between the first beams so the timed window is in contact
    d.qpos[0] = scene.beam_start_x
    mujoco.mj_forward(m, d)
    state = mujoco.mj_stateSize(m, mujoco.mjtState.mjSTATE_INTEGRATION)
    snap = np.zeros(state)
    mujoco.mj_getState(m, d, snap, mujoco.mjtState.mjSTATE_INTEGRATION)
    n = round(seconds / m.opt.timestep)

    def run() -> None:
        mujoco.mj_setState(m, d, snap, mujoco.mjtState.mjSTATE_INTEGRATION)
        ctl = LegController(m, PIDGains(), scene.battery_v)
        for r in range(n // 2):
            ctl.update(d, (2 * np.pi * r * 1e-3,) * 2, (2 * np.pi,) * 2, 1e-3)
            mujoco.mj_step(m, d, 2)

    return run, d


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=2.0, help="simulated seconds per timed call")
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args(argv)
    channel = SceneConfig(gap_cm=8.0, beams_per_side=5)
    free = SceneConfig(gap_cm=8.0, beams_per_side=0)
    step_free, _ = _stepper(free, args.seconds)
    step_beams, d_beams = _stepper(channel, args.seconds)
    sim_cfg = SimConfig(scene=SceneConfig(gap_cm=8.0, beams_per_side=5, beam_start_x=0.05),
                        duration_s=args.seconds - 0.3, presettle_s=0.0)
    res = interleaved({"step: robot only": step_free, "step: 10-beam channel": step_beams,
                       "simulate: 10-beam channel": lambda: run_simulation(sim_cfg)},
                      repeats=args.repeats, warmup=1,
                      work={"step: robot only": args.seconds, "step: 10-beam channel": args.seconds,
                            "simulate: 10-beam channel": args.seconds})
    print(res.table(baseline="step: robot only", unit="sim-s"))
    # CPU time of this process per call: on a shared, oversubscribed machine wall time includes time spent
    # descheduled; CPU seconds approximate what one dedicated core would take (cache contention aside)
    arms = {"step: robot only": step_free, "step: 10-beam channel": step_beams,
            "simulate: 10-beam channel": lambda: run_simulation(sim_cfg)}
    cpu: dict[str, list[float]] = {k: [] for k in arms}
    for _ in range(args.repeats):
        for k, fn in arms.items():
            c0 = time.process_time()
            fn()
            cpu[k].append(time.process_time() - c0)
    cpu_rtf = {k: args.seconds / statistics.median(v) for k, v in cpu.items()}
    print("\nreal-time factor per CPU second (one core, load-independent proxy):")
    for k, v in cpu_rtf.items():
        print(f"  {k:<28}{v:>8.2f}x")
    load = os.getloadavg()
    out = {k: {"real_time_factor": res.throughput(k), "median_s": res.median(k), "cpu_real_time_factor": cpu_rtf[k]}
           for k in res.times}
    out["load_average_1m"] = load[0]
    out["cpu_count"] = os.cpu_count()
    out["contacts_in_beam_scene"] = int(d_beams.ncon)
    target = res.throughput("simulate: 10-beam channel")
    print(f"\nreal-time factor, full simulate in a 10-beam channel: {target:.1f}x wall-clock (target >= 5x: "
          f"{'met' if target >= 5 else 'MISSED'}), {cpu_rtf['simulate: 10-beam channel']:.1f}x per CPU second; "
          f"machine load average {load[0]:.1f} on {os.cpu_count()} cores")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
