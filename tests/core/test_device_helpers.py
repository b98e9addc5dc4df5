"""Optimiser and memory-format helpers in quartet.core.device."""

from __future__ import annotations

import torch
from torch import nn

from quartet.core.device import adamw, channels_last_for_training


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


def test_channels_last_for_training_keeps_image_facing_convs_nchw() -> None:
    net = nn.Sequential(nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.Conv2d(16, 32, 3, padding=1))
    channels_last_for_training(net)
    assert net[0].weight.is_contiguous()
    assert net[1].weight.is_contiguous(memory_format=torch.channels_last)
    assert not net[1].weight.is_contiguous()
    out = net(torch.randn(2, 3, 16, 16))
    out.sum().backward()  # NCHW images in, NHWC activations after the stem
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert net[0].weight.grad is not None and net[1].weight.grad is not None
    seen = []
    def record(module: nn.Module, args: tuple, out: torch.Tensor) -> None:
        out.register_hook(lambda g: seen.append(g.is_contiguous()))

    net[0].register_forward_hook(record)
    net(torch.randn(2, 3, 16, 16)).sum().backward()
    assert seen == [True]  # the stem's backward gets an NCHW gradient
