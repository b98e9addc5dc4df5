from pathlib import Path

import pytest


@pytest.mark.slow
def test_reproduce_on_a_tiny_corpus_writes_a_report(corpus: Path, tmp_path: Path) -> None:
    from quartet.lm.reproduce import ReproduceConfig, reproduce

    rep = reproduce(ReproduceConfig(source=str(corpus), out=tmp_path, seq_len=128, max_steps=4, sample=1.0,
                                    tokens_per_step=256, model="tiny"))
    assert len(rep["rows"]) == 8 and len(rep["headline"]) == 2
    assert rep["epoch_cost_ratio"] is None or rep["epoch_cost_ratio"] > 0
    md = (tmp_path / "report.md").read_text()
    assert "Paper vs ours" in md and (tmp_path / "loss_vs_time.png").is_file()


@pytest.mark.slow
def test_demo_runs_on_real_data(tmp_path: Path) -> None:
    from quartet.data import registry
    from quartet.demo import DemoContext
    from quartet.lm.demo import run_demo

    if not (registry.get("debian").is_installed() and registry.get("pydocs").is_installed()):
        pytest.skip("Debian descriptions / Python docs not installed (quartet data install debian pydocs)")
    sec = run_demo(DemoContext(out_dir=tmp_path, seed=0, quick=True))
    assert sec.status == "ok" and sec.images and Path(sec.images[0]).is_file()
    assert sec.metrics["dd_over_cc_wall"] > 0 and "D10 (1024)" in sec.markdown
