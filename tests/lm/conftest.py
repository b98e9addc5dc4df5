"""A tiny generated corpus prepared once per session (in-process engine) for the lm tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

WORDS = ("the a package provides library for python data tool network file system user server client module test "
         "documentation of and to in with is this").split()


def write_corpus(path: Path, n_docs: int = 300, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n_docs):
            n = int(rng.lognormal(3.3, 1.0)) + 1
            f.write(json.dumps({"id": f"d{i}", "text": " ".join(rng.choice(WORDS, n))}) + "\n")
    return path


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("corpus") / "c.jsonl")


@pytest.fixture(scope="session")
def prepared(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from quartet.lm.prepare import PrepareConfig, prepare

    out = tmp_path_factory.mktemp("prep") / "data"
    prepare(PrepareConfig(source=str(corpus), out=out, tokenizer="bpe:320", min_log2=3, max_log2=6,
                          engine="local", part_docs=100, stats_len=64, val_fraction=0.1))
    return out
