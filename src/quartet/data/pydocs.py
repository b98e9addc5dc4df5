"""Python 3.11 documentation sources: 497 reStructuredText pages (median ~3,100 GPT-2 tokens, max ~72,000).

Source: Debian ``python3.11-doc`` (``/usr/share/doc/python3.11/html/_sources/**/*.rst.txt``). When the package is
not installed system-wide, :func:`install` runs ``apt-get download python3.11-doc`` and ``dpkg -x`` into the cache
(no root needed). Document id = path relative to ``_sources`` without ``.rst.txt`` (``library/os``); title = the
first heading. Reading all pages takes ~0.5 s. Licence: PSF-2.0 (Python documentation).
"""

from __future__ import annotations

import itertools
from pathlib import Path

from quartet.core.errors import SourceMissingError
from quartet.core.paths import cache_dir
from quartet.data.cache import cached_corpus
from quartet.data.common import run_command
from quartet.data.types import Corpus, Document

PACKAGE = "python3.11-doc"
SYSTEM_ROOT = Path("/usr/share/doc/python3.11/html/_sources")
SUFFIX = ".rst.txt"
LICENCE = "PSF-2.0 (Python documentation)"
INSTALL_HINT = (
    f"install the Debian package with `sudo apt-get install {PACKAGE}` "
    "or run `quartet data install pydocs` (apt-get download + dpkg -x into the cache)"
)


def extracted_root() -> Path:
    """Where :func:`install` unpacks the package."""
    return cache_dir("data", "pydocs") / "root"


def source_root() -> Path | None:
    """The ``_sources`` folder: the system one, else the one unpacked in the cache, else ``None``."""
    for root in (SYSTEM_ROOT, extracted_root() / SYSTEM_ROOT.relative_to("/")):
        if root.is_dir() and any(root.glob(f"*{SUFFIX}")):
            return root
    return None


def is_installed() -> bool:
    """Whether the documentation sources are available."""
    return source_root() is not None


def install() -> None:
    """Download and unpack ``python3.11-doc`` into the cache unless the sources are already available."""
    if is_installed():
        return
    folder = cache_dir("data", "pydocs")
    for old in folder.glob(f"{PACKAGE}_*.deb"):
        old.unlink()
    run_command(["apt-get", "download", PACKAGE], PACKAGE, cwd=folder)
    debs = sorted(folder.glob(f"{PACKAGE}_*.deb"))
    if not debs:
        raise SourceMissingError(f"apt-get download {PACKAGE} produced no .deb in {folder}")
    run_command(["dpkg", "-x", str(debs[-1]), str(extracted_root())], f"{PACKAGE} (dpkg -x)")


def first_heading(text: str) -> str:
    """The first reStructuredText section title (a line underlined with ``=``, ``-``, ``*`` or ``#``)."""
    lines = text.splitlines()
    for a, b in itertools.pairwise(lines):
        s = b.strip()
        if a.strip() and not a.startswith((" ", "..")) and len(s) >= 3 and len(set(s)) == 1 and s[0] in "=-*#~^":
            return a.strip()
    return ""


def count() -> int:
    """Number of ``.rst.txt`` pages (497 for Python 3.11)."""
    root = source_root()
    return len(list(root.rglob(f"*{SUFFIX}"))) if root else 0


def load_pydocs(refresh: bool = False) -> Corpus:
    """The Python documentation corpus: one document per page, sorted by path."""

    def build() -> Corpus:
        root = source_root()
        if root is None:
            raise SourceMissingError(f"{SYSTEM_ROOT} not found: {INSTALL_HINT}")
        docs = []
        for p in sorted(root.rglob(f"*{SUFFIX}")):
            text = p.read_text(encoding="utf-8", errors="replace")
            docs.append(Document(id=str(p.relative_to(root))[: -len(SUFFIX)], text=text, title=first_heading(text)))
        return Corpus("pydocs", docs, {"source": str(root), "licence": LICENCE})

    return cached_corpus("pydocs", "docs", build, refresh)
