"""Debian long package descriptions: ~61,800 short English documents (median ~79 GPT-2 tokens, p95 ~213).

Source: the ``i18n/Translation-en`` lists of Debian bookworm (main, updates, security), fetched by :func:`install`
with ``apt-get update -o Acquire::Languages=en -o Dir::State::Lists=<cache>/apt-lists`` (~35 MB of text, lz4
compressed) and read with ``apt-helper cat-file``. Records are split on blank lines; each document is the one-line
synopsis followed by the long description (leading space removed, ``.`` separator lines turned into blank lines).
The id is ``Description-md5`` (duplicates across suites kept once, first list in name order wins); the title is
the package name. Together with the long Python docs this gives the heavy-tailed length distribution Dataset
Decomposition studies. Parsing takes ~2 s; cached loads ~0.5 s. Licence: each description carries its package's
licence (DFSG-free for main).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from quartet.core.errors import SourceMissingError
from quartet.core.paths import cache_dir
from quartet.data.cache import cached_corpus, cached_count
from quartet.data.common import run_command
from quartet.data.types import Corpus, Document

APT_HELPER = Path("/usr/lib/apt/apt-helper")
LISTS_DIR: Path | None = None
"""Override for the apt lists folder; ``None`` uses ``<cache>/data/debian/apt-lists``."""
PATTERN = "*i18n_Translation-en.lz4"
LICENCE = "per-package (Debian main: DFSG-free licences)"
INSTALL_HINT = "run `quartet data install debian` (runs `apt-get update` into the quartet cache; needs apt and network)"


def lists_dir() -> Path:
    """Where the apt lists with the English descriptions live."""
    return LISTS_DIR if LISTS_DIR is not None else cache_dir("data", "debian") / "apt-lists"


def translation_files() -> list[Path]:
    """The fetched ``Translation-en`` lists, sorted by name."""
    d = lists_dir()
    return sorted(d.glob(PATTERN)) if d.is_dir() else []


def is_installed() -> bool:
    """Whether the English description lists have been fetched."""
    return bool(translation_files()) and APT_HELPER.is_file()


def install() -> None:
    """Fetch the apt lists (English descriptions only) into the cache; nothing to do when already there."""
    if is_installed():
        return
    if shutil.which("apt-get") is None or not APT_HELPER.is_file():
        raise SourceMissingError("Debian descriptions need apt (apt-get and /usr/lib/apt/apt-helper)")
    d = lists_dir()
    (d / "partial").mkdir(parents=True, exist_ok=True)
    run_command(["apt-get", "update", "-o", "Acquire::Languages=en", "-o", f"Dir::State::Lists={d}",
                 "-o", "Dir::Cache::pkgcache=", "-o", "Dir::Cache::srcpkgcache="], "Debian package lists")


def parse_translations(text: str) -> list[Document]:
    """Documents from ``Translation-en`` text: synopsis + long description, id = Description-md5."""
    docs: list[Document] = []
    seen: set[str] = set()
    for record in text.split("\n\n"):
        package = md5 = ""
        lines: list[str] = []
        for line in record.splitlines():
            if line.startswith("Package: "):
                package = line[9:].strip()
            elif line.startswith("Description-md5: "):
                md5 = line[17:].strip()
            elif line.startswith("Description-"):
                lines.append(line.split(":", 1)[1].strip())
            elif line.startswith(" ") and lines:
                body = line[1:]
                lines.append("" if body.strip() == "." else body)
        if md5 and lines and md5 not in seen:
            seen.add(md5)
            docs.append(Document(id=md5, text="\n".join(lines).strip(), title=package))
    return docs


def count() -> int:
    """Number of distinct descriptions (recorded beside the cached corpus; parses the lists once otherwise)."""
    return cached_count("debian", "docs", load_debian)


def load_debian(refresh: bool = False) -> Corpus:
    """The Debian description corpus (~61,800 documents; ``title`` = package name)."""

    def build() -> Corpus:
        files = translation_files()
        if not files or not APT_HELPER.is_file():
            raise SourceMissingError(f"no Debian description lists in {lists_dir()}: {INSTALL_HINT}")
        text = run_command([APT_HELPER, "cat-file", *files], "Debian descriptions (apt-helper cat-file)",
                           echo=False)
        docs = parse_translations(text)
        meta = {"source": ", ".join(f.name for f in files), "licence": LICENCE, "files": len(files)}
        return Corpus("debian", docs, meta)

    return cached_corpus("debian", "docs", build, refresh)
