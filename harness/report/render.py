"""Rendering a :class:`Report` as one self-contained HTML file and as a Markdown summary.

The HTML has no external asset and no script: styles are inline, figures are ``data:`` URIs of
base64 PNG. The Markdown holds the same text and tables and names each figure (the images live in
the HTML only), so that it can be diffed and kept as a golden file.
"""

from __future__ import annotations

import base64
import html

from harness.report.model import WARNING, Figure, Report, Table
from harness.store.tables import format_value, to_markdown

CSS = """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 1100px; color: #222; line-height: 1.45; padding: 0 1em; }
h1 { border-bottom: 2px solid #444; padding-bottom: .2em; }
h2 { border-bottom: 1px solid #ccc; margin-top: 2em; }
nav a { margin-right: 1em; }
table { border-collapse: collapse; margin: .6em 0 1.4em; font-size: 13px; }
caption { text-align: left; font-weight: 600; padding: .3em 0; }
th, td { border: 1px solid #ccc; padding: 3px 8px; }
th { background: #f0f0f0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1em 0 2em; }
figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 13px; color: #555; }
.meta { color: #555; font-size: 13px; }
.wide { overflow-x: auto; max-width: 100%; }
.warn { color: #8a4b00; background: #fff4e0; padding: .3em .6em; border-left: 3px solid #e69500; }
"""


def _tsv_link(table: Table) -> str:
    data = base64.b64encode(table.frame.to_csv(sep="\t", index=False).encode()).decode("ascii")
    name = "".join(c if c.isalnum() else "-" for c in (table.caption or "table"))[:60].strip("-")
    return (
        f'<p class="meta">Showing {len(table.shown)} of {len(table.frame)} rows. '
        f'<a download="{html.escape(name or "table", quote=True)}.tsv" '
        f'href="data:text/tab-separated-values;base64,{data}">Download all '
        f"{len(table.frame)} rows (TSV)</a></p>"
    )


def _html_table(table: Table) -> str:
    frame = table.shown
    numeric = [frame[c].dtype.kind in "iuf" for c in frame.columns]
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = []
    for row in frame.itertuples(index=False):
        cells = "".join(
            f'<td class="num">{html.escape(format_value(v, table.digits))}</td>'
            if num
            else f"<td>{html.escape(format_value(v, table.digits))}</td>"
            for v, num in zip(row, numeric, strict=True)
        )
        body.append(f"<tr>{cells}</tr>")
    caption = f"<caption>{html.escape(table.caption)}</caption>" if table.caption else ""
    rendered = (
        f'<div class="wide"><table>{caption}<thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )
    return rendered + (_tsv_link(table) if table.collapsed else "")


def _html_figure(figure: Figure) -> str:
    data = base64.b64encode(figure.png).decode("ascii")
    alt = html.escape(figure.caption, quote=True)
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{alt}">'
        f"<figcaption>{html.escape(figure.caption)}</figcaption></figure>"
    )


def to_html(report: Report) -> str:
    nav = " ".join(f'<a href="#{s.anchor}">{html.escape(s.title)}</a>' for s in report.sections)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(report.title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{html.escape(report.title)}</h1>",
        f'<p class="meta">Generated {html.escape(report.generated)} from: '
        f"{html.escape(', '.join(report.inputs))}</p>",
        f"<nav>{nav}</nav>",
    ]
    for section in report.sections:
        parts.append(f'<section id="{section.anchor}"><h2>{html.escape(section.title)}</h2>')
        if section.intro:
            parts.append(f"<p>{html.escape(section.intro)}</p>")
        for block in section.blocks:
            if isinstance(block, Table):
                parts.append(_html_table(block))
            elif isinstance(block, Figure):
                parts.append(_html_figure(block))
            elif block.startswith(WARNING):
                parts.append(f'<p class="warn">{html.escape(block)}</p>')
            else:
                parts.append(f"<p>{html.escape(block)}</p>")
        parts.append("</section>")
    if not report.sections:
        parts.append("<p>No results found in the inputs.</p>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def to_markdown_report(report: Report, html_name: str) -> str:
    lines = [
        f"# {report.title}",
        "",
        f"Generated {report.generated} from: {', '.join(report.inputs)}. "
        f"Figures are in `{html_name}`.",
        "",
    ]
    for section in report.sections:
        lines += [f"## {section.title}", ""]
        if section.intro:
            lines += [section.intro, ""]
        for block in section.blocks:
            if isinstance(block, Table):
                if block.caption:
                    lines += [f"**{block.caption}**", ""]
                lines += [to_markdown(block.shown, block.digits), ""]
                if block.collapsed:
                    rest = len(block.frame) - len(block.shown)
                    lines += [f"({rest} more rows in {html_name}, as a TSV download)", ""]
            elif isinstance(block, Figure):
                lines += [f"*Figure: {block.caption}* (in {html_name})", ""]
            else:
                lines += [block, ""]
    if not report.sections:
        lines += ["No results found in the inputs.", ""]
    return "\n".join(lines).rstrip("\n") + "\n"
