"""TTFT benchmark plumbing: the plan, target checks, prefill/projector timing on a tiny LLM, result loading."""

from __future__ import annotations

import json

import torch

from quartet.vlm.ttft import TTFTConfig, _load_points, _plan, check_targets, time_encoders, time_llm


def test_quick_plan_has_the_target_arms() -> None:
    arms, llms = _plan(TTFTConfig(quick=True))
    labels = [a[0] for a in arms]
    for need in ("fastvithd@336", "vit_l14_336@336", "fastvithd@1024", "fastvithd@1024 unfused"):
        assert need in labels
    assert llms == ("qwen2_0.5b",)
    full, llms = _plan(TTFTConfig(resolutions=(256, 512), vit_max_resolution=336))
    fl = [a[0] for a in full]
    assert "vit_l14_336@512" not in fl and "fastvit_mci2@512" in fl and "fastvithd@512 unfused" in fl
    assert llms == ("qwen2_0.5b", "qwen2_1.5b")


def _row(config: str, tokens: int, enc: float, ttft: float) -> dict:
    return {"config": config, "llm": "qwen2_0.5b", "tokens": tokens, "encoder_ms": enc, "ttft_ms": ttft}


def test_targets_met_and_missed() -> None:
    rows = [_row("fastvithd@336", 36, 100.0, 500.0), _row("vit_l14_336@336", 576, 450.0, 4000.0),
            _row("fastvithd@1024", 256, 900.0, 3000.0), _row("fastvithd@1024 unfused", 256, 1000.0, 3100.0),
            _row("fastvit_mci2@336", 121, 80.0, 900.0)]
    t = {x["target"]: x for x in check_targets(rows, TTFTConfig(quick=True))}
    assert t["encoder latency vit_l14_336@336 / fastvithd@336"]["status"] == "met"  # 4.5x
    assert t["tokens vit_l14_336@336 / fastvithd@336"]["measured"] == 16.0
    assert t["encoder latency unfused / fused fastvithd@1024"]["status"] == "missed"  # 1.11x < 1.3x
    assert t["TTFT fastvithd@1024 / vit_l14_336@336 (qwen2_0.5b)"]["status"] == "met"  # 0.75


def test_time_encoders_and_llm_tiny() -> None:
    enc_t, info = time_encoders([("t@64", "fastvithd_tiny", 64, True), ("t@64 unfused", "fastvithd_tiny", 64, False)],
                                repeats=2, warmup=1, dev=torch.device("cpu"))
    assert set(enc_t) == {"t@64", "t@64 unfused"} and all(v > 0 for v in enc_t.values())
    assert info["t@64"]["tokens"] == 1 and info["t@64"]["dim"] == 512
    prefill, proj = time_llm("qwen2_tiny", [1, 4], [512, 512], prompt_tokens=8, repeats=2, warmup=1,
                             dev=torch.device("cpu"))
    assert set(prefill) == {1, 4} and set(proj) == {(1, 512), (4, 512)}


def test_load_points_from_eval_results(tmp_path) -> None:
    (tmp_path / "a.json").write_text(json.dumps({"accuracy": 0.5, "ttft_s": 0.02, "encoder": "e", "resolution": 32}))
    (tmp_path / "b.json").write_text(json.dumps({"results": [{"accuracy": 0.9, "ttft_s": 0.05, "resolution": 64}]}))
    pts = _load_points((str(tmp_path / "a.json"), str(tmp_path / "b.json")))
    assert [p["accuracy"] for p in pts] == [0.5, 0.9] and pts[0]["label"] == "e@32"
