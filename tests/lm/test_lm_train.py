import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from quartet.lm.train import TrainConfig, train


def _cfg(prepared: Path, out: Path, **kw) -> TrainConfig:
    base = dict(data=prepared, out=out, arm="dd", seq_len=64, tokens_per_step=128, total_tokens=128 * 6,
                model="tiny", dim=32, eval_every=3, eval_docs=8, ckpt_every=100, lr=3e-3)
    base.update(kw)
    return TrainConfig(**base)


def _losses(run: str) -> list[float]:
    return [json.loads(line)["loss"] for line in open(Path(run) / "metrics.jsonl") if '"loss"' in line]


@pytest.mark.parametrize("arm", ["dd", "pack_dm"])
def test_kill_and_resume_gives_the_same_loss_curve(prepared: Path, tmp_path: Path, arm: str) -> None:
    full = train(_cfg(prepared, tmp_path / "a", arm=arm))
    part = train(_cfg(prepared, tmp_path / "b", arm=arm, stop_after=4))
    assert part["stopped_at"] == 4
    with open(Path(part["run"]) / "metrics.jsonl", "a") as f:  # a record logged after the checkpoint is dropped
        f.write(json.dumps({"step": 5, "loss": 99.0}) + "\n")
    resumed = train(TrainConfig(resume=Path(part["run"])))
    assert _losses(resumed["run"]) == _losses(full["run"])
    assert resumed["final_val_loss"] == full["final_val_loss"]
    assert resumed["tokens"] == full["tokens"] == 128 * 6


def test_all_arms_train_on_an_equal_budget_and_loss_drops(prepared: Path, tmp_path: Path) -> None:
    res = {arm: train(_cfg(prepared, tmp_path, arm=arm, total_tokens=128 * 12, lr=1e-2))
           for arm in ("dd", "cc", "cc_dm", "pack_dm")}
    for arm, r in res.items():
        assert r["tokens"] == 128 * 12 and r["steps"] == 12
        curve = [e["val_loss"] for e in r["eval_curve"]]
        assert curve[-1] < curve[0] - 0.5, (arm, curve)
    assert set(res["cc"]["step_time_by_len"]) == {"64"}
    assert len(res["dd"]["step_time_by_len"]) >= 2  # DD steps at several lengths


def test_resume_with_other_settings_is_refused(prepared: Path, tmp_path: Path) -> None:
    from quartet.core.errors import QuartetError

    part = train(_cfg(prepared, tmp_path, stop_after=1))
    with pytest.raises(QuartetError, match="different settings"):
        train(TrainConfig(resume=Path(part["run"]), lr=0.5))


def test_ddp_two_processes_match_one(prepared: Path, tmp_path: Path) -> None:
    """torchrun with 2 gloo ranks, each taking half of every step, gives the single-process loss curve."""
    single = train(_cfg(prepared, tmp_path / "one", total_tokens=128 * 3, eval_every=100))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "QUARTET_PROGRESS": "0"}
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", port,
           "-m", "quartet", "lm", "train", "--data", str(prepared), "--out", str(tmp_path / "two"),
           "--seq-len", "64", "--tokens-per-step", "128", "--total-tokens", str(128 * 3), "--model", "tiny",
           "--dim", "32", "--eval-every", "100", "--eval-docs", "8", "--lr", "3e-3"]
    subprocess.run(cmd, check=True, env=env, capture_output=True, timeout=240)
    run = next((tmp_path / "two").iterdir())
    got = _losses(str(run))
    assert got == pytest.approx(_losses(single["run"]), rel=1e-4, abs=1e-4)
    assert json.loads((run / "result.json").read_text())["world_size"] == 2
