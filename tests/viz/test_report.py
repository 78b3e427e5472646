"""The report writer: Markdown with relative image links, HTML with everything inline."""

from __future__ import annotations

import base64
import re
from pathlib import Path

from matplotlib.figure import Figure

from attnlab.viz import save_figure
from attnlab.viz.report import Image, Preformatted, Section, Table, write_report


def test_markdown_and_self_contained_html(tmp_path: Path) -> None:
    fig = Figure(figsize=(2, 2))
    fig.add_subplot().plot([0, 1], [1, 0])
    png, svg = save_figure(fig, tmp_path / "figs" / "line", ["png", "svg"], dpi=50)
    sections = [Section("Results", ["a < b & c", Table(["name", "value"], [["x|y", "1.00"]], caption="numbers"),
                                    Preformatted("sig: nrefs:1|case:mixed")]),
                Section("Figures", [Image(png, "as png"), Image(svg, "as svg")])]
    markdown_path, html_path = write_report("Title", sections, tmp_path)
    markdown = markdown_path.read_text()
    assert "| x\\|y | 1.00 |" in markdown and "](figs/line.png)" in markdown and "```\nsig: nrefs:1" in markdown
    page = html_path.read_text()
    assert "<p>a &lt; b &amp; c</p>" in page and "<td>x|y</td>" in page
    [data] = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert base64.b64decode(data) == png.read_bytes()
    assert "<svg" in page and "<?xml" not in page and "<script" not in page
