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


def adamw(params, device: torch.device | str, **kwargs) -> torch.optim.AdamW:
    """AdamW with PyTorch's fused single-kernel update where the device has one (CPU, CUDA).

    The default multi-tensor update walks every parameter ~10 times per step; for small models with large
    embedding tables that dominates a CPU step (measured 29% of a CLIP student step). Same maths either way."""
    dev = torch.device(device)
    fused = dev.type in ("cpu", "cuda")
    return torch.optim.AdamW(params, fused=fused, **kwargs)


def channels_last_for_training(module: torch.nn.Module) -> torch.nn.Module:
    """Put a conv network's weights in NHWC (channels-last) for training, in place; returns ``module``.

    NHWC makes CPU depthwise-conv backward several times faster. Strided 1x1 convolutions (MobileOne's scale
    branch in a stride-2 stem or downsample) become "subsample, then stride-1 1x1" (:class:`SubsampledPointwiseConv`,
    the same function and parameters): oneDNN's weight gradient of a strided 1x1 convolution in the pinned torch
    build corrupts the heap ("double free or corruption") or never returns once it runs beside NHWC layers."""
    module.to(memory_format=torch.channels_last)
    subsample_strided_pointwise(module)
    return module


class SubsampledPointwiseConv(torch.nn.Conv2d):
    """A 1x1, unpadded, strided ``Conv2d`` computed as ``x[..., ::s, ::s]`` followed by a stride-1 1x1 convolution.

    Identical outputs, gradients, parameters and state-dict keys; it only keeps the convolution off oneDNN's strided
    1x1 kernels."""

    def _conv_forward(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        sh, sw = self.stride
        return torch.nn.functional.conv2d(x[:, :, ::sh, ::sw], weight, bias, 1, 0, self.dilation, self.groups)


def subsample_strided_pointwise(module: torch.nn.Module) -> int:
    """Turn every strided, unpadded 1x1 ``Conv2d`` in ``module`` into a :class:`SubsampledPointwiseConv`, in place;
    returns how many were changed."""
    n = 0
    for m in module.modules():
        if (type(m) is torch.nn.Conv2d and m.kernel_size == (1, 1) and m.stride != (1, 1)
                and m.padding in ((0, 0), 0) and m.padding_mode == "zeros"):
            m.__class__ = SubsampledPointwiseConv
            n += 1
    return n


_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4  # glibc mallopt parameters (malloc.h)


def reuse_freed_cpu_memory(enable: bool = True) -> bool:
    """Serve large CPU tensors from glibc's heap instead of a fresh ``mmap`` each time (``mallopt``), process-wide.

    glibc maps every allocation above its mmap threshold (<= 32 MiB) afresh and unmaps it on free, so a forward pass
    over big activations page-faults its memory in again every call (FastViTHD at 1024 px: ~520k minor faults per
    forward on CPU, i.e. ~2 GB zero-filled). With mmap off and a high trim threshold, freed blocks are reused, as
    CUDA's caching allocator or jemalloc would. The process keeps its peak heap instead of returning it to the OS.
    ``enable=False`` restores glibc's defaults for later allocations. Returns whether glibc took the settings (False
    on other C libraries, where nothing changes)."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    if enable:
        return bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, 1 << 30))
    return bool(mallopt(_M_MMAP_MAX, 65536)) and bool(mallopt(_M_TRIM_THRESHOLD, 128 * 1024))
