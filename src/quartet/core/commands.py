"""How systems declare CLI verbs.

Each system has a light ``quartet.<system>.cli`` module (no heavy imports at module level) with::

    COMMANDS: dict[str, tuple[str, str]] = {"train": ("quartet.lm.train:main", "train a model"), ...}

Each target is ``"module:function"``; the function takes ``argv: list[str]`` and returns an exit code or ``None``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

Command = tuple[str, str]


def resolve(target: str) -> Callable[[list[str]], int | None]:
    """Import ``"module:function"`` and return the function."""
    mod_name, _, fn_name = target.partition(":")
    mod = importlib.import_module(mod_name)
    return getattr(mod, fn_name or "main")
