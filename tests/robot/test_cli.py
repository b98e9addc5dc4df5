from __future__ import annotations

import json
from pathlib import Path

import pytest

from quartet.core.commands import resolve
from quartet.core.config import load_config
from quartet.robot.cli import COMMANDS

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "robot"


def test_every_verb_resolves():
    assert set(COMMANDS) >= {"analyze", "calibrate", "simulate", "sweep"}
    for target, _ in COMMANDS.values():
        assert callable(resolve(target))


def test_config_presets_load():
    from quartet.robot.analyze_cmd import AnalyzeConfig
    from quartet.robot.simulate_cmd import SimulateConfig
    from quartet.robot.sweep import SweepConfig, job_list

    assert load_config(SimulateConfig, CONFIGS / "simulate_gap8.yaml").sim.scene.beam_stiffness == 0.3
    assert len(job_list(load_config(SweepConfig, CONFIGS / "sweep_small.yaml"))) == 15
    assert len(job_list(load_config(SweepConfig, CONFIGS / "sweep_full.yaml"))) == 45
    assert load_config(AnalyzeConfig, CONFIGS / "analyze_real.yaml").filter == "zerophase"


def test_analyze_cli_on_a_real_log(real_dir, tmp_path, capsys):
    main = resolve(COMMANDS["analyze"][0])
    rc = main([str(real_dir / "2016.10.08_19.11.34_trial_imudata.txt"), "--calib",
               str(real_dir / "N_matrix_trial9.mat"), "--out", str(tmp_path), "--no-plots"])
    out = capsys.readouterr().out
    assert rc == 0 and "APPROXIMATION" in out and "5.842" in out and "drag_energy_mj" in out
    d = json.loads((tmp_path / "trials.json").read_text())
    assert d["trials"][0]["n_strides"] == 11 and d["trials"][0]["speed_source"].startswith("measured")
    assert (tmp_path / "strides.csv").read_text().count("\n") == 12


def test_analyze_without_calibration_says_how_to_get_forces(real_dir, tmp_path, capsys):
    main = resolve(COMMANDS["analyze"][0])
    assert main([str(real_dir / "2015.02.28_behavior4_2Hz.txt"), "--out", str(tmp_path), "--no-plots",
                 "--no-effects"]) == 0
    out = capsys.readouterr().out
    assert "needs --calib" in out and "ASSUMPTION" in out


def test_calibrate_synthetic_recovers_the_known_matrix(tmp_path, capsys):
    main = resolve(COMMANDS["calibrate"][0])
    assert main(["--synthetic", "--out", str(tmp_path)]) == 0
    res = json.loads((tmp_path / "result.json").read_text())
    assert abs(res["clock_offset_s"] - 0.25) < 0.002
    assert all(v < 0.03 for v in res["relative_error_vs_known"].values())
    assert (tmp_path / "calibration.csv").read_text().count("\n") == 24


def test_simulate_cli_writes_a_log_that_analyze_reads(tmp_path, capsys):
    sim = resolve(COMMANDS["simulate"][0])
    assert sim(["--gap", "8", "--sim.duration-s", "2.4", "--sim.scene.beam-start-x", "0.08", "--out",
                str(tmp_path / "sim"), "--no-plot"]) == 0
    log = tmp_path / "sim" / "sim_gap8_ellipsoid.txt"
    assert log.is_file() and (tmp_path / "sim" / "sim_gap8_ellipsoid.truth.csv").is_file()
    ana = resolve(COMMANDS["analyze"][0])
    assert ana([str(log), "--calib", str(tmp_path / "sim" / "sim_gap8_ellipsoid.calib.json"), "--out",
                str(tmp_path / "ana"), "--no-plots"]) == 0
    out = capsys.readouterr().out
    assert "simulation ground truth" in out


@pytest.mark.slow
def test_sweep_cli_small(tmp_path):
    main = resolve(COMMANDS["sweep"][0])
    assert main(["--gaps-cm", "4", "14", "--shells", "ellipsoid", "--duration-s", "2.4", "--workers", "2",
                 "--out", str(tmp_path)]) == 0
    res = json.loads((tmp_path / "result.json").read_text())
    assert len(res["runs"]) == 2 and (tmp_path / "plots" / "sim_vs_real.png").is_file()


def test_trend_verdicts_detect_each_finding():
    from quartet.robot.sweep import trend_verdicts

    def row(d, drag, lift, sr):
        return {"shell": "ellipsoid", "beam_stiffness": 0.3, "deflection_cm": d, "mean_drag_n_mean": drag,
                "truth_fz_in_contact_n": lift, "sr_mean": sr}

    paper_like = [row(-2, 0.0, 0.0, 10), row(0, 0.0, 0.0, 10), row(1, -0.05, -0.1, 8), row(2, -0.1, -0.2, 9),
                  row(3, -0.2, -0.3, 12)]
    v = trend_verdicts(paper_like)["k=0.3"]
    assert v["negative_lift_under_contact"] and v["drag_grows_with_deflection"] and v["sr_min_at_moderate_contact"]
    opposite = [row(-2, 0.0, 0.0, 7), row(0, 0.0, 0.0, 7), row(1, -0.05, 0.1, 8), row(2, -0.03, 0.2, 9),
                row(3, -0.2, 0.3, 12)]
    v = trend_verdicts(opposite)["k=0.3"]
    assert not (v["negative_lift_under_contact"] or v["drag_grows_with_deflection"] or v["sr_min_at_moderate_contact"])


def test_scene_overrides_are_typed_and_checked():
    from quartet.core.errors import QuartetError
    from quartet.robot.sweep import scene_for

    job = {"gap_cm": 6.0, "shell": "box", "beam_stiffness": 0.3, "overrides": {"beam_segments": 3.0}}
    sc = scene_for(job)
    assert sc.beam_segments == 3 and isinstance(sc.beam_segments, int) and sc.shell == "box"
    with pytest.raises(QuartetError, match="unknown key"):
        scene_for({**job, "overrides": {"beam_count": 3}})
