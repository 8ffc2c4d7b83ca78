"""Blocks to Markdown (images linked from ``plots/``) and to self-contained HTML.

The HTML needs no network: the CSS is inline and every plot is a base64 PNG.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence

from logsieve.evaluation.report.blocks import _Block

_CSS = (
    "\n"
    "body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;"
    "max-width:1200px;color:#222;line-height:1.4}\n"
    "h1{border-bottom:2px solid #444}h2{border-bottom:1px solid #bbb;margin-top:2em}\n"
    "table{border-collapse:collapse;margin:1em 0;font-size:13px}\n"
    "th,td{border:1px solid #ccc;padding:3px 7px;text-align:left;vertical-align:top}\n"
    "th{background:#f0f0f0}tr:nth-child(even) td{background:#fafafa}\n"
    "img{max-width:100%;border:1px solid #ddd;margin:0.5em 0}\n"
    "figure{display:inline-block;margin:0.5em 1em 0.5em 0}figcaption{font-size:12px;color:#555}\n"
    "pre{background:#f6f6f6;padding:0.6em;overflow-x:auto;font-size:12px}\n"
)


def _md(blocks: Sequence[_Block]) -> str:
    out = []
    for b in blocks:
        if b.kind in ("h1", "h2", "h3"):
            out.append("#" * int(b.kind[1]) + " " + b.text)
        elif b.kind == "p":
            out.append(b.text)
        elif b.kind == "pre":
            out.append("```\n" + b.text + "\n```")
        elif b.kind == "table":
            esc = [[c.replace("|", "\\|").replace("\n", " ") for c in row] for row in b.rows]
            lines = ["| " + " | ".join(b.columns) + " |", "|" + "---|" * len(b.columns)]
            lines += ["| " + " | ".join(row) + " |" for row in esc]
            out.append("\n".join(lines))
        elif b.kind == "img":
            out.append(f"![{b.text}](plots/{b.name})")
    return "\n\n".join(out) + "\n"


def _html(blocks: Sequence[_Block], title: str) -> str:
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{_CSS}</style></head><body>",
    ]
    for b in blocks:
        if b.kind in ("h1", "h2", "h3"):
            parts.append(f"<{b.kind}>{html.escape(b.text)}</{b.kind}>")
        elif b.kind == "p":
            parts.append(f"<p>{html.escape(b.text)}</p>")
        elif b.kind == "pre":
            parts.append(f"<pre>{html.escape(b.text)}</pre>")
        elif b.kind == "table":
            head = "".join(f"<th>{html.escape(c)}</th>" for c in b.columns)
            body = "".join(
                "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                for row in b.rows
            )
            parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        elif b.kind == "img":
            data = base64.b64encode(b.png).decode("ascii")
            parts.append(
                f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(b.text)}">'
                f"<figcaption>{html.escape(b.text)}</figcaption></figure>"
            )
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
