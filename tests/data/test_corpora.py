from __future__ import annotations

import time

import pytest

from quartet.core.errors import SourceMissingError
from quartet.data import debian, fortunes, load, pydocs, stdlib


def test_debian(installed) -> None:
    installed("debian")
    c = load("debian")
    assert len(c) >= 60_000 and debian.count() == len(c)
    ids = c.ids()
    assert len(set(ids)) == len(ids) and all(len(i) == 32 for i in ids[:100])
    by_pkg = {d.title: d for d in c.docs[:2000]}
    assert "7zip" in by_pkg and by_pkg["7zip"].text.startswith("7-Zip file archiver")
    t = time.perf_counter()
    again = load("debian")
    assert time.perf_counter() - t < 5.0
    assert again.ids() == ids and again.texts()[:100] == c.texts()[:100]


def test_debian_parse() -> None:
    text = ("Package: foo\nDescription-md5: " + "a" * 32 + "\nDescription-en: the foo tool\n first line\n .\n"
            " second para\n\nPackage: foo2\nDescription-md5: " + "a" * 32 + "\nDescription-en: duplicate\n")
    docs = debian.parse_translations(text)
    assert len(docs) == 1 and docs[0].title == "foo"
    assert docs[0].text == "the foo tool\nfirst line\n\nsecond para"


def test_debian_missing_source(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(debian, "LISTS_DIR", tmp_path / "missing")
    assert not debian.is_installed()
    with pytest.raises(SourceMissingError, match="quartet data install debian"):
        debian.load_debian(refresh=True)


def test_pydocs(installed) -> None:
    installed("pydocs")
    c = pydocs.load_pydocs()
    assert 480 <= len(c) <= 520 and pydocs.count() == len(c)
    docs = {d.id: d for d in c.docs}
    assert "library/os" in docs and docs["library/os"].title.startswith(":mod:`os`")
    assert pydocs.load_pydocs().ids() == c.ids()


def test_pydocs_missing_source(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(pydocs, "SYSTEM_ROOT", tmp_path / "missing" / "_sources")
    monkeypatch.setattr(pydocs, "extracted_root", lambda: tmp_path / "none")
    with pytest.raises(SourceMissingError, match="python3.11-doc"):
        pydocs.load_pydocs(refresh=True)


def test_stdlib() -> None:
    c = stdlib.load_stdlib()
    assert len(c) > 1000 and "os.py" in c.ids()
    assert sum(len(t) for t in c) > 10_000_000
    assert stdlib.load_stdlib().ids() == c.ids()


def test_stdlib_missing_source(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(stdlib, "ROOT", tmp_path)
    with pytest.raises(SourceMissingError, match="standard library"):
        stdlib.load_stdlib(refresh=True)


def test_fortunes(installed) -> None:
    installed("fortunes")
    c = fortunes.load_fortunes()
    assert len(c) > 10_000 and all(t.strip() for t in c.texts()[:100])
    assert fortunes.load_fortunes().ids() == c.ids()
