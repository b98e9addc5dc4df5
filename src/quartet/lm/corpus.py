"""Documents for LM pre-training: ``quartet.data`` corpora (``debian``, ``pydocs``, ``stdlib``...) or files.

``source`` is a comma-separated list; each item is a registered corpus name or a path: ``.jsonl`` (one JSON object
per line with a ``text`` field; ``id`` optional), ``.txt``/``.md``/``.rst`` (one document per file) or a folder of
such files. Bad input never passes silently: empty or whitespace-only documents are skipped and counted, bytes that
are not UTF-8 are replaced (U+FFFD) and the documents counted, JSONL lines without text are counted, and a line that is
not JSON is an error naming the file and line.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from quartet.core.errors import QuartetError
from quartet.core.progress import get_logger

log = get_logger("lm.corpus")

TEXT_SUFFIXES = (".txt", ".md", ".rst")


@dataclass
class Docs:
    """Document ids and texts plus counts of what was skipped or repaired on the way in."""

    ids: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    skipped_empty: int = 0
    repaired_utf8: int = 0
    skipped_no_text: int = 0
    sources: list[str] = field(default_factory=list)

    def add(self, doc_id: str, text: str) -> None:
        if not text or not text.strip():
            self.skipped_empty += 1
            return
        self.ids.append(doc_id)
        self.texts.append(text)

    def counts(self) -> dict[str, int]:
        return {"documents": len(self.texts), "skipped_empty": self.skipped_empty,
                "repaired_utf8": self.repaired_utf8, "skipped_no_text": self.skipped_no_text}


def _decode(raw: bytes, docs: Docs) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        docs.repaired_utf8 += 1
        return raw.decode("utf-8", errors="replace")


def _load_registered(name: str, docs: Docs) -> None:
    data = importlib.import_module("quartet.data")
    loader = getattr(data, "load", None)
    if callable(loader):
        corpus = loader(name)
    else:
        try:
            mod = importlib.import_module(f"quartet.data.{name}")
        except ModuleNotFoundError as e:
            raise QuartetError(f"unknown corpus {name!r}: not a file and not a quartet.data corpus") from e
        corpus = getattr(mod, f"load_{name}")()
    if not hasattr(corpus, "docs"):
        raise QuartetError(f"{name!r} is a {type(corpus).__name__}, not a text corpus; use debian, pydocs, stdlib, "
                           f"fortunes or a .jsonl/.txt path")
    for d in corpus.docs:
        docs.add(f"{name}/{d.id}", d.text)


def _load_jsonl(path: Path, docs: Docs) -> None:
    with open(path, "rb") as f:
        for i, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            line = _decode(raw, docs)
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise QuartetError(f"{path}:{i} is not valid JSON ({e.msg}); fix or remove that line") from e
            text = obj.get("text") if isinstance(obj, dict) else None
            if not isinstance(text, str):
                docs.skipped_no_text += 1
                continue
            docs.add(str(obj.get("id", f"{path.name}:{i}")), text)


def load_documents(source: str, limit: int | None = None) -> Docs:
    """All documents of ``source`` (see module doc), at most ``limit`` per item when given."""
    docs = Docs()
    for item in [s.strip() for s in source.split(",") if s.strip()]:
        before = len(docs.texts)
        p = Path(item)
        if p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.is_file() and (f.suffix in TEXT_SUFFIXES or
                                                                        f.name.endswith(".jsonl")))
            if not files:
                raise QuartetError(f"folder {p} holds no .txt/.md/.rst/.jsonl files")
        elif p.is_file():
            files = [p]
        elif p.suffix or "/" in item:
            raise QuartetError(f"corpus file {p} not found")
        else:
            files = []
            _load_registered(item, docs)
        for f in files:
            if f.name.endswith(".jsonl"):
                _load_jsonl(f, docs)
            else:
                docs.add(str(f), _decode(f.read_bytes(), docs))
        if limit is not None and len(docs.texts) - before > limit:
            del docs.ids[before + limit:]
            del docs.texts[before + limit:]
        docs.sources.append(item)
    if not docs.texts:
        raise QuartetError(f"corpus {source!r} has no non-empty documents ({docs.counts()})")
    c = docs.counts()
    if c["skipped_empty"] or c["repaired_utf8"] or c["skipped_no_text"]:
        log.warning("corpus %s: skipped %d empty/whitespace documents and %d JSONL lines without text; "
                    "%d documents had non-UTF-8 bytes (replaced)", source, c["skipped_empty"], c["skipped_no_text"],
                    c["repaired_utf8"])
    return docs


def is_heldout(doc_id: str, fraction: float) -> bool:
    """Deterministic train/held-out split by a hash of the document id (stable across runs and machines)."""
    h = int.from_bytes(hashlib.sha1(doc_id.encode("utf-8")).digest()[:8], "big")
    return (h % 1_000_000) < fraction * 1_000_000
