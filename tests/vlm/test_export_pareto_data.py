"""ONNX export parity, the Pareto frontier, and the QA data builders."""

from __future__ import annotations

import numpy as np
import pytest

from quartet.core.errors import DataCorruptError, QuartetError
from quartet.vlm.data import QADataset, concat, load_qa, make_textimage, save_qa
from quartet.vlm.pareto import pareto_front, plot_breakdown, plot_pareto


def test_onnx_export_parity_tiny(tmp_path) -> None:
    from quartet.vlm.encoder import build_encoder
    from quartet.vlm.export import check_parity, export_onnx

    enc = build_encoder("fastvithd_tiny", resolution=128)
    path = export_onnx(enc, tmp_path / "enc.onnx", 128)
    assert enc.fused and path.stat().st_size > 0
    import onnx

    graph = onnx.load(str(path)).graph
    assert not any(n.op_type == "BatchNormalization" for n in graph.node)  # fused into convs
    err = check_parity(enc, path, 128)
    assert err < 1e-4


def test_pareto_front_against_brute_force() -> None:
    rng = np.random.default_rng(0)
    pts = [{"ttft_s": float(t), "accuracy": float(a)} for t, a in rng.random((40, 2))]
    front = pareto_front(pts)
    brute = [p for p in pts if not any(q["ttft_s"] <= p["ttft_s"] and q["accuracy"] > p["accuracy"] for q in pts)]
    assert sorted(map(id, front)) == sorted(map(id, brute))
    assert [p["ttft_s"] for p in front] == sorted(p["ttft_s"] for p in front)


def test_pareto_and_breakdown_plots(tmp_path) -> None:
    pts = [{"label": "a", "ttft_s": 0.1, "accuracy": 0.2}, {"label": "b", "ttft_s": 0.3, "accuracy": 0.9},
           {"label": "c", "ttft_s": 0.4, "accuracy": 0.5}]
    assert [p["label"] for p in pareto_front(pts)] == ["a", "b"]
    assert plot_pareto(pts, tmp_path / "p.png").stat().st_size > 1000
    rows = [{"label": "x", "encoder_ms": 5.0, "projector_ms": 0.1, "prefill_ms": 3.0}]
    assert plot_breakdown(rows, tmp_path / "b.png").stat().st_size > 1000


def test_textimage_deterministic_and_resolution_dependent() -> None:
    a = make_textimage(6, seed=1, split="train", n_digits=2, jitter=1.0)
    b = make_textimage(6, seed=1, split="train", n_digits=2, jitter=1.0)
    c = make_textimage(6, seed=1, split="val", n_digits=2, jitter=1.0)
    assert np.array_equal(a.images, b.images) and a.answers == b.answers
    assert a.answers != c.answers or not np.array_equal(a.images, c.images)
    assert all(len(s) == 2 and s.isdigit() for s in a.answers)
    assert a.images.dtype == np.uint8 and a.images.shape == (6, 64, 64, 3)
    # digits are dark on a light background: some ink pixels exist
    assert (a.images.min(axis=-1) < 100).any(axis=(1, 2)).all()
    d = make_textimage(4, seed=1)
    assert all(len(s) == 1 for s in d.answers)
    with pytest.raises(QuartetError):
        make_textimage(1, font_px=40, canvas=50)


def test_qa_folder_roundtrip_and_corruption(tmp_path) -> None:
    ds = concat([make_textimage(3, seed=0), make_textimage(2, seed=1)])
    save_qa(ds, tmp_path / "qa")
    back = load_qa(tmp_path / "qa")
    assert np.array_equal(back.images, ds.images) and back.answers == ds.answers
    (tmp_path / "qa" / "images.npy").write_bytes(b"garbage")
    with pytest.raises(DataCorruptError):
        load_qa(tmp_path / "qa")
    with pytest.raises(QuartetError, match="build-data"):
        load_qa(tmp_path / "nothing")
    with pytest.raises(DataCorruptError):
        QADataset(np.zeros((2, 8, 8, 3), np.uint8), ["q"], ["a"])


def test_build_data_cli_with_real_source(tmp_path, capsys) -> None:
    from quartet.vlm.build_data import main

    try:
        assert main(["--sources", "textimage", "fashion_mnist", "--n", "6", "--limit", "5", "--size", "64",
                     "--out", str(tmp_path / "qa")]) == 0
    except QuartetError as e:  # the Debian package is not installed on this machine
        pytest.skip(str(e))
    ds = load_qa(tmp_path / "qa")
    assert len(ds) == 11 and ds.sources.count("fashion_mnist") == 5
    assert "What kind of clothing is this?" in ds.questions
    assert "wrote 11 items" in capsys.readouterr().out
