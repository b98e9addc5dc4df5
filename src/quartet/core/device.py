"""Device selection and mixed precision, the same code on CPU, CUDA and Apple MPS."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from quartet.core.errors import QuartetError


def pick_device(override: str | None = None) -> torch.device:
    """``override`` if given ("cpu", "cuda", "cuda:1", "mps"), else CUDA, then MPS, then CPU."""
    if override and override != "auto":
        dev = torch.device(override)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise QuartetError(f"device {override!r} requested but CUDA is not available; use --device cpu")
        if dev.type == "mps" and not torch.backends.mps.is_available():
            raise QuartetError(f"device {override!r} requested but MPS is not available; use --device cpu")
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def autocast(device: torch.device, enabled: bool = True) -> contextlib.AbstractContextManager[None]:
    """bf16 autocast on CUDA (and MPS); a no-op on CPU, where fp32 is faster for small models."""
    if not enabled or device.type == "cpu":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


@contextlib.contextmanager
def num_threads(n: int | None) -> Iterator[None]:
    """Temporarily set PyTorch's intra-op thread count (``None`` leaves it alone)."""
    if n is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def synchronize(device: torch.device) -> None:
    """Wait for queued kernels (for timing)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()
