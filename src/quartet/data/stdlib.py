"""Python standard library source: ~1,790 ``.py`` files (31.5 M characters) of the running interpreter.

Source: ``sysconfig.get_paths()["stdlib"]`` (present on every machine); ``site-packages`` / ``dist-packages`` are
excluded, tests included. Document id = path relative to the stdlib folder. Licence: PSF-2.0.
"""

from __future__ import annotations

import os
import sys
import sysconfig
from pathlib import Path

from quartet.core.errors import SourceMissingError
from quartet.data.cache import cached_corpus
from quartet.data.types import Corpus, Document

LICENCE = "PSF-2.0 (Python standard library)"
EXCLUDED = frozenset({"site-packages", "dist-packages", "__pycache__"})
ROOT: Path | None = None
"""Override for the standard library folder; ``None`` asks ``sysconfig``."""


def stdlib_root() -> Path:
    """The standard library folder of this interpreter."""
    return ROOT if ROOT is not None else Path(sysconfig.get_paths()["stdlib"])


def source_files() -> list[Path]:
    """All ``.py`` files of the standard library, sorted, outside :data:`EXCLUDED` folders."""
    out = []
    for folder, dirs, files in os.walk(stdlib_root()):
        dirs[:] = [d for d in dirs if d not in EXCLUDED]
        out += [Path(folder) / f for f in files if f.endswith(".py")]
    return sorted(out)


def is_installed() -> bool:
    """Whether the standard library sources are present (they are missing in some stripped interpreters)."""
    return (stdlib_root() / "os.py").is_file()


def count() -> int:
    """Number of ``.py`` files."""
    return len(source_files())


def install() -> None:
    """Nothing to install: the sources come with Python."""


def load_stdlib(refresh: bool = False) -> Corpus:
    """The standard library corpus: one document per ``.py`` file, sorted by path."""
    key = f"py{sys.version_info.major}{sys.version_info.minor}"

    def build() -> Corpus:
        root = stdlib_root()
        if not is_installed():
            raise SourceMissingError(f"{root}/os.py not found: install the Python standard library sources "
                                     f"(e.g. `sudo apt-get install libpython3-stdlib`)")
        docs = [Document(id=str(p.relative_to(root)), text=p.read_text(encoding="utf-8", errors="replace"),
                         title=p.stem) for p in source_files()]
        return Corpus("stdlib", docs, {"source": str(root), "licence": LICENCE})

    return cached_corpus("stdlib", key, build, refresh)
