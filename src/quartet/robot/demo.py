"""Robot demo (<= 3 min on 2 cores, ~30 s typical): analyse the lab's real logs (per-stride specific resistance and
drag energy) and one short MuJoCo run through beams, analysed by the same code, with plots."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from quartet.core.report import Section, markdown_table


def run_demo(ctx: Any) -> Section:
    from quartet.core.paths import shared_data
    from quartet.robot.analysis import AnalysisOptions, analyze_log, lowpass, summarize
    from quartet.robot.analyze_cmd import AnalyzeConfig, analyze_paths, write_outputs
    from quartet.robot.plots import sensor_vs_truth
    from quartet.robot.scene import SceneConfig
    from quartet.robot.sim import SimConfig, run_simulation
    from quartet.robot.simulate_cmd import write_run
    from quartet.robot.telemetry import read_log

    out = ctx.out_dir
    real_dir = shared_data("velociroach")
    calib = real_dir / "N_matrix_trial9.mat"
    t0 = time.perf_counter()
    res = analyze_paths(sorted(real_dir.glob("*.txt")), AnalyzeConfig(calib=calib, effects=True))
    files = write_outputs(res, out / "real", plots=True)
    t_real = time.perf_counter() - t0
    trials = {t["log"]: t for t in res["trials"]}
    t8 = trials["2016.10.08_19.11.34_trial_imudata.txt"]
    t4 = trials["2016.10.08_20.17.55_trial_imudata.txt"]
    per_stride = [{k: r[k] for k in ("stride", "sr", "drag_energy_mj", "mean_drag_n", "min_lift_n")}
                  for r in res["strides"] if r["log"] == t8["log"]]

    t1 = time.perf_counter()
    dur = 4.0 if ctx.quick else 10.0
    scene = SceneConfig(gap_cm=6.0, beam_start_x=0.10)
    sim = run_simulation(SimConfig(scene=scene, duration_s=dur, seed=ctx.seed))
    t_sim = time.perf_counter() - t1
    paths = write_run(sim, out / "sim", "sim_gap6_ellipsoid", scene, plot=False)
    tel = read_log(paths["log"])
    st = analyze_log(tel, AnalysisOptions(speed_m_s=sim.meta["speed_m_s"], calibration=sim.calibration))
    s_sum = summarize(st)
    t = st.signals["t"]
    n = len(t)
    lp = lambda x: lowpass(x, 1000.0, 10.0, 4, "zerophase")  # noqa: E731
    plot = sensor_vs_truth(t, {"drag Fx (N)": st.signals["fx_n"], "lift Fz (N)": st.signals["fz_n"]},
                           {"drag Fx (N)": (sim.truth[:n, 1], lp(sim.truth[:n, 1])),
                            "lift Fz (N)": (sim.truth[:n, 3], lp(sim.truth[:n, 3]))},
                           out / "sim" / "sim_forces.png",
                           title=f"simulated run, gap 6 cm, half-ellipsoid shell, {scene.beam_stiffness:g} N/m beams")
    rtf = (dur + 0.3) / t_sim
    eff8 = t8["pipeline_effects"]
    md = [
        "**Real logs** (Biomimetic Millisystems Lab, ICRA 2019 trials; forces with `N_matrix_trial9.mat`, an "
        "APPROXIMATION: an earlier calibration of the same sensor, the trials' own `C.mat` is not available).",
        "",
        markdown_table([{"log": t["log"][:36], "condition": t["condition"], "v cm/s": round(t["speed_cm_s"], 3),
                         "strides": t["n_strides"], "SR": f"{t['sr_mean']:.2f} ± {t['sr_sem']:.2f}",
                         "drag energy mJ/stride": (f"{t['drag_energy_mj_mean']:.2f} ± {t['drag_energy_mj_sem']:.2f}"
                                                   if "drag_energy_mj_mean" in t else "n/a (no shell)")}
                        for t in res["trials"]]),
        "",
        "Speeds: 8 cm measured (lab notebook, 5.842 cm/s); 4 cm is an ASSUMPTION (5.5 cm/s); the 2015 logs are "
        "estimated from stride frequency x 6 cm (ASSUMPTION).",
        "",
        f"Per-stride, gap 8 cm ({len(per_stride)} strides):",
        "",
        markdown_table(per_stride),
        "",
        f"Deviation from the lab pipeline, measured on the 8-cm log: the lab's causal 4th-order 10-Hz Butterworth "
        f"delays the per-stride drag peak by {eff8['causal_peak_drag_lag_ms_median']:.0f} ms (median) and changes "
        f"per-stride drag energy by {eff8['causal_drag_energy_rel_diff_pct_median']:.1f}% (median |Δ|) versus the "
        f"zero-phase filter used here; despiking {t8['battery_spikes']} isolated "
        f"battery reading(s) changes mean SR by {eff8['despike_sr_change_pct']:.4f}%.",
        "",
        f"**Simulation** (MuJoCo, {dur + 0.3:.1f} s at 0.5 ms, {rtf:.1f}x real time on this machine): mean speed "
        f"{100 * sim.meta['speed_m_s']:.2f} cm/s, shell in contact {100 * sim.meta['contact_fraction']:.0f}% of the "
        f"time; analysed from its own lab-format log: SR {s_sum['sr_mean']:.2f} ± {s_sum['sr_sem']:.2f}, drag energy "
        f"{s_sum.get('drag_energy_mj_mean', float('nan')):.2f} mJ/stride, mean lift "
        f"{s_sum.get('mean_lift_n_mean', float('nan')):.3f} N (positive: upright beams pushed out by the shell's "
        "rim lean away and push the body up; see docs/robot.md).",
    ]
    imgs = [p for p in files if p.suffix == ".png"] + [plot]
    return Section(title="robot: tactile-shell millirobot in beams", markdown="\n".join(md), images=imgs, metrics={
        "sr_gap8": t8["sr_mean"], "sr_gap4": t4["sr_mean"],
        "drag_energy_mj_gap8_approx": t8.get("drag_energy_mj_mean"),
        "drag_energy_mj_gap4_approx": t4.get("drag_energy_mj_mean"),
        "causal_filter_peak_lag_ms": eff8["causal_peak_drag_lag_ms_median"],
        "sim_real_time_factor": rtf, "sim_speed_cm_s": 100 * sim.meta["speed_m_s"],
        "sim_drag_energy_mj": s_sum.get("drag_energy_mj_mean"), "sim_mean_lift_n": s_sum.get("mean_lift_n_mean"),
        "real_analysis_s": t_real, "sim_s": t_sim, "sim_fx_corr_truth_10hz": float(np.corrcoef(st.signals["fx_n"],
                                                                       lp(sim.truth[:n, 1]))[0, 1]),
    })
