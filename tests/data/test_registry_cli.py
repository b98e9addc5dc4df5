from __future__ import annotations

import importlib

import pytest
from PIL import Image

from quartet.core.errors import QuartetError
from quartet.data import list_datasets, load
from quartet.data.cli import COMMANDS
from quartet.data.registry import REGISTRY, get

EXPECTED = {"emoji", "openclipart", "openmoji", "fashion_mnist", "digits", "debian", "pydocs", "stdlib", "fortunes",
            "shapes"}


def test_registry_names_and_kinds() -> None:
    assert EXPECTED <= set(REGISTRY)
    assert [i.name for i in list_datasets()] == list(REGISTRY)
    assert get("shapes").is_installed() and get("shapes").count() > 0
    with pytest.raises(QuartetError, match="known"):
        get("nope")
    assert len(load("shapes", n=4, size=16)) == 4


def test_commands_resolve() -> None:
    assert set(COMMANDS) == {"list", "show", "install"}
    for target, help_text in COMMANDS.values():
        module, func = target.split(":")
        assert callable(getattr(importlib.import_module(module), func)) and help_text


def test_list_shows_counts(capsys) -> None:
    from quartet.data.cli import list_main

    assert list_main([]) == 0
    out = capsys.readouterr().out
    assert "3,655" in out and "70,000" in out and "1,797" in out
    assert "shapes" in out and "licence" in out


def test_show_image_and_corpus(tmp_path, capsys) -> None:
    from quartet.data.cli import show_main

    out = tmp_path / "s.png"
    assert show_main(["shapes", "--out", str(out), "--n", "12"]) == 0
    assert str(out) in capsys.readouterr().out
    assert Image.open(out).size[0] > 100
    out2 = tmp_path / "c.png"
    assert show_main(["stdlib", "--out", str(out2), "--n", "5"]) == 0
    assert Image.open(out2).size[1] > 100


def test_install_noop_when_present(capsys) -> None:
    from quartet.data.cli import install_main

    assert install_main(["shapes", "stdlib"]) == 0
    assert "shapes: installed" in capsys.readouterr().out
