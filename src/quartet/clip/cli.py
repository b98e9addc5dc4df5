"""CLI verbs of ``quartet clip``: dataset reinforcement (``cli_reinforce``) and training/evaluation (``cli_train``)."""

from __future__ import annotations

import importlib

COMMANDS: dict[str, tuple[str, str]] = {}
for _part in ("quartet.clip.cli_reinforce", "quartet.clip.cli_train"):
    try:
        COMMANDS.update(importlib.import_module(_part).COMMANDS)
    except ModuleNotFoundError as _e:
        if not (_e.name and _part.startswith(_e.name)):
            raise
