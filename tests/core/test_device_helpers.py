"""Optimiser and memory-format helpers in quartet.core.device."""

from __future__ import annotations

import copy
import subprocess
import sys

import pytest
import torch
from torch import nn

from quartet.core.device import SubsampledPointwiseConv, adamw, channels_last_for_training, subsample_strided_pointwise


def test_adamw_is_fused_on_cpu_and_matches_the_reference_update() -> None:
    torch.manual_seed(0)
    a, b = nn.Linear(8, 4), nn.Linear(8, 4)
    b.load_state_dict(a.state_dict())
    fused = adamw(a.parameters(), "cpu", lr=1e-2, betas=(0.9, 0.95), weight_decay=0.2)
    ref = torch.optim.AdamW(b.parameters(), lr=1e-2, betas=(0.9, 0.95), weight_decay=0.2, foreach=False)
    assert fused.defaults["fused"] is True
    x = torch.randn(16, 8)
    for _ in range(5):
        for m, opt in ((a, fused), (b, ref)):
            opt.zero_grad()
            m(x).pow(2).mean().backward()
            opt.step()
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.allclose(p, q, atol=1e-6)


def test_channels_last_for_training_subsamples_strided_pointwise_convs_exactly() -> None:
    torch.manual_seed(0)
    ref = nn.Sequential(nn.Conv2d(3, 16, 1, stride=2), nn.GELU(), nn.Conv2d(16, 16, 3, padding=1),
                        nn.Conv2d(16, 32, 1, stride=2), nn.Conv2d(32, 8, 1))
    net = copy.deepcopy(ref)
    channels_last_for_training(net)
    assert [type(m) for m in net] == [SubsampledPointwiseConv, nn.GELU, nn.Conv2d, SubsampledPointwiseConv, nn.Conv2d]
    assert net.state_dict().keys() == ref.state_dict().keys()
    assert net[2].weight.is_contiguous(memory_format=torch.channels_last) and not net[2].weight.is_contiguous()
    x = torch.randn(4, 3, 17, 15)  # odd sizes: the subsampled grid must match the strided one
    out, want = net(x), ref(x)
    assert out.shape == want.shape and out.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out, want, atol=1e-5, rtol=1e-5)
    out.square().sum().backward()
    want.square().sum().backward()
    for p, q in zip(net.parameters(), ref.parameters()):
        torch.testing.assert_close(p.grad, q.grad, atol=1e-4, rtol=1e-4)
    assert subsample_strided_pointwise(net) == 0  # idempotent
    assert isinstance(copy.deepcopy(net)[0], SubsampledPointwiseConv)


_MCI_TRAIN_STEPS = """
import pytest
import torch
from quartet.clip.models import create_model
from quartet.core.device import channels_last_for_training
torch.manual_seed(0)
torch.set_num_threads(2)
v = create_model("MCi-nano", image_size=32).model.visual
channels_last_for_training(v)
x = torch.randn(64, 3, 32, 32)
for _ in range(8):
    v(x).sum().backward()
print("done")
"""


def test_nhwc_training_of_an_mci_tower_completes() -> None:
    """Without the strided-1x1 rewrite this loop aborts or hangs inside oneDNN within a few steps (torch 2.14.1)."""
    r = subprocess.run([sys.executable, "-c", _MCI_TRAIN_STEPS], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "done" in r.stdout, r.stderr[-2000:]


_FAULTS = """
import resource, sys, torch
from quartet.core.device import reuse_freed_cpu_memory
applied = reuse_freed_cpu_memory(sys.argv[1] == "1")
def touch():
    x = torch.ones(16 * 2**20)  # 64 MiB: above glibc's largest mmap threshold
    return float(x[::4096].sum())
for _ in range(8):  # the heap settles after a few rounds
    touch()
r0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(3):
    touch()
print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - r0)
"""


def test_reuse_freed_cpu_memory_stops_page_faults_on_large_reallocations() -> None:
    runs = {}
    for flag in ("0", "1"):
        r = subprocess.run([sys.executable, "-c", _FAULTS, flag], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr[-2000:]
        applied, faults = r.stdout.split()[-2:]
        runs[flag] = (applied, int(faults))
    if runs["1"][0] != "True":
        pytest.skip("not glibc: mallopt unavailable")
    assert runs["0"][1] > 3 * 16000  # each 64 MiB tensor faults in ~16k fresh pages
    assert runs["1"][1] < 1000
