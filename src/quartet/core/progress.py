"""Logging and progress bars shared by every system.

Progress bars are tqdm bars on stderr; they switch off by themselves when stderr is not a terminal and
``QUARTET_PROGRESS=1`` is not set (CI logs stay readable), and can be forced off with ``QUARTET_PROGRESS=0``.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")

_FMT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def get_logger(name: str) -> logging.Logger:
    """A logger under the ``quartet`` hierarchy, printing to stderr once configured."""
    root = logging.getLogger("quartet")
    if not root.handlers:
        h = logging.StreamHandler(sys.stderr)
        h.setFormatter(logging.Formatter(_FMT, datefmt="%H:%M:%S"))
        root.addHandler(h)
        root.setLevel(os.environ.get("QUARTET_LOG_LEVEL", "INFO"))
        root.propagate = False
    return logging.getLogger(name if name.startswith("quartet") else f"quartet.{name}")


def progress_enabled() -> bool:
    """Whether progress bars are shown."""
    flag = os.environ.get("QUARTET_PROGRESS")
    if flag is not None:
        return flag not in ("0", "false", "no", "")
    return sys.stderr.isatty()


def progress(iterable: Iterable[T], desc: str = "", total: int | None = None, unit: str = "it") -> Iterator[T]:
    """Wrap ``iterable`` in a progress bar (rate shown in ``unit``/s)."""
    return iter(tqdm(iterable, desc=desc, total=total, unit=unit, disable=not progress_enabled(), dynamic_ncols=True))


def progress_bar(total: int | None, desc: str = "", unit: str = "it") -> tqdm:
    """A manual progress bar: call ``.update(n)``; use as a context manager."""
    return tqdm(total=total, desc=desc, unit=unit, disable=not progress_enabled(), dynamic_ncols=True)
