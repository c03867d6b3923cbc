"""The report as one self-contained HTML page (PNGs inline as data URIs, no server, no network)
and as Markdown beside its figures. Both are rendered from one `Report` record."""

from __future__ import annotations

import base64
import html
from collections.abc import Callable
from dataclasses import dataclass, field

# Marks the page once every image has loaded (or failed): a headless browser reads the attributes.
_READY_SCRIPT = """
window.addEventListener('load', function () {
  var imgs = document.images, ok = 0, broken = 0;
  for (var i = 0; i < imgs.length; i++) {
    if (imgs[i].complete && imgs[i].naturalWidth > 0) { ok++; } else { broken++; }
  }
  var root = document.documentElement;
  root.setAttribute('data-images-ok', String(ok));
  root.setAttribute('data-images-broken', String(broken));
  root.setAttribute('data-report-ready', 'true');
});
"""

_CSS = """
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 2em auto; max-width: 1300px;
       padding: 0 1.5em; color: #222; line-height: 1.45; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 2px solid #ddd; padding-bottom: 0.2em; margin-top: 2em; }
.meta { color: #666; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; }
th { background: #f3f3f3; } td.l, th.l { text-align: left; }
td.best { background: #e3f4e3; font-weight: 600; }
.notes { color: #555; font-size: 0.9em; } .finding { margin: 0.3em 0; }
.pictures td { text-align: center; vertical-align: top; }
.pictures img { image-rendering: pixelated; min-width: 72px; max-width: 160px; }
img.fig { max-width: 100%; border: 1px solid #eee; }
img.grid { image-rendering: pixelated; width: 320px; margin-right: 1em; }
code { background: #f5f5f5; padding: 0 0.25em; }
details { margin: 0.5em 0; }
"""


class Part:
    """One piece of a section: it renders itself as HTML and as Markdown lines."""

    def html(self, figures: dict[str, bytes]) -> str:
        raise NotImplementedError

    def markdown(self, img: Callable[[str, str], str]) -> list[str]:
        raise NotImplementedError


@dataclass
class Paragraph(Part):
    text: str

    def html(self, figures):
        return f"<p>{html.escape(self.text)}</p>"

    def markdown(self, img):
        return ["", self.text, ""]  # a blank line first: a paragraph after a list stays a paragraph


@dataclass
class Finding(Part):
    """One of the sentences the numbers carry."""

    text: str

    def html(self, figures):
        return f'<p class="finding">• {html.escape(self.text)}</p>'

    def markdown(self, img):
        return [f"- {self.text}"]


@dataclass
class Notes(Part):
    lines: list[str]

    def html(self, figures):
        return "\n".join(f'<p class="notes">Note: {html.escape(n)}</p>' for n in self.lines)

    def markdown(self, img):
        return [f"> Note: {n}  " for n in self.lines] + [""]


@dataclass
class Table(Part):
    header: list[str]
    rows: list[list[str]]
    best: set[tuple[int, int]] = field(default_factory=set)  # (row, col) cells to highlight
    left: int = 1  # leading columns aligned left

    def html(self, figures):
        head = "".join(f'<th class="{"l" if i < self.left else ""}">{html.escape(h)}</th>'
                       for i, h in enumerate(self.header))
        body = []
        for r, row in enumerate(self.rows):
            cells = []
            for c, v in enumerate(row):
                classes = " ".join(x for x in ("l" if c < self.left else "", "best" if (r, c) in self.best else "") if x)
                cells.append(f'<td class="{classes}">{html.escape(str(v))}</td>')
            body.append("<tr>" + "".join(cells) + "</tr>")
        return f'<table class="data"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'

    def markdown(self, img):
        def esc(v):
            return str(v).replace("|", "\\|")

        lines = ["| " + " | ".join(esc(h) for h in self.header) + " |", "|" + "---|" * len(self.header)]
        for r, row in enumerate(self.rows):
            lines.append("| " + " | ".join(f"**{esc(v)}**" if (r, c) in self.best else esc(v)
                                           for c, v in enumerate(row)) + " |")
        return ["", "\n".join(lines), ""]


@dataclass
class Figure(Part):
    name: str  # a key of the report's figures
    alt: str

    def html(self, figures):
        return f'<p><img class="fig" alt="{html.escape(self.alt)}" src="{_uri(figures[self.name])}"></p>'

    def markdown(self, img):
        return [img(self.name, self.alt), ""]


@dataclass
class Grids(Part):
    """Image grids side by side: (figure name, alt text) each."""

    grids: list[tuple[str, str]]

    def html(self, figures):
        return "<p>" + "".join(f'<img class="grid" alt="{html.escape(alt)}" title="{html.escape(alt)}" '
                               f'src="{_uri(figures[name])}">' for name, alt in self.grids) + "</p>"

    def markdown(self, img):
        return [" ".join(img(*g) for g in self.grids), ""]


@dataclass
class Pictures(Part):
    """The same validation images reconstructed by each row's model, and samples drawn from one seed."""

    labels: list[str]
    epochs: list[int]
    originals: str  # figure names
    recons: list[str]
    samples: list[str]

    def html(self, figures):
        heads = "".join(f"<th>{html.escape(lbl)}<br><small>epoch {e}</small></th>"
                        for lbl, e in zip(self.labels, self.epochs, strict=True))
        recon = "".join(f'<td><img alt="reconstructions, {html.escape(lbl)}" src="{_uri(figures[name])}"></td>'
                        for lbl, name in zip(self.labels, self.recons, strict=True))
        samp = "".join(f'<td><img alt="samples, {html.escape(lbl)}" src="{_uri(figures[name])}"></td>'
                       for lbl, name in zip(self.labels, self.samples, strict=True))
        return (f'<table class="pictures"><thead><tr><th>validation images</th>{heads}</tr></thead><tbody>'
                f'<tr><td><img alt="validation images" src="{_uri(figures[self.originals])}"><br>'
                f'<small>reconstructed →</small></td>{recon}</tr>'
                f'<tr><td class="l"><small>samples from<br>one seed →</small></td>{samp}</tr></tbody></table>')

    def markdown(self, img):
        return ["| validation images | " + " | ".join(f"{lbl} (epoch {e})"
                                                     for lbl, e in zip(self.labels, self.epochs, strict=True)) + " |",
                "|" + "---|" * (len(self.labels) + 1),
                f"| {img(self.originals, 'validation images')} | "
                + " | ".join(img(n, "reconstructions") for n in self.recons) + " |",
                "| samples from one seed | " + " | ".join(img(n, "samples") for n in self.samples) + " |", ""]


@dataclass
class Details(Part):
    """A folded block of preformatted text."""

    title: str
    text: str

    def html(self, figures):
        return (f"<details><summary>{html.escape(self.title)}</summary><pre>{html.escape(self.text)}</pre>"
                "</details>")

    def markdown(self, img):
        return [f"<details><summary>{self.title}</summary>", "", "```", self.text, "```", "</details>", ""]


@dataclass
class PageSection:
    title: str
    parts: list[Part]


@dataclass
class Report:
    title: str
    meta: list[str]
    sections: list[PageSection]
    figures: dict[str, bytes]  # name -> PNG, referenced by parts


def _uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


GENERATOR = '<meta name="generator" content="vaetune report">'  # marks a page (and its folder) as ours


def to_html(report: Report) -> str:
    out = [f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">{GENERATOR}"
           f"<title>{html.escape(report.title)}</title>",
           f"<style>{_CSS}</style><script>{_READY_SCRIPT}</script></head><body>",
           f"<h1>{html.escape(report.title)}</h1>"]
    out += [f'<p class="meta">{html.escape(m)}</p>' for m in report.meta]
    for s in report.sections:
        anchor = s.title.lower().replace(" ", "-")
        out.append(f'<section id="{html.escape(anchor)}"><h2>{html.escape(s.title)}</h2>')
        out += [part.html(report.figures) for part in s.parts]
        out.append("</section>")
    out.append("</body></html>")
    return "\n".join(out)


def to_markdown(report: Report, figure_dir: str = "figures") -> str:
    def img(name: str, alt: str) -> str:
        return f"![{alt}]({figure_dir}/{name}.png)"

    out = [f"# {report.title}", ""] + [f"_{m}_  " for m in report.meta]
    for s in report.sections:
        out += ["", f"## {s.title}", ""]
        for part in s.parts:
            out += part.markdown(img)
    return "\n".join(out) + "\n"
