"""A report as a few plain blocks, written twice: Markdown beside its images, and one self-contained HTML page.

A report is a title and a list of :class:`Section`; a section holds paragraphs (``str``),
:class:`Table`, :class:`Image` and :class:`Preformatted` blocks. ``write_report`` writes
``report.md``, whose images are links relative to it, and ``report.html``, whose PNG images are
embedded as base64 data and SVG images inline, with inline CSS: no script and nothing fetched,
so the page can be mailed or archived on its own.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Table", "Image", "Preformatted", "Section", "Block", "write_report", "render_markdown", "render_html"]


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]
    caption: str = ""


@dataclass
class Image:
    """A PNG or SVG file already written (e.g. by :func:`attnlab.viz.save_figure`)."""

    path: Path
    caption: str = ""


@dataclass
class Preformatted:
    text: str


Block = str | Table | Image | Preformatted


@dataclass
class Section:
    title: str
    blocks: list[Block] = field(default_factory=list)


_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5em; color: #1a1a1a; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
table { border-collapse: collapse; font-size: 13px; margin: 0.6em 0; }
th, td { border: 1px solid #ccc; padding: 3px 8px; vertical-align: top; }
th { background: #f3f3f3; } td { font-variant-numeric: tabular-nums; }
caption { caption-side: bottom; color: #666; font-size: 0.9em; text-align: left; padding-top: 0.3em; }
figure { margin: 0.8em 0; } figcaption { color: #666; font-size: 0.9em; }
img, svg { max-width: 100%; height: auto; }
pre { background: #f6f6f6; padding: 0.6em; overflow-x: auto; font-size: 12px; }
"""


def write_report(title: str, sections: Sequence[Section], out_dir: str | Path, stem: str = "report") -> list[Path]:
    """Write ``<out_dir>/<stem>.md`` and ``<out_dir>/<stem>.html``; return both paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    markdown, page = out / f"{stem}.md", out / f"{stem}.html"
    markdown.write_text(render_markdown(title, sections, out), encoding="utf-8")
    page.write_text(render_html(title, sections), encoding="utf-8")
    return [markdown, page]


def render_markdown(title: str, sections: Sequence[Section], relative_to: str | Path) -> str:
    """Markdown text; image links are relative to ``relative_to`` (the folder the file goes in)."""
    lines = [f"# {title}", ""]
    for section in sections:
        lines += [f"## {section.title}", ""]
        for block in section.blocks:
            lines += _markdown_block(block, Path(relative_to)) + [""]
    return "\n".join(lines)


def _markdown_block(block: Block, base: Path) -> list[str]:
    if isinstance(block, str):
        return [block]
    if isinstance(block, Preformatted):
        return ["```", block.text, "```"]
    if isinstance(block, Image):
        link = Path(block.path).resolve().relative_to(base.resolve()).as_posix()
        return [f"![{block.caption}]({link})"] + ([f"*{block.caption}*"] if block.caption else [])
    cell = lambda text: str(text).replace("|", "\\|").replace("\n", " ")  # noqa: E731
    rows = [block.header, ["---"] * len(block.header), *block.rows]
    lines = ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return lines + ([f"*{block.caption}*"] if block.caption else [])


def render_html(title: str, sections: Sequence[Section]) -> str:
    """One HTML page with everything inline (images as data, CSS in a ``<style>`` element)."""
    body = [f"<h1>{html.escape(title)}</h1>"]
    for section in sections:
        body.append(f"<h2>{html.escape(section.title)}</h2>")
        body += [_html_block(block) for block in section.blocks]
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
            + "\n".join(body) + "\n</body>\n</html>\n")


def _html_block(block: Block) -> str:
    if isinstance(block, str):
        return f"<p>{html.escape(block)}</p>"
    if isinstance(block, Preformatted):
        return f"<pre>{html.escape(block.text)}</pre>"
    if isinstance(block, Image):
        caption = f"<figcaption>{html.escape(block.caption)}</figcaption>" if block.caption else ""
        return f"<figure>{_embedded_image(Path(block.path), block.caption)}{caption}</figure>"
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in block.header)
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in block.rows)
    caption = f"<caption>{html.escape(block.caption)}</caption>" if block.caption else ""
    return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def _embedded_image(path: Path, alt: str) -> str:
    if path.suffix.lower() == ".svg":
        # Inline SVG: drop the XML prolog and doctype, which may not appear inside HTML.
        text = path.read_text(encoding="utf-8")
        return re.sub(r"^\s*(<\?xml[^>]*\?>\s*)?(<!DOCTYPE[^>]*>\s*)?", "", text, flags=re.S)
    if path.suffix.lower() != ".png":
        raise ValueError(f"image {path}: only PNG and SVG can be embedded in the HTML report")
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'
