"""File I/O that never leaves a half-written file under a final name.

Long jobs (reinforcement, decomposition, training) write shards and checkpoints with these helpers: data goes to a
temporary file in the same folder, is flushed and fsync'ed, then renamed over the final name (atomic on POSIX).
A crash at any point leaves either the old file or the new one, never a truncated one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from quartet.core.errors import DataCorruptError, QuartetError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed to ``path``, on error it is removed.

    Use this for writers that need a filename (``np.save``, ``tarfile.open``, ``torch.save``)."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp_path, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike[str], obj: Any, indent: int | None = 2) -> Path:
    """Write ``obj`` as JSON to ``path`` atomically (keys kept in insertion order, non-finite floats refused)."""
    return atomic_write_text(path, json.dumps(obj, indent=indent, allow_nan=False) + "\n")


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read a JSON file, with an error naming the file when it is missing or invalid."""
    p = Path(path)
    if not p.is_file():
        raise QuartetError(f"{p}: file not found")
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataCorruptError(f"{p}: not valid JSON ({e}); delete or regenerate it") from e


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def safe_extract(tar: tarfile.TarFile, dest: str | os.PathLike[str]) -> list[Path]:
    """Extract regular files and folders of ``tar`` into ``dest``, refusing absolute paths, ``..`` components,
    links and device files (path-traversal guard). Returns the extracted file paths."""
    root = Path(dest).resolve()
    root.mkdir(parents=True, exist_ok=True)
    members = tar.getmembers()
    for m in members:
        target = (root / m.name).resolve()
        if not (target == root or root in target.parents):
            raise DataCorruptError(f"refusing to extract {m.name!r}: it would land outside {root}")
        if not (m.isfile() or m.isdir()):
            raise DataCorruptError(f"refusing to extract {m.name!r}: links and special files are not allowed")
    out = []
    for m in members:
        tar.extract(m, root, filter="data")
        if m.isfile():
            out.append(root / m.name)
    return out
