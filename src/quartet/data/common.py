"""Helpers shared by the importers: image fitting, parallel rendering, running install commands, source checks."""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TypeVar

import numpy as np
from PIL import Image

from quartet.core.errors import QuartetError, SourceMissingError

T = TypeVar("T")
R = TypeVar("R")

DEFAULT_SIZE = 64
"""Default side length (pixels) of rendered images."""


def fit_square(img: Image.Image, size: int, background: tuple[int, int, int] = (255, 255, 255)) -> np.ndarray:
    """Composite ``img`` (any mode) on ``background``, crop to its content's bounding box, pad to a centred square
    and resize to ``size`` x ``size``. Returns uint8 ``[size, size, 3]``."""
    rgba = img.convert("RGBA")
    bbox = rgba.getchannel("A").getbbox()
    if bbox is not None:
        rgba = rgba.crop(bbox)
    w, h = rgba.size
    side = max(w, h, 1)
    canvas = Image.new("RGBA", (side, side), (*background, 255))
    canvas.alpha_composite(rgba, ((side - w) // 2, (side - h) // 2))
    out = canvas.convert("RGB").resize((size, size), Image.Resampling.LANCZOS)
    return np.asarray(out, dtype=np.uint8)


def default_workers() -> int:
    """Processes used for rendering: the CPUs this process may use, at most 8 (``QUARTET_WORKERS`` overrides)."""
    env = os.environ.get("QUARTET_WORKERS")
    if env:
        return max(1, int(env))
    return max(1, min(8, len(os.sched_getaffinity(0))))


def parallel_map(fn: Callable[[T], R], items: Sequence[T], workers: int | None = None, desc: str = "") -> list[R]:
    """``[fn(x) for x in items]`` in order, spread over worker processes for long lists, with a progress bar."""
    from tqdm import tqdm

    from quartet.core.progress import progress_enabled

    workers = default_workers() if workers is None else workers
    show = len(items) > 200 and progress_enabled()
    if workers <= 1 or len(items) < 64:
        return [fn(x) for x in tqdm(items, desc=desc, disable=not show, leave=False)]
    chunk = max(1, len(items) // (workers * 16))
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(tqdm(pool.map(fn, items, chunksize=chunk), total=len(items), desc=desc, disable=not show,
                         leave=False))


def run_command(cmd: Iterable[str], what: str, cwd: Path | None = None, echo: bool = True) -> str:
    """Run a command (printed first when ``echo``) and return its stdout; raise :class:`SourceMissingError` naming
    ``what`` on failure."""
    args = [str(c) for c in cmd]
    if echo:
        print("$ " + shlex.join(args), flush=True)
    try:
        proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError as e:
        raise SourceMissingError(f"cannot install {what}: {args[0]} is not available ({e})") from e
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip()[-2000:]
        raise SourceMissingError(f"installing {what} failed ({shlex.join(args)} exited {proc.returncode}):\n{tail}")
    return proc.stdout


def require_path(path: Path, install_hint: str) -> Path:
    """``path`` if it exists, else :class:`SourceMissingError` with ``install_hint`` (what to install and how)."""
    if not path.exists():
        raise SourceMissingError(f"{path} not found: {install_hint}")
    return path


def check_limit(limit: int | None) -> None:
    """Reject a non-positive ``limit``."""
    if limit is not None and limit <= 0:
        raise QuartetError(f"limit must be a positive number of items, got {limit}")
