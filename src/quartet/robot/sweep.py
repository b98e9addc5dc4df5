"""``quartet robot sweep``: gaps x shell shapes x beam stiffness in simulation, in parallel, with the paper's
figures (Koc et al., ICRA 2019, Figs. 5-8 in spirit): drag and lift vs deflection, drag energy per stride,
specific resistance vs deflection, the shell-shape comparison, and simulated vs real-log trends side by side.

Each run is simulated, written as a lab-format log, and analysed by the same code path as the real logs (with the
simulated sensor's calibration), so simulated and real numbers are directly comparable. Runs are independent jobs
on a process pool (``--workers``, default all cores) or on Ray (``--backend ray``, local or ``--ray-address``);
each job writes its ``result.json`` atomically and is skipped when it exists, so an interrupted sweep resumes.
Default: 5 gaps x 3 shells x 1 stiffness, 5 s each (~15 jobs); ``--full``: 3 stiffnesses, 10 s each.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from quartet.core.config import parse_cli
from quartet.core.errors import QuartetError
from quartet.core.io import atomic_write_json, read_json
from quartet.core.progress import get_logger, progress_bar
from quartet.core.report import markdown_table
from quartet.core.runs import RunDir

log = get_logger("robot.sweep")


@dataclass
class SweepConfig:
    """Simulate every (gap, shell, beam stiffness) and plot the trends against the real logs."""

    gaps_cm: tuple[float, ...] = (4.0, 6.0, 8.0, 10.0, 14.0)
    shells: tuple[str, ...] = ("ellipsoid", "box", "flat")
    stiffness_n_m: tuple[float, ...] = (0.3,)
    """beam tip stiffnesses 3EI/L^3 (N/m)"""
    duration_s: float = 5.0
    full: bool = False
    """3 stiffnesses (0.1, 0.3, 1.0 N/m) and 10-s runs"""
    workers: int = 0
    """parallel jobs (0 = all cores)"""
    backend: Literal["process", "ray"] = "process"
    ray_address: str | None = None
    real_calib: Path | None = None
    """calibration for the real logs in the side-by-side (default: shared N_matrix_trial9.mat, an APPROXIMATION)"""
    out: Path | None = None
    seed: int = 0
    scene_overrides: dict[str, float] = field(default_factory=dict)
    """extra SceneConfig fields for every run, e.g. {beam_length: 0.2}"""


def job_list(cfg: SweepConfig) -> list[dict[str, Any]]:
    stiff = (0.1, 0.3, 1.0) if cfg.full else cfg.stiffness_n_m
    dur = 10.0 if cfg.full else cfg.duration_s
    return [{"gap_cm": g, "shell": s, "beam_stiffness": k, "duration_s": dur, "seed": cfg.seed,
             "overrides": dict(cfg.scene_overrides)} for k in stiff for s in cfg.shells for g in cfg.gaps_cm]


def job_name(j: dict[str, Any]) -> str:
    return f"gap{j['gap_cm']:g}_{j['shell']}_k{j['beam_stiffness']:g}"


def scene_for(job: dict[str, Any]) -> Any:
    """The SceneConfig of a job; overrides are checked against its fields and cast to their types."""
    from quartet.robot.scene import SceneConfig

    base = SceneConfig(gap_cm=job["gap_cm"], shell=job["shell"], beam_stiffness=job["beam_stiffness"])
    kinds = {f.name: type(getattr(base, f.name)) for f in fields(SceneConfig)}
    bad = sorted(set(job["overrides"]) - set(kinds))
    if bad:
        raise QuartetError(f"--scene-overrides: unknown key(s) {bad}; valid keys are {sorted(kinds)}")
    return replace(base, **{k: kinds[k](v) if kinds[k] in (int, float) else v for k, v in job["overrides"].items()})


def run_job(job: dict[str, Any], folder: str) -> dict[str, Any]:
    """Simulate, write, analyse one configuration; returns (and stores) its summary. Skips finished jobs."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from quartet.robot.analysis import AnalysisOptions, analyze_log, summarize
    from quartet.robot.analyze_cmd import json_safe
    from quartet.robot.sim import SimConfig, run_simulation
    from quartet.robot.simulate_cmd import write_run
    from quartet.robot.telemetry import read_log

    out = Path(folder) / job_name(job)
    done = out / "result.json"
    if done.is_file():
        return read_json(done)
    scene = scene_for(job)
    t0 = time.perf_counter()
    res = run_simulation(SimConfig(scene=scene, duration_s=job["duration_s"], seed=job["seed"]))
    wall = time.perf_counter() - t0
    paths = write_run(res, out, "sim", scene, plot=False)
    tel = read_log(paths["log"])
    try:
        st = analyze_log(tel, AnalysisOptions(speed_m_s=max(res.meta["speed_m_s"], 1e-3),
                                              calibration=res.calibration))
    except QuartetError as e:  # e.g. a run too short for one full stride: recorded, the sweep goes on
        summary = {**job, "name": job_name(job), "error": str(e)}
        atomic_write_json(done, summary)
        return summary
    mv = slice(res.meta["settle_rows"], None)
    contact = res.truth[mv, 7] > 0
    summary = {**job, "name": job_name(job), "deflection_cm": (10 - job["gap_cm"]) / 2, "wall_s": wall,
               "real_time_factor": (job["duration_s"] + 0.3) / wall, **{k: v for k, v in res.meta.items()
                                                                           if k not in ("warnings",)},
               "warnings": res.warnings, **summarize(st),
               "truth_fz_in_contact_n": float(res.truth[mv, 3][contact].mean()) if contact.any() else 0.0,
               "truth_fx_in_contact_n": float(res.truth[mv, 1][contact].mean()) if contact.any() else 0.0}
    summary = json_safe(summary)
    atomic_write_json(done, summary)
    return summary


def _run_all(jobs: list[dict], folder: Path, cfg: SweepConfig) -> list[dict]:
    workers = cfg.workers or os.cpu_count() or 1
    results: list[dict] = []
    with progress_bar(len(jobs), desc="sweep", unit="run") as bar:
        if cfg.backend == "ray":
            from quartet.core.ray_setup import init_ray

            ray = init_ray(address=cfg.ray_address, num_cpus=None if cfg.ray_address else workers)
            remote = ray.remote(num_cpus=1)(run_job)
            pending = [remote.remote(j, str(folder)) for j in jobs]
            while pending:
                ready, pending = ray.wait(pending, num_returns=1)
                results.append(ray.get(ready[0]))
                bar.update(1)
            if not cfg.ray_address:
                from quartet.core.ray_setup import shutdown_ray

                shutdown_ray()
        elif workers == 1:
            for j in jobs:
                results.append(run_job(j, str(folder)))
                bar.update(1)
        else:
            import multiprocessing as mp

            with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as ex:
                futs = [ex.submit(run_job, j, str(folder)) for j in jobs]
                for f in as_completed(futs):
                    results.append(f.result())
                    bar.update(1)
    order = {job_name(j): i for i, j in enumerate(jobs)}
    return sorted(results, key=lambda r: order[r["name"]])


def trend_verdicts(rows: list[dict], shell: str = "ellipsoid") -> dict[str, Any]:
    """The paper's three findings, checked on the sweep (per stiffness, for one shell)."""
    out: dict[str, Any] = {}
    for k in sorted({r["beam_stiffness"] for r in rows}):
        rs = sorted((r for r in rows if r["shell"] == shell and r["beam_stiffness"] == k),
                    key=lambda r: r["deflection_cm"])
        if len(rs) < 3:
            continue
        d = np.array([r["deflection_cm"] for r in rs])
        drag = np.array([r.get("mean_drag_n_mean", np.nan) for r in rs], dtype=float)
        lift_c = np.array([r["truth_fz_in_contact_n"] for r in rs])
        sr = np.array([r["sr_mean"] for r in rs], dtype=float)
        touching = d > 0
        i_min = int(np.argmin(sr))
        out[f"k={k:g}"] = {
            "negative_lift_under_contact": bool(np.all(lift_c[touching] < 0)),
            "lift_in_contact_n_by_deflection": dict(zip(d.tolist(), np.round(lift_c, 4).tolist(), strict=True)),
            "drag_grows_with_deflection": bool(np.all(np.diff(drag[d >= 0]) <= 0)),
            "mean_drag_n_by_deflection": dict(zip(d.tolist(), np.round(drag, 4).tolist(), strict=True)),
            "sr_min_at_moderate_contact": bool(0 < d[i_min] < d.max()),
            "sr_by_deflection": dict(zip(d.tolist(), np.round(sr, 3).tolist(), strict=True)),
        }
    return out


def figures(rows: list[dict], real: dict | None, plots: Path) -> list[Path]:
    from quartet.robot import plots as P

    out = []
    for k in sorted({r["beam_stiffness"] for r in rows}):
        series: dict[str, dict] = {}
        for shell in dict.fromkeys(r["shell"] for r in rows):
            rs = sorted((r for r in rows if r["shell"] == shell and r["beam_stiffness"] == k),
                        key=lambda r: r["deflection_cm"])
            x = np.array([r["deflection_cm"] for r in rs])
            g = lambda key, rs=rs: np.array([r.get(key, np.nan) for r in rs], dtype=float)  # noqa: E731
            series[shell] = {q: (x, g(f"{q}_mean"), g(f"{q}_sem")) for q in
                             ("mean_drag_n", "mean_lift_n", "drag_energy_mj", "sr", "min_lift_n")}
        tag = f"simulation, beam tip stiffness {k:g} N/m"
        out.append(P.trend_panels(series, "deflection per side (cm)", [("mean_drag_n", "mean drag Fx (N)"),
                                  ("mean_lift_n", "mean lift Fz (N)")], plots / f"drag_lift_vs_deflection_k{k:g}.png",
                                  title="drag and lift vs deflection — " + tag))
        out.append(P.trend_panels(series, "deflection per side (cm)", [("drag_energy_mj", "drag energy / stride (mJ)"),
                                  ("sr", "specific resistance")], plots / f"energy_sr_vs_deflection_k{k:g}.png",
                                  title="drag energy and SR vs deflection (shell comparison) — " + tag))
    if real:
        k0 = sorted({r["beam_stiffness"] for r in rows})[len({r["beam_stiffness"] for r in rows}) // 2]
        rs = sorted((r for r in rows if r["shell"] == "ellipsoid" and r["beam_stiffness"] == k0),
                    key=lambda r: r["deflection_cm"])
        col = lambda q, rs=rs: np.array([r.get(q, np.nan) for r in rs], dtype=float)  # noqa: E731
        sim = {q: (col("deflection_cm"), col(f"{q}_mean"), col(f"{q}_sem")) for q in ("sr", "drag_energy_mj",
                                                                                      "mean_lift_n")}
        rt = sorted(real["trials"], key=lambda t: (10 - t["gap_cm"]) / 2)
        rx = np.array([(10 - t["gap_cm"]) / 2 for t in rt])
        realser = {q: (rx, np.array([t.get(f"{q}_mean", np.nan) for t in rt], dtype=float),
                       np.array([t.get(f"{q}_sem", np.nan) for t in rt], dtype=float)) for q in ("sr", "drag_energy_mj",
                                                                                       "mean_lift_n")}
        out.append(P.trend_panels({f"sim ellipsoid (k={k0:g} N/m)": sim, "real logs (N_matrix APPROXIMATION)": realser},
                                  "deflection per side (cm)", [("sr", "specific resistance"),
                                                               ("drag_energy_mj", "drag energy / stride (mJ)"),
                                                               ("mean_lift_n", "mean lift (N)")],
                                  plots / "sim_vs_real.png", title="simulated vs real-log trends"))
    return out


def analyze_real(calib: Path | None) -> dict | None:
    """Per-trial summaries of the two 2016 beam logs (4 and 8 cm) for the side-by-side."""
    from quartet.core.paths import shared_data
    from quartet.robot.analyze_cmd import AnalyzeConfig, analyze_paths

    try:
        d = shared_data("velociroach")
    except Exception:
        return None
    logs = sorted(d.glob("2016.10.08_*_trial_imudata.txt"))
    if not logs:
        return None
    cal = calib or d / "N_matrix_trial9.mat"
    res = analyze_paths(logs, AnalyzeConfig(calib=cal, effects=False, plots=False))
    return {"trials": res["trials"], "calibration": res["calibration"]}


def main(argv: list[str] | None = None) -> int:
    cfg = parse_cli(SweepConfig, argv, prog="quartet robot sweep")
    run = RunDir.create("", root=cfg.out, config=cfg, exist_ok=True) if cfg.out else \
        RunDir.create("robot-sweep", config=cfg)
    jobs = job_list(cfg)
    for j in jobs:
        scene_for(j)  # bad overrides fail here, before any run starts
    log.info("%d runs on %s (%s workers) -> %s", len(jobs), cfg.backend, cfg.workers or os.cpu_count(), run.path)
    t0 = time.perf_counter()
    rows = _run_all(jobs, run.path / "runs", cfg)
    wall = time.perf_counter() - t0
    failed = [r for r in rows if "error" in r]
    for r in failed:
        log.warning("run %s failed: %s", r["name"], r["error"])
    rows = [r for r in rows if "error" not in r]
    if not rows:
        raise QuartetError(f"all {len(failed)} sweep runs failed (first: {failed[0]['error']}); "
                           "use --duration-s of at least 2.5 s so each run holds two full strides")
    real = analyze_real(cfg.real_calib)
    plots = figures(rows, real, run.path / "plots")
    verdicts = trend_verdicts(rows)
    table = [{"gap": r["gap_cm"], "shell": r["shell"], "k N/m": r["beam_stiffness"], "v cm/s": 100 * r["speed_m_s"],
              "SR": r["sr_mean"], "drag E mJ": r.get("drag_energy_mj_mean"), "drag N": r.get("mean_drag_n_mean"),
              "lift N": r.get("mean_lift_n_mean"), "truth lift@contact N": r["truth_fz_in_contact_n"],
              "contact %": 100 * r["contact_fraction"], "slip %": 100 * r.get("leg_slip", float("nan")),
              "|duty|": r.get("mean_abs_duty"), "contact h mm": 1e3 * r.get("contact_height_above_rim_m", float("nan")),
              "RTF": r["real_time_factor"]} for r in rows]
    for r in rows:
        run.log({k: v for k, v in r.items() if not isinstance(v, (dict, list))})
    run.write_result({"config": asdict(cfg) | {"out": str(cfg.out)}, "wall_s": wall, "runs": rows, "failed": failed,
                      "verdicts": verdicts, "real": real})
    print(markdown_table(table))
    print("\ntrend checks (ellipsoid shell):" + ("" if verdicts else " need >= 3 gaps with the ellipsoid shell"))
    for k, v in verdicts.items():
        print(f"  {k}: negative lift under contact: {v['negative_lift_under_contact']}; drag grows with deflection: "
              f"{v['drag_grows_with_deflection']}; SR minimum at moderate contact: {v['sr_min_at_moderate_contact']}")
    if failed:
        print(f"{len(failed)} run(s) failed: " + "; ".join(f"{r['name']}: {r['error']}" for r in failed))
    print(f"\n{len(rows)} runs in {wall:.0f} s; figures: {', '.join(p.name for p in plots)}\noutputs: {run.path}")
    return 0
