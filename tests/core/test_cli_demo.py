import subprocess
import sys
import types

from quartet import cli, demo
from quartet.core.report import Section


def test_help_lists_systems(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in ("clip", "vlm", "lm", "robot", "demo"):
        assert f"  {name}" in out


def test_unknown_system_and_verb(capsys):
    assert cli.main(["nope"]) == 2
    assert "unknown system" in capsys.readouterr().err


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "quartet", "--help"], capture_output=True, text=True, check=True)
    assert "usage: quartet" in out.stdout


def test_demo_runner_records_ok_failed_and_skipped(tmp_path, monkeypatch):
    good = types.ModuleType("fake_good")

    def run_good(ctx):
        p = ctx.out_dir / "plot.png"
        p.write_bytes(b"\x89PNG")
        return Section("good", markdown="it ran", images=[p], metrics={"x": 1})

    good.run_demo = run_good
    bad = types.ModuleType("fake_bad")

    def run_bad(ctx):
        raise ValueError("broken on purpose")

    bad.run_demo = run_bad
    monkeypatch.setitem(sys.modules, "fake_good", good)
    monkeypatch.setitem(sys.modules, "fake_bad", bad)
    monkeypatch.setattr(demo, "DEMOS", {"g": "fake_good", "b": "fake_bad", "m": "fake_missing_module_xyz"})
    rc = demo.main(["--out", str(tmp_path / "rep")])
    assert rc == 1
    html = (tmp_path / "rep" / "index.html").read_text()
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "broken on purpose" in md and "g/plot.png" in html
    assert "status: **skipped**" in md and "status: **ok**" in md and "status: **failed**" in md


def test_help_does_not_import_heavy_libraries():
    """`quartet --help` lists every system's verbs without loading PyTorch, Ray or MuJoCo."""
    code = ("import sys, quartet.cli as c; c._usage(); "
            "print(','.join(m for m in ('torch', 'ray', 'mujoco', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
