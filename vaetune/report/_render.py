"""The report as one self-contained HTML page (PNGs inline as data URIs, no server, no network)
and as Markdown beside its figures. Both are rendered from one `Report` record."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from typing import Any

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


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]
    best: set[tuple[int, int]] = field(default_factory=set)  # (row, col) cells to highlight
    left: int = 1  # leading columns aligned left


@dataclass
class Section:
    title: str
    parts: list[tuple[str, Any]]  # ("p"|"notes"|"table"|"fig"|"grids"|"pictures"|"pre", payload)


@dataclass
class Report:
    title: str
    meta: list[str]
    sections: list[Section]
    figures: dict[str, bytes]  # name -> PNG, referenced by parts


def _uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _table_html(t: Table, cls: str = "") -> str:
    head = "".join(f'<th class="{"l" if i < t.left else ""}">{html.escape(h)}</th>' for i, h in enumerate(t.header))
    body = []
    for r, row in enumerate(t.rows):
        cells = []
        for c, v in enumerate(row):
            classes = " ".join(x for x in ("l" if c < t.left else "", "best" if (r, c) in t.best else "") if x)
            cells.append(f'<td class="{classes}">{html.escape(str(v))}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _pictures_html(p, figures: dict[str, bytes]) -> str:
    heads = "".join(f"<th>{html.escape(lbl)}<br><small>epoch {e}</small></th>" for lbl, e in zip(p["labels"], p["epochs"], strict=True))
    recon = "".join(f'<td><img alt="reconstructions, {html.escape(lbl)}" src="{_uri(figures[name])}"></td>'
                    for lbl, name in zip(p["labels"], p["recons"], strict=True))
    samp = "".join(f'<td><img alt="samples, {html.escape(lbl)}" src="{_uri(figures[name])}"></td>'
                   for lbl, name in zip(p["labels"], p["samples"], strict=True))
    return (f'<table class="pictures"><thead><tr><th>validation images</th>{heads}</tr></thead><tbody>'
            f'<tr><td><img alt="validation images" src="{_uri(figures[p["originals"]])}"><br><small>reconstructed →</small></td>{recon}</tr>'
            f'<tr><td class="l"><small>samples from<br>the same fixed z →</small></td>{samp}</tr></tbody></table>')


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
        for kind, payload in s.parts:
            if kind == "p":
                out.append(f"<p>{html.escape(payload)}</p>")
            elif kind == "finding":
                out.append(f'<p class="finding">• {html.escape(payload)}</p>')
            elif kind == "notes":
                out += [f'<p class="notes">Note: {html.escape(n)}</p>' for n in payload]
            elif kind == "table":
                out.append(_table_html(payload, "data"))
            elif kind == "fig":
                name, alt = payload
                out.append(f'<p><img class="fig" alt="{html.escape(alt)}" src="{_uri(report.figures[name])}"></p>')
            elif kind == "grids":
                out.append("<p>" + "".join(f'<img class="grid" alt="{html.escape(alt)}" title="{html.escape(alt)}" '
                                           f'src="{_uri(report.figures[name])}">' for name, alt in payload) + "</p>")
            elif kind == "pictures":
                out.append(_pictures_html(payload, report.figures))
            elif kind == "pre":
                title, text = payload
                out.append(f"<details><summary>{html.escape(title)}</summary><pre>{html.escape(text)}</pre></details>")
        out.append("</section>")
    out.append("</body></html>")
    return "\n".join(out)


def _md_table(t: Table) -> str:
    def esc(v):
        return str(v).replace("|", "\\|")

    lines = ["| " + " | ".join(esc(h) for h in t.header) + " |", "|" + "---|" * len(t.header)]
    for r, row in enumerate(t.rows):
        lines.append("| " + " | ".join(f"**{esc(v)}**" if (r, c) in t.best else esc(v) for c, v in enumerate(row)) + " |")
    return "\n".join(lines)


def to_markdown(report: Report, figure_dir: str = "figures") -> str:
    def img(name, alt):
        return f"![{alt}]({figure_dir}/{name}.png)"

    out = [f"# {report.title}", ""] + [f"_{m}_  " for m in report.meta]
    for s in report.sections:
        out += ["", f"## {s.title}", ""]
        for kind, payload in s.parts:
            if kind == "p":
                out += ["", payload, ""]  # a blank line first: a paragraph after a list stays a paragraph
            elif kind == "finding":
                out.append(f"- {payload}")
            elif kind == "notes":
                out += [f"> Note: {n}  " for n in payload] + [""]
            elif kind == "table":
                out += ["", _md_table(payload), ""]
            elif kind == "fig":
                out += [img(*payload), ""]
            elif kind == "grids":
                out += [" ".join(img(*g) for g in payload), ""]
            elif kind == "pictures":
                p = payload
                out += ["| validation images | " + " | ".join(f"{lbl} (epoch {e})" for lbl, e in zip(p["labels"], p["epochs"], strict=True)) + " |",
                        "|" + "---|" * (len(p["labels"]) + 1),
                        f"| {img(p['originals'], 'validation images')} | " + " | ".join(img(n, 'reconstructions') for n in p["recons"]) + " |",
                        "| samples from the same fixed z | " + " | ".join(img(n, 'samples') for n in p["samples"]) + " |", ""]
            elif kind == "pre":
                out += [f"<details><summary>{payload[0]}</summary>", "", "```", payload[1], "```", "</details>", ""]
    return "\n".join(out) + "\n"
