"""Where things live: the repository, the ``shared/`` folder beside it, the cache and run folders.

Every location can be overridden by an environment variable so installed copies and clusters work the same way:

- ``QUARTET_SHARED``: the shared folder (specs, real data); default ``<repo>/../shared``.
- ``QUARTET_CACHE``: decoded/rendered datasets, downloaded tokenizer files; default ``~/.cache/quartet``.
- ``QUARTET_RUNS``: where run folders are created; default ``./runs``.
"""

from __future__ import annotations

import os
from pathlib import Path

from quartet.core.errors import SourceMissingError


def repo_root() -> Path:
    """The source checkout (the folder holding ``pyproject.toml``), located from this file."""
    return Path(__file__).resolve().parents[3]


def shared_dir() -> Path:
    """The ``shared/`` folder with specs and real data; raises a clear error when it cannot be found."""
    env = os.environ.get("QUARTET_SHARED")
    candidates = [Path(env)] if env else []
    candidates += [repo_root().parent / "shared", Path.cwd().parent / "shared", Path.cwd() / "shared"]
    for c in candidates:
        if (c / "data").is_dir():
            return c.resolve()
    raise SourceMissingError(
        "cannot find the shared/ folder (tried: " + ", ".join(str(c) for c in candidates) + "); "
        "set QUARTET_SHARED=/path/to/shared"
    )


def shared_data(*parts: str) -> Path:
    """A path below ``shared/data``."""
    return shared_dir().joinpath("data", *parts)


def cache_dir(*parts: str) -> Path:
    """A folder below the cache root, created on demand."""
    root = Path(os.environ.get("QUARTET_CACHE", Path.home() / ".cache" / "quartet"))
    p = root.joinpath(*parts)
    p.mkdir(parents=True, exist_ok=True)
    return p


def runs_dir() -> Path:
    """The root below which run folders are created."""
    return Path(os.environ.get("QUARTET_RUNS", "runs"))
