import time

import numpy as np
import torch

from quartet.core.bench import interleaved
from quartet.core.distributed import all_gather_cat, all_reduce_mean, init_distributed
from quartet.core.seed import numpy_rng, seed_everything


def test_interleaved_ratio_detects_slower_arm():
    res = interleaved({"fast": lambda: time.sleep(0.001), "slow": lambda: time.sleep(0.02)}, repeats=3, warmup=0,
                      work={"fast": 1, "slow": 1})
    assert res.ratio("fast", "slow") > 3
    assert len(res.times["fast"]) == 3
    assert "x slow" in res.table("slow")


def test_work_units_enter_throughput():
    res = interleaved({"a": lambda: time.sleep(0.005), "b": lambda: time.sleep(0.005)}, repeats=3, warmup=0,
                      work={"a": 10, "b": 1})
    assert res.ratio("a", "b") > 4


def test_seeding_is_reproducible():
    seed_everything(3)
    a = torch.rand(3), np.random.rand(2)
    seed_everything(3)
    b = torch.rand(3), np.random.rand(2)
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert numpy_rng(1, 2).integers(1 << 30) == numpy_rng(1, 2).integers(1 << 30)
    assert numpy_rng(1, 2).integers(1 << 30) != numpy_rng(1, 3).integers(1 << 30)


def test_single_process_distributed_is_identity(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    info = init_distributed("cpu")
    assert info.world_size == 1 and info.is_main and info.backend is None
    x = torch.arange(4.0)
    assert torch.equal(all_gather_cat(x), x) and torch.equal(all_reduce_mean(x), x)
