"""Run folders: every run keeps its resolved config, metrics, plots and a result summary.

Layout of a run folder::

    <runs>/<YYYYmmdd-HHMMSS>-<name>/
        config.yaml     the resolved config (``--config`` reads it back)
        metrics.jsonl   one JSON object per logged step, appended and flushed as the run goes
        plots/          PNG figures
        result.json     the final summary (written atomically at the end)
        checkpoints/    whatever the recipe saves to resume
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from quartet.core.config import dump_yaml
from quartet.core.errors import QuartetError
from quartet.core.io import atomic_write_json, atomic_write_text, read_json
from quartet.core.paths import runs_dir


def _clean(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    if hasattr(v, "item") and callable(v.item):
        try:
            return _clean(v.item())
        except (ValueError, RuntimeError):
            pass
    if isinstance(v, dict):
        return {str(k): _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    if isinstance(v, Path):
        return str(v)
    return v


class RunDir:
    """A run folder. ``RunDir.create`` makes a new one; ``RunDir(path)`` opens an existing one (to resume)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        (self.path / "plots").mkdir(exist_ok=True)

    @classmethod
    def create(cls, name: str, root: str | Path | None = None, config: Any = None, exist_ok: bool = False) -> RunDir:
        """A new folder ``<root>/<timestamp>-<name>`` (or exactly ``root`` when ``exist_ok`` and it is given as the
        full path via ``name=""``), with ``config.yaml`` written if ``config`` is given."""
        base = Path(root) if root is not None else runs_dir()
        path = base / f"{time.strftime('%Y%m%d-%H%M%S')}-{name}" if name else base
        if path.exists() and any(path.iterdir()) and not exist_ok:
            raise QuartetError(f"run folder {path} exists and is not empty; pick another name or resume it")
        run = cls(path)
        if config is not None:
            run.write_config(config)
        return run

    # --- files -------------------------------------------------------------------------------------------------
    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def checkpoints(self) -> Path:
        p = self.path / "checkpoints"
        p.mkdir(exist_ok=True)
        return p

    def plot_path(self, name: str) -> Path:
        """Where to save a figure called ``name`` (``.png`` added if missing)."""
        return self.path / "plots" / (name if name.endswith(".png") else f"{name}.png")

    def write_config(self, cfg: Any) -> Path:
        return atomic_write_text(self.path / "config.yaml", dump_yaml(cfg))

    def log(self, metrics: dict[str, Any], **extra: Any) -> None:
        """Append one record to ``metrics.jsonl`` (flushed at once so a crash loses nothing logged)."""
        rec = _clean({**metrics, **extra, "time": time.time()})
        with open(self.metrics_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(rec) + "\n")
            f.flush()

    def read_metrics(self) -> list[dict[str, Any]]:
        """All logged records; a torn last line (crash mid-write) is ignored."""
        if not self.metrics_path.exists():
            return []
        out = []
        for line in self.metrics_path.read_text(encoding="utf-8").splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return out

    def write_result(self, result: dict[str, Any]) -> Path:
        return atomic_write_json(self.path / "result.json", _clean(result))

    def read_result(self) -> dict[str, Any]:
        return read_json(self.path / "result.json")

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"
