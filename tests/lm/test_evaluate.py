from pathlib import Path

import numpy as np
import pytest
import torch

from quartet.lm.evaluate import eval_rows, heldout_loss, retrieval_eval
from quartet.lm.model import LlamaLM, ModelConfig
from quartet.lm.reproduce import time_to_reach
from quartet.lm.store import PreparedData, Stream


class InductionOracle(torch.nn.Module):
    """Predicts the token that followed the previous occurrence of the last ``k`` tokens (a perfect copier)."""

    def __init__(self, vocab: int, k: int):
        super().__init__()
        self.vocab, self.k = vocab, k

    def forward(self, tokens: torch.Tensor, segments: torch.Tensor | None = None) -> torch.Tensor:
        t = tokens[0].tolist()
        out = torch.zeros(1, len(t), self.vocab)
        q = t[-self.k:]
        for i in range(len(t) - self.k - 1, -1, -1):
            if t[i:i + self.k] == q:
                out[0, -1, t[i + self.k]] = 10.0
                break
        return out


def _val(n_docs: int = 60, seed: int = 0) -> Stream:
    rng = np.random.default_rng(seed)
    lens = rng.integers(14, 60, size=n_docs)
    toks = rng.integers(0, 500, size=int(lens.sum()))
    return Stream([toks], [lens])


def test_retrieval_oracle_scores_one_and_constant_model_near_chance() -> None:
    val = _val()
    rows = retrieval_eval(InductionOracle(500, 8), val, lengths=(128, 256), examples=10, prefix=8)
    assert [r["accuracy"] for r in rows] == [1.0, 1.0]
    assert rows[1]["docs per context"] > rows[0]["docs per context"] >= 2
    torch.manual_seed(0)
    dumb = retrieval_eval(LlamaLM(ModelConfig(vocab_size=500, dim=16, n_layers=1, n_heads=2)), val, (256,), 20)
    assert dumb[0]["accuracy"] < 0.6
    assert 0 < dumb[0]["chance"] < 0.5


def test_heldout_loss_by_position_counts_every_target_once(prepared: Path) -> None:
    d = PreparedData(prepared)
    rows = eval_rows(d.val, 32, None)
    segs = rows[1]
    expect = int(np.minimum(d.val.doc_lens[d.val.doc_lens >= 2], 32).sum() - (d.val.doc_lens >= 2).sum())
    model = LlamaLM(ModelConfig(vocab_size=d.vocab_size, dim=16, n_layers=1, n_heads=2))
    res = heldout_loss(model, rows, torch.device("cpu"))
    assert res["targets"] == expect == sum(r["targets"] for r in res["by_position"])
    assert abs(res["loss"] - np.log(d.vocab_size)) < 0.5  # an untrained model is near uniform
    assert (segs >= 0).sum() == int(np.minimum(d.val.doc_lens[d.val.doc_lens >= 2], 32).sum())


def test_time_to_reach_interpolates() -> None:
    c = [{"wall_s": 0.0, "val_loss": 5.0}, {"wall_s": 10.0, "val_loss": 3.0}, {"wall_s": 20.0, "val_loss": 2.0}]
    assert time_to_reach(c, 4.0) == pytest.approx(5.0)
    assert time_to_reach(c, 2.0) == pytest.approx(20.0)
    assert time_to_reach(c, 1.0) is None


def test_cli_prepare_prints_bucket_table_and_bad_input_exits_2(corpus: Path, tmp_path: Path, capsys) -> None:
    from quartet.cli import main

    rc = main(["lm", "prepare", "--source", str(corpus), "--out", str(tmp_path / "o"), "--tokenizer", "bpe:300",
               "--min-log2", "3", "--max-log2", "6", "--engine", "local", "--stats-len", "64"])
    out = capsys.readouterr().out
    assert rc == 0 and "D3 (8)" in out and "C&C-64" in out and "Pack-64" in out and "tokens/s" in out
    assert main(["lm", "stats", "--data", str(tmp_path / "o"), "--verify"]) == 0
    assert "sha256" in capsys.readouterr().out
    assert main(["lm", "prepare", "--source", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "x")]) == 2
    assert main(["lm", "train", "--data", str(tmp_path / "missing")]) == 2
    assert "no manifest.json" in capsys.readouterr().err
