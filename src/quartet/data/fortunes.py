"""Fortune cookies: ~15,200 short quotes, jokes and poems (optional corpus).

Source: Debian ``fortunes`` (``/usr/share/games/fortunes/<topic>``, quotes separated by ``%`` lines; the ``.dat``
indexes and ``.u8`` copies are skipped). Document id = ``<topic>/<index>``; title = the topic. Licence: public domain /
BSD-style (fortune-mod collection; individual quotes belong to their authors).
"""

from __future__ import annotations

import re
from pathlib import Path

from quartet.core.errors import SourceMissingError
from quartet.data.cache import cached_corpus, cached_count
from quartet.data.common import run_command
from quartet.data.types import Corpus, Document

ROOT = Path("/usr/share/games/fortunes")
LICENCE = "public domain / BSD-style (fortune-mod collection)"
INSTALL_HINT = "install the Debian package with `sudo apt-get install fortunes`"
_SEP = re.compile(r"^%\s*$", re.M)


def topic_files() -> list[Path]:
    """The fortune files (no extension), sorted."""
    if not ROOT.is_dir():
        return []
    return sorted(p for p in ROOT.iterdir() if p.is_file() and not p.suffix)


def is_installed() -> bool:
    """Whether any fortune file is present."""
    return bool(topic_files())


def count() -> int:
    """Number of quotes."""
    return cached_count("fortunes", "docs", load_fortunes)


def install() -> None:
    """Install the Debian package when it is missing."""
    if not is_installed():
        run_command(["apt-get", "install", "-y", "fortunes"], "fortunes")


def load_fortunes(refresh: bool = False) -> Corpus:
    """The fortunes corpus: one document per quote."""

    def build() -> Corpus:
        files = topic_files()
        if not files:
            raise SourceMissingError(f"no fortune files in {ROOT}: {INSTALL_HINT}")
        docs = []
        for f in files:
            text = f.read_bytes().decode("utf-8", errors="replace")
            quotes = [q.strip("\n") for q in _SEP.split(text) if q.strip()]
            docs += [Document(id=f"{f.name}/{i}", text=q, title=f.name) for i, q in enumerate(quotes)]
        return Corpus("fortunes", docs, {"source": str(ROOT), "licence": LICENCE})

    return cached_corpus("fortunes", "docs", build, refresh)
