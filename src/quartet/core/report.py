"""Reports: Markdown plus an ``index.html`` that shows the same text and the PNG plots.

Systems hand back :class:`Section` objects (a title, Markdown text, images, headline metrics); :class:`Report`
writes them as ``report.md``, ``index.html`` and ``result.json`` in one folder with images referenced relatively.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from quartet.core.io import atomic_write_json, atomic_write_text


@dataclass
class Section:
    """One part of a report (e.g. one system's demo)."""

    title: str
    markdown: str = ""
    images: list[Path] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    status: str = "ok"  # "ok", "failed" or "skipped"
    elapsed_s: float = 0.0


def markdown_table(rows: list[dict[str, Any]], floatfmt: str = ".4g") -> str:
    """A GitHub-style Markdown table from a list of dicts (columns from the first row, then any new keys)."""
    if not rows:
        return ""
    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if k not in cols]

    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return format(v, floatfmt)
        return "" if v is None else str(v)

    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def _md_to_html(md: str) -> str:
    """Enough Markdown for our reports: headings, tables, code blocks, lists, paragraphs."""
    out: list[str] = []
    lines = md.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            j = i + 1
            while j < len(lines) and not lines[j].startswith("```"):
                j += 1
            out.append("<pre>" + html.escape("\n".join(lines[i + 1 : j])) + "</pre>")
            i = j + 1
            continue
        if line.startswith("|"):
            rows = []
            while i < len(lines) and lines[i].startswith("|"):
                if not re.match(r"^\|(\s*:?-+:?\s*\|)+\s*$", lines[i]):
                    rows.append([c.strip() for c in lines[i].strip().strip("|").split("|")])
                i += 1
            if rows:
                head = "".join(f"<th>{html.escape(c)}</th>" for c in rows[0])
                body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows[1:])
                out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
            continue
        m = re.match(r"^(#{1,6})\s+(.*)", line)
        if m:
            n = len(m.group(1))
            out.append(f"<h{n}>{html.escape(m.group(2))}</h{n}>")
        elif line.startswith(("- ", "* ")):
            items = []
            while i < len(lines) and lines[i].startswith(("- ", "* ")):
                items.append(f"<li>{html.escape(lines[i][2:])}</li>")
                i += 1
            out.append("<ul>" + "".join(items) + "</ul>")
            continue
        elif line.strip():
            out.append(f"<p>{html.escape(line)}</p>")
        i += 1
    return "\n".join(out)


_CSS = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}"
        "th{background:#f3f3f3}img{max-width:100%;border:1px solid #eee;margin:.5em 0}pre{background:#f6f6f6;"
        "padding:.8em;overflow-x:auto}.failed{color:#b00}.skipped{color:#888}")


@dataclass
class Report:
    """A titled list of sections written to a folder."""

    title: str
    sections: list[Section] = field(default_factory=list)
    intro: str = ""

    def add(self, section: Section) -> None:
        self.sections.append(section)

    def write(self, folder: str | Path) -> Path:
        """Write ``report.md``, ``index.html`` and ``result.json`` into ``folder``; returns the HTML path."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        md = [f"# {self.title}", "", self.intro, ""]
        body = [f"<h1>{html.escape(self.title)}</h1>", _md_to_html(self.intro)]
        summary = []
        for s in self.sections:
            summary.append({"section": s.title, "status": s.status, "seconds": round(s.elapsed_s, 1)})
        md += [markdown_table(summary), ""]
        body.append(_md_to_html(markdown_table(summary)))
        for s in self.sections:
            md += [f"## {s.title}", "", f"status: **{s.status}** ({s.elapsed_s:.1f} s)", "", s.markdown, ""]
            body.append(f"<h2 class='{s.status}'>{html.escape(s.title)}</h2>")
            body.append(f"<p class='{s.status}'>status: {s.status} ({s.elapsed_s:.1f} s)</p>")
            body.append(_md_to_html(s.markdown))
            for img in s.images:
                rel = Path(img).resolve().relative_to(folder.resolve()) if Path(img).resolve().is_relative_to(
                    folder.resolve()) else Path(img).resolve()
                md.append(f"![{rel.name}]({rel.as_posix()})")
                body.append(f"<img src='{html.escape(rel.as_posix())}' alt='{html.escape(rel.name)}'>")
            md.append("")
        atomic_write_text(folder / "report.md", "\n".join(md))
        page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(self.title)}</title>"
                f"<style>{_CSS}</style></head><body>" + "\n".join(body) + "</body></html>")
        atomic_write_text(folder / "index.html", page)
        atomic_write_json(folder / "result.json", {
            "title": self.title,
            "sections": [{"title": s.title, "status": s.status, "elapsed_s": s.elapsed_s, "metrics": s.metrics}
                         for s in self.sections]}, indent=2)
        return folder / "index.html"
