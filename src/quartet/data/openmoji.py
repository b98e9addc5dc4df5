"""OpenMoji image-text pairs: 4,495 colour emoji in a flat, outlined drawing style (unlike Noto's glossy one).

Source: npm ``openmoji@17.0.0``, installed by :func:`install` under the cache folder (``npm install --prefix``,
~70 MB). ``data/openmoji.json`` gives each emoji's annotation (caption, e.g. "grinning face"), tags, group
(label; 12 groups including OpenMoji's own ``extras-openmoji``) and subgroup; ``color/svg/<hexcode>.svg`` is drawn
with cairosvg (~30 ms each) and cached. Useful for cross-style evaluation of models trained on Noto emoji.
Licence: CC BY-SA 4.0 (attribution "OpenMoji"; derived images and datasets must be shared alike).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from quartet.core.paths import cache_dir
from quartet.data.cache import cached_images
from quartet.data.common import DEFAULT_SIZE, check_limit, parallel_map, require_path, run_command
from quartet.data.openclipart import render_svg
from quartet.data.types import ImageTextDataset

VERSION = "17.0.0"
PACKAGE_DIR: Path | None = None
"""Override for the installed ``openmoji`` package folder; ``None`` uses the cache's npm prefix."""
LICENCE = "CC BY-SA 4.0 (OpenMoji, https://openmoji.org; share derived data alike)"
INSTALL_HINT = "run `quartet data install openmoji` (needs npm; runs `npm install openmoji@17.0.0` in the cache)"


def npm_prefix() -> Path:
    """The npm prefix folder that :func:`install` installs into."""
    return cache_dir("data", "openmoji", "npm")


def package_dir() -> Path:
    """The installed ``openmoji`` npm package folder (may not exist yet)."""
    return PACKAGE_DIR if PACKAGE_DIR is not None else npm_prefix() / "node_modules" / "openmoji"


def is_installed() -> bool:
    """Whether openmoji@17.0.0 is installed where the loader looks."""
    pkg = package_dir() / "package.json"
    if not pkg.is_file() or not (package_dir() / "data" / "openmoji.json").is_file():
        return False
    return json.loads(pkg.read_text(encoding="utf-8")).get("version") == VERSION


def install() -> None:
    """``npm install openmoji@17.0.0`` into the cache (no scripts run); does nothing when already installed."""
    if is_installed():
        return
    run_command(["npm", "install", "--prefix", str(npm_prefix()), "--no-audit", "--no-fund", "--ignore-scripts",
                 f"openmoji@{VERSION}"], "OpenMoji (npm)")


def read_entries() -> list[dict[str, str]]:
    """The entries of ``data/openmoji.json`` whose colour SVG exists, in OpenMoji's order."""
    root = package_dir()
    entries = json.loads(require_path(root / "data" / "openmoji.json", INSTALL_HINT).read_text(encoding="utf-8"))
    return [e for e in entries if (root / "color" / "svg" / f"{e['hexcode']}.svg").is_file()]


def count() -> int:
    """Number of emoji listed in ``data/openmoji.json`` (all 4,495 have a colour SVG in 17.0.0)."""
    path = require_path(package_dir() / "data" / "openmoji.json", INSTALL_HINT)
    return len(json.loads(path.read_text(encoding="utf-8")))


def load_openmoji(
    size: int = DEFAULT_SIZE, limit: int | None = None, refresh: bool = False, workers: int | None = None
) -> ImageTextDataset:
    """OpenMoji pairs (4,495): image = rendered colour SVG, caption = annotation, label = group index.
    ``fields``: ``hexcode``, ``subgroup``, ``tags`` (comma-separated, Unicode and OpenMoji tags merged).
    Items that fail to render are skipped and counted in ``meta["render_failed"]``."""
    check_limit(limit)

    def build(limit: int | None) -> ImageTextDataset:
        entries = read_entries()
        groups = list(dict.fromkeys(e["group"] for e in entries))
        entries = entries[:limit] if limit else entries
        svg = package_dir() / "color" / "svg"
        rendered = parallel_map(render_svg, [(str(svg / f"{e['hexcode']}.svg"), size) for e in entries], workers,
                                desc="openmoji")
        kept = [(e, img) for e, img in zip(entries, rendered, strict=True) if img is not None]
        tags = [", ".join(t for t in (e["tags"], e["openmoji_tags"]) if t) for e, _ in kept]
        return ImageTextDataset(
            images=np.stack([img for _, img in kept]) if kept else np.zeros((0, size, size, 3), np.uint8),
            captions=[e["annotation"] for e, _ in kept],
            labels=np.array([groups.index(e["group"]) for e, _ in kept], dtype=np.int64),
            class_names=groups,
            fields={"hexcode": [e["hexcode"] for e, _ in kept], "subgroup": [e["subgroups"] for e, _ in kept],
                    "tags": tags},
            meta={"name": "openmoji", "source": f"npm openmoji@{VERSION} ({package_dir()})", "licence": LICENCE,
                  "size": size, "render_failed": len(entries) - len(kept)},
        )

    return cached_images("openmoji", f"{size}px", build, limit, refresh)
