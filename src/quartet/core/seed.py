"""Seeding and determinism."""

from __future__ import annotations

import os
import random

import numpy as np


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and (if installed) PyTorch on every device."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    os.environ["PYTHONHASHSEED"] = str(seed)
    try:
        import torch
    except ImportError:
        return
    torch.manual_seed(seed)


def set_deterministic(enabled: bool = True) -> None:
    """Ask PyTorch for deterministic kernels (slower on GPU; CPU kernels are deterministic already)."""
    import torch

    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(enabled, warn_only=True)
    if torch.backends.cudnn.is_available():
        torch.backends.cudnn.benchmark = not enabled
        torch.backends.cudnn.deterministic = enabled


def numpy_rng(seed: int, *stream: int) -> np.random.Generator:
    """An independent NumPy generator for ``(seed, *stream)``: e.g. ``numpy_rng(seed, epoch, rank)``."""
    return np.random.default_rng(np.random.SeedSequence([seed, *stream]))
