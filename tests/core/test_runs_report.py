import json

import pytest

from quartet.core.errors import QuartetError
from quartet.core.report import Report, Section, markdown_table
from quartet.core.runs import RunDir


def test_run_folder_contents(tmp_path):
    from dataclasses import dataclass

    @dataclass
    class C:
        lr: float = 0.1

    run = RunDir.create("t", root=tmp_path, config=C())
    run.log({"step": 1, "loss": 2.5})
    run.log({"step": 2, "loss": float("nan")})
    run.plot_path("loss").write_bytes(b"png")
    run.write_result({"final_loss": 1.0})
    assert (run.path / "config.yaml").read_text().strip() == "lr: 0.1"
    recs = run.read_metrics()
    assert [r["step"] for r in recs] == [1, 2] and recs[1]["loss"] == "nan"
    assert json.loads((run.path / "result.json").read_text()) == {"final_loss": 1.0}
    assert (run.path / "plots" / "loss.png").exists()


def test_torn_metrics_line_ignored(tmp_path):
    run = RunDir(tmp_path / "r")
    run.log({"step": 1})
    with open(run.metrics_path, "a") as f:
        f.write('{"step": 2, "lo')
    assert [r["step"] for r in run.read_metrics()] == [1]


def test_create_refuses_nonempty_existing(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "f").write_text("1")
    with pytest.raises(QuartetError, match="not empty"):
        RunDir.create("", root=tmp_path / "x")


def test_report_writes_md_html_json(tmp_path):
    img = tmp_path / "sys" / "p.png"
    img.parent.mkdir()
    img.write_bytes(b"\x89PNG")
    rep = Report("demo", intro="hello")
    rep.add(Section("sys", markdown="## numbers\n" + markdown_table([{"a": 1.23456, "b": "x"}]), images=[img],
                    metrics={"acc": 0.5}))
    rep.add(Section("other", status="failed", markdown="```\nboom\n```"))
    index = rep.write(tmp_path)
    html = index.read_text()
    assert "<table>" in html and "src='sys/p.png'" in html and "boom" in html
    md = (tmp_path / "report.md").read_text()
    assert "| a | b |" in md and "1.235" in md and "![p.png](sys/p.png)" in md
    res = json.loads((tmp_path / "result.json").read_text())
    assert res["sections"][0]["metrics"] == {"acc": 0.5} and res["sections"][1]["status"] == "failed"
