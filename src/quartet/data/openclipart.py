"""OpenClipart image-text pairs: public-domain clip art with noisy, web-like captions.

Source: Debian ``openclipart-svg`` (``/usr/share/openclipart/svg/<category>/**.svg``, 8,121 entries of which 663
are symbolic links to other entries and are skipped). Each SVG's RDF metadata gives a title and keywords; files
without a title (~60) are left out, which leaves ~7,400 pairs. The caption is "<title>: <keyword>, <keyword>, ..."
(up to :data:`MAX_KEYWORDS` keywords, deduplicated); the label is the top-level category (e.g. ``animals``).
SVGs are rendered with cairosvg (~50 ms each, spread over worker processes); those that fail to render or render
empty are skipped and counted in ``meta["render_failed"]``. A full render takes a few minutes once; cached loads are
a file read. Licence: public domain.
"""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from quartet.core.io import atomic_write_json, read_json
from quartet.data.cache import cache_file, cached_images
from quartet.data.common import DEFAULT_SIZE, check_limit, fit_square, parallel_map, require_path, run_command
from quartet.data.types import ImageTextDataset

SVG_ROOT = Path("/usr/share/openclipart/svg")
INSTALL_HINT = "install the Debian package with `sudo apt-get install openclipart-svg`"
LICENCE = "public domain (CC0)"
MAX_KEYWORDS = 10
INDEX_VERSION = 1

_METADATA = re.compile(rb"<(?:[\w-]+:)?metadata\b.*?</(?:[\w-]+:)?metadata>", re.S)
_DC = "{http://purl.org/dc/elements/1.1/}"
_RDF = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"


def read_metadata(path: Path) -> tuple[str, list[str]]:
    """The title and keywords in an SVG's RDF metadata (``("", [])`` when absent or unparsable)."""
    m = _METADATA.search(path.read_bytes())
    if not m:
        return "", []
    try:
        root = ET.fromstring(m.group(0))
    except ET.ParseError:
        return "", []
    for work in root.iter():
        if isinstance(work.tag, str) and work.tag.endswith("}Work"):
            title_el = work.find(f"{_DC}title")
            title = " ".join((title_el.text or "").split()) if title_el is not None else ""
            subject = work.find(f"{_DC}subject")
            words = [] if subject is None else [" ".join((li.text or "").split()) for li in subject.iter(f"{_RDF}li")]
            return title, [w for w in words if w]
    return "", []


def make_caption(title: str, keywords: list[str]) -> str:
    """``"<title>: kw1, kw2, ..."`` with keywords deduplicated (case-insensitive), the title itself dropped."""
    seen = {title.lower()}
    kept = []
    for w in keywords:
        if w.lower() not in seen:
            seen.add(w.lower())
            kept.append(w)
    kept = kept[:MAX_KEYWORDS]
    return f"{title}: {', '.join(kept)}" if kept else title


def build_index(root: Path | None = None) -> list[dict[str, Any]]:
    """Titled SVG files (symbolic links skipped) sorted by path: ``file``, ``category``, ``title``, ``keywords``."""
    root = require_path(root or SVG_ROOT, INSTALL_HINT)
    out = []
    for p in sorted(root.rglob("*.svg")):
        if p.is_symlink() or not p.is_file():
            continue
        title, keywords = read_metadata(p)
        if title:
            rel = p.relative_to(root)
            out.append({"file": str(rel), "category": rel.parts[0], "title": title, "keywords": keywords})
    return out


def load_index(refresh: bool = False) -> list[dict[str, Any]]:
    """:func:`build_index` for :data:`SVG_ROOT`, cached as JSON (a scan reads 8,121 files, ~1.5 s)."""
    path = cache_file("openclipart", f"index-i{INDEX_VERSION}", "json")
    if not refresh and path.exists():
        obj = read_json(path)
        if obj.get("root") == str(SVG_ROOT):
            return obj["entries"]
    entries = build_index()
    atomic_write_json(path, {"root": str(SVG_ROOT), "entries": entries}, indent=None)
    return entries


def render_svg(job: tuple[str, int]) -> np.ndarray | None:
    """Render one SVG file to uint8 ``[size, size, 3]``; ``None`` when cairosvg fails or the drawing is empty."""
    import cairosvg

    path, size = job
    try:
        png = cairosvg.svg2png(url=path, output_width=2 * size)
        img = Image.open(io.BytesIO(png))
        img.load()
    except Exception:  # any SVG the renderer cannot handle is skipped and counted
        return None
    if img.convert("RGBA").getchannel("A").getbbox() is None:
        return None
    return fit_square(img, size)


def is_installed() -> bool:
    """Whether the openclipart-svg folder is present."""
    return SVG_ROOT.is_dir()


def count() -> int:
    """Number of titled SVGs (the pairs before render failures are skipped)."""
    return len(load_index())


def install() -> None:
    """Install the Debian package when it is missing."""
    if not is_installed():
        run_command(["apt-get", "install", "-y", "openclipart-svg"], "OpenClipart")


def load_openclipart(
    size: int = DEFAULT_SIZE, limit: int | None = None, refresh: bool = False, workers: int | None = None
) -> ImageTextDataset:
    """OpenClipart pairs (~7,400): image = rendered SVG, caption = title and keywords, label = category index.
    ``fields``: ``file`` (relative path), ``title``, ``keywords``. ``limit`` keeps the first rendered items."""
    check_limit(limit)

    def build(limit: int | None) -> ImageTextDataset:
        entries = load_index(refresh)
        categories = sorted({e["category"] for e in entries})
        kept: list[dict[str, Any]] = []
        images: list[np.ndarray] = []
        failed: list[str] = []
        start = 0
        while start < len(entries) and (limit is None or len(kept) < limit):
            batch = entries[start:] if limit is None else entries[start:start + limit - len(kept) + 8]
            start += len(batch)
            rendered = parallel_map(render_svg, [(str(SVG_ROOT / e["file"]), size) for e in batch], workers,
                                    desc="openclipart")
            for e, img in zip(batch, rendered, strict=True):
                if img is None:
                    failed.append(e["file"])
                elif limit is None or len(kept) < limit:
                    kept.append(e)
                    images.append(img)
        return ImageTextDataset(
            images=np.stack(images) if images else np.zeros((0, size, size, 3), np.uint8),
            captions=[make_caption(e["title"], e["keywords"]) for e in kept],
            labels=np.array([categories.index(e["category"]) for e in kept], dtype=np.int64),
            class_names=categories,
            fields={"file": [e["file"] for e in kept], "title": [e["title"] for e in kept],
                    "keywords": [e["keywords"] for e in kept]},
            meta={"name": "openclipart", "source": str(SVG_ROOT), "licence": LICENCE, "size": size,
                  "render_failed": len(failed), "failed_files": failed},
        )

    return cached_images("openclipart", f"{size}px", build, limit, refresh)
