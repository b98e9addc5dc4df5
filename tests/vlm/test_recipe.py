"""Training stages, resume, LoRA, eval and the CLI verbs on a few steps of the tiny preset."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch
from PIL import Image

from quartet.core.errors import QuartetError
from quartet.vlm.model import VLMConfig, load_vlm
from quartet.vlm.train import TrainConfig, configure_trainable, lr_at, train

TINY = dict(model=VLMConfig(encoder="fastvithd_tiny", llm="qwen2_tiny", resolution=32), n_train=48,
            batch_size=16, micro_batch=8, threads=1, save_every=0, eval_n=8, max_new_tokens=3)


@pytest.fixture(scope="module")
def stage1(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    return train(TrainConfig(stage=1, out=str(out), name="s1", **TINY)), out


def test_lr_schedule_warmup_then_cosine() -> None:
    lrs = [lr_at(s, 100, 1.0, 0.03) for s in range(100)]
    assert lrs[0] == pytest.approx(1 / 3) and lrs[2] == pytest.approx(1.0)
    assert all(a >= b for a, b in itertools.pairwise(lrs[2:])) and lrs[-1] < 0.01


def test_stage1_trains_only_projector(stage1) -> None:
    res, _ = stage1
    assert res["steps"] == 3 and 0.0 <= res["accuracy"] <= 1.0
    m = load_vlm(res["ckpt"])
    params = configure_trainable(m, TrainConfig(stage=1))
    assert {id(p) for p in params} == {id(p) for p in m.projector.parameters()}
    params2 = configure_trainable(m, TrainConfig(stage=2))
    assert len(params2) == len(list(m.parameters()))


def test_stage2_changes_llm_and_encoder_and_keeps_projector_from_stage1(stage1) -> None:
    res1, out = stage1
    m1 = load_vlm(res1["ckpt"])
    res2 = train(TrainConfig(stage=2, init=res1["ckpt"], lr=1e-3, out=str(out), name="s2", **TINY))
    m2 = load_vlm(res2["ckpt"])
    w1 = m1.llm.get_input_embeddings().weight
    w2 = m2.llm.get_input_embeddings().weight
    assert not torch.equal(w1, w2)
    e1 = dict(m1.encoder.named_parameters())
    assert any(not torch.equal(p, e1[n]) for n, p in m2.encoder.named_parameters())
    assert m2.cfg.resolution == 32


def test_stage1_5_trains_everything_at_a_new_resolution(stage1, tmp_path) -> None:
    res1, _ = stage1
    before = load_vlm(res1["ckpt"])
    res = train(TrainConfig(stage=1.5, init=res1["ckpt"], resolution=64, lr=1e-3, out=str(tmp_path), name="s15",
                            **{**TINY, "eval_n": 0}))
    assert res["stage"] == 1.5 and res["resolution"] == 64
    after = load_vlm(res["ckpt"])
    assert after.cfg.resolution == 64
    for part in ("encoder", "projector", "llm"):
        a = torch.cat([p.flatten() for p in getattr(before, part).parameters()])
        b = torch.cat([p.flatten() for p in getattr(after, part).parameters()])
        assert not torch.allclose(a, b), part
    with pytest.raises(QuartetError, match="1, 1.5 or 2"):
        train(TrainConfig(stage=3, out=str(tmp_path), **TINY))


def test_stage1_leaves_llm_untouched(stage1, tmp_path) -> None:
    res1, _ = stage1
    m1 = load_vlm(res1["ckpt"])
    res = train(TrainConfig(stage=1, init=res1["ckpt"], out=str(tmp_path), name="again", **{**TINY, "eval_n": 0}))
    m = load_vlm(res["ckpt"])
    assert torch.equal(m.llm.get_input_embeddings().weight, m1.llm.get_input_embeddings().weight)
    assert not torch.equal(m.projector[0].weight, m1.projector[0].weight)


def test_lora_stage2_saves_plain_merged_llm(stage1, tmp_path) -> None:
    res1, _ = stage1
    res = train(TrainConfig(stage=2, init=res1["ckpt"], lora=True, train_encoder=False, lr=1e-2,
                            out=str(tmp_path), name="lora", **{**TINY, "eval_n": 0}))
    m = load_vlm(res["ckpt"])
    assert not any("lora" in n for n, _ in m.named_parameters())
    m1 = load_vlm(res1["ckpt"])
    q1 = m1.llm.model.layers[0].self_attn.q_proj.weight
    assert not torch.equal(m.llm.model.layers[0].self_attn.q_proj.weight, q1)
    assert torch.equal(m.llm.model.layers[0].mlp.up_proj.weight, m1.llm.model.layers[0].mlp.up_proj.weight)


def test_resume_continues_from_saved_step(tmp_path) -> None:
    cfg = TrainConfig(stage=2, out=str(tmp_path), name="r", **{**TINY, "n_train": 32, "batch_size": 4,
                                                               "micro_batch": 4, "save_every": 4, "eval_n": 0})
    full = train(cfg)
    run = full["run"]
    st = torch.load(f"{run}/checkpoints/trainer.pt", weights_only=True)
    assert st["step"] == 4
    resumed = train(TrainConfig(**{**cfg.__dict__, "resume": run}))
    assert resumed["steps"] == 8
    lines = [json.loads(x) for x in open(f"{run}/metrics.jsonl")]
    assert [r["step"] for r in lines][-4:] == [5, 6, 7, 8]


def test_chat_and_eval_cli(stage1, tmp_path, capsys) -> None:
    from quartet.vlm.chat import Chat
    from quartet.vlm.chat import main as chat_main
    from quartet.vlm.evaluate import main as eval_main

    res1, _ = stage1
    img = tmp_path / "x.png"
    Image.fromarray(np.full((40, 70, 4), 200, np.uint8)).save(img)  # RGBA, non-square
    assert chat_main(["--ckpt", res1["ckpt"], "--image", str(img), "--prompt", "What number is written?",
                      "--max-new-tokens", "3"]) == 0
    out = capsys.readouterr().out
    assert "TTFT" in out and "encoder" in out and "prefill" in out
    bot = Chat(res1["ckpt"], device="cpu")
    answer, gen = bot.ask(str(img), "What number?", max_new_tokens=3)
    assert isinstance(answer, str) and gen.ttft_s > 0
    with pytest.raises(QuartetError, match="too long for the LLM context"):
        bot.ask(str(img), "1 " * 600, max_new_tokens=3)
    assert eval_main(["--ckpt", res1["ckpt"], "--n", "4", "--resolutions", "32", "64", "--ttft-repeats", "1",
                      "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "32 px: accuracy" in out and "64 px: accuracy" in out


def test_cli_registry_and_missing_args() -> None:
    from quartet.core.commands import resolve
    from quartet.vlm.cli import COMMANDS

    for verb in ("train", "eval", "chat", "ttft", "export", "build-data"):
        assert verb in COMMANDS
        assert callable(resolve(COMMANDS[verb][0]))
    from quartet.vlm.chat import main as chat_main

    with pytest.raises(QuartetError, match="--ckpt"):
        chat_main([])


@pytest.mark.slow
def test_torchrun_ddp_two_processes(tmp_path) -> None:
    import os
    import subprocess
    import sys
    from pathlib import Path

    src = str(Path(__file__).resolve().parents[2] / "src")
    env = {**os.environ, "PYTHONPATH": src, "OMP_NUM_THREADS": "1", "QUARTET_PROGRESS": "0"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "quartet", "vlm", "train",
           "--stage", "2", "--model.resolution", "32", "--n-train", "32", "--batch-size", "16", "--micro-batch", "8",
           "--eval-n", "4", "--threads", "1", "--device", "cpu", "--out", str(tmp_path)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    runs = list(tmp_path.iterdir())
    assert len(runs) == 1 and (runs[0] / "model" / "model.safetensors").is_file()
    lines = (runs[0] / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2  # 32 items / global batch 16, logged once (rank 0)


@pytest.mark.slow
def test_demo_runs_end_to_end_small(tmp_path, monkeypatch) -> None:
    from types import SimpleNamespace

    import quartet.vlm.demo as demo

    small = demo.DemoPlan(resolutions=(16, 32), n_train=64, n_val=8)
    monkeypatch.setattr(demo, "DemoPlan", lambda **kw: small)
    sec = demo.run_demo(SimpleNamespace(out_dir=tmp_path, seed=0, quick=True))
    assert set(sec.metrics) >= {"accuracy@16", "accuracy@32", "ttft_ms@16", "ttft_ms@32"}
    assert all(p.is_file() for p in sec.images)
    assert "Pareto frontier" in sec.markdown
