"""Noto Color Emoji image-text pairs: 3,655 fully-qualified emoji with their CLDR names.

Source: Debian ``unicode-data`` (``/usr/share/unicode/emoji/emoji-test.txt``: names, 9 groups, 98 subgroups) and
``fonts-noto-color-emoji`` (the colour bitmap font, one 136x128 strike at size 109). Each emoji is drawn with Pillow
on a transparent canvas, cropped to its content, centred on white and resized to ``size`` pixels. 1,785 of the 3,655
are skin-tone variants; 275 are flags ("flag: Japan"). Rendering all takes ~4-8 s on one core; cached loads ~0.1 s.
Licence: font OFL-1.1, names and data Unicode licence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from quartet.data.cache import cached_images
from quartet.data.common import DEFAULT_SIZE, check_limit, fit_square, require_path, run_command
from quartet.data.types import ImageTextDataset

EMOJI_TEST = Path("/usr/share/unicode/emoji/emoji-test.txt")
EMOJI_FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
FONT_SIZE = 109
"""The only bitmap strike in NotoColorEmoji.ttf; other sizes fail to load."""
SKIN_TONES = frozenset(range(0x1F3FB, 0x1F400))
INSTALL_HINT = "install the Debian packages with `sudo apt-get install unicode-data fonts-noto-color-emoji`"
LICENCE = "OFL-1.1 (Noto Color Emoji font); Unicode licence (emoji names)"

_LINE = re.compile(r"^([0-9A-F ]+?)\s*;\s*fully-qualified\s*#\s*(\S+)\s+E\d+\.\d+\s+(.+)$")


@dataclass(frozen=True)
class EmojiEntry:
    """One fully-qualified emoji from emoji-test.txt."""

    codepoints: str
    char: str
    name: str
    group: str
    subgroup: str


def parse_emoji_test(path: Path | None = None) -> list[EmojiEntry]:
    """The fully-qualified entries of emoji-test.txt in CLDR order (3,655 for Emoji 15.0)."""
    path = require_path(path or EMOJI_TEST, INSTALL_HINT)
    group = subgroup = ""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# group:"):
            group = line.split(":", 1)[1].strip()
        elif line.startswith("# subgroup:"):
            subgroup = line.split(":", 1)[1].strip()
        elif m := _LINE.match(line):
            cps = m.group(1).strip()
            char = "".join(chr(int(c, 16)) for c in cps.split())
            out.append(EmojiEntry(cps, char, m.group(3).strip(), group, subgroup))
    return out


def render_emoji(char: str, font: ImageFont.FreeTypeFont, size: int) -> np.ndarray:
    """One emoji as uint8 ``[size, size, 3]`` on white."""
    canvas = Image.new("RGBA", (160 * max(1, len(char)), 192), (0, 0, 0, 0))
    ImageDraw.Draw(canvas).text((8, 16), char, font=font, embedded_color=True)
    return fit_square(canvas, size)


def is_installed() -> bool:
    """Whether emoji-test.txt and the Noto Color Emoji font are present."""
    return EMOJI_TEST.is_file() and EMOJI_FONT.is_file()


def count() -> int:
    """Number of fully-qualified emoji (cheap: counts lines)."""
    text = require_path(EMOJI_TEST, INSTALL_HINT).read_text(encoding="utf-8")
    return sum(1 for line in text.splitlines() if _LINE.match(line))


def install() -> None:
    """Install the Debian packages when they are missing."""
    if not is_installed():
        run_command(["apt-get", "install", "-y", "unicode-data", "fonts-noto-color-emoji"], "emoji data and font")


def load_emoji(size: int = DEFAULT_SIZE, limit: int | None = None, refresh: bool = False) -> ImageTextDataset:
    """Noto Color Emoji pairs: image = rendered emoji, caption = CLDR name ("grinning face"), label = group index
    (9 groups), ``fields``: ``subgroup``, ``codepoints``, ``char``, ``skin_tone`` (bool). 3,655 items; ``limit``
    keeps the first ones in CLDR order."""
    check_limit(limit)

    def build(limit: int | None) -> ImageTextDataset:
        entries = parse_emoji_test()
        font_path = require_path(EMOJI_FONT, INSTALL_HINT)
        entries = entries[:limit] if limit else entries
        font = ImageFont.truetype(str(font_path), FONT_SIZE)
        images = np.stack([render_emoji(e.char, font, size) for e in entries]) if entries else np.zeros(
            (0, size, size, 3), np.uint8)
        groups = list(dict.fromkeys(e.group for e in parse_emoji_test()))
        return ImageTextDataset(
            images=images,
            captions=[e.name for e in entries],
            labels=np.array([groups.index(e.group) for e in entries], dtype=np.int64),
            class_names=groups,
            fields={
                "subgroup": [e.subgroup for e in entries],
                "codepoints": [e.codepoints for e in entries],
                "char": [e.char for e in entries],
                "skin_tone": [any(ord(c) in SKIN_TONES for c in e.char) for e in entries],
            },
            meta={"name": "emoji", "source": f"{EMOJI_TEST} + {EMOJI_FONT}", "licence": LICENCE, "size": size},
        )

    return cached_images("emoji", f"{size}px", build, limit, refresh)
