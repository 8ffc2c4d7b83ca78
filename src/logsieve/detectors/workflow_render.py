"""Pictures of a DeepLog workflow (:class:`~.deeplog_workflow.Workflow`): DOT, SVG, HTML.

The SVG is laid out here (no Graphviz needed): nodes in layers by their longest path
from ``START`` once loop edges are set aside, each node a box with its event id and the
start of its template; edges are labelled with their probability, loop edges dashed,
divergence points (several successors) drawn with a thick border.
"""

from __future__ import annotations

import html
from collections import defaultdict

from logsieve.detectors.deeplog_workflow import Workflow

__all__ = ["to_dot", "to_html", "to_svg"]

_W, _H, _GX, _GY = 230, 44, 70, 26


def _label(wf: Workflow, node: str, width: int = 34) -> tuple[str, str]:
    base = node.split(":")[0]
    tpl = wf.templates.get(base) or ""
    return node, (tpl if len(tpl) <= width else tpl[: width - 1] + "…")


def _layers(wf: Workflow) -> tuple[dict[str, int], set[tuple[str, str]]]:
    """Layer of each node and the back (loop) edges, by DFS from the START nodes."""
    succ: dict[str, list[str]] = defaultdict(list)
    for a, b in sorted(wf.edges):
        succ[a].append(b)
    nodes = wf.nodes
    starts = [n for n in nodes if n.startswith("START")] or nodes[:1]
    state: dict[str, int] = {}
    back: set[tuple[str, str]] = set()
    order: list[str] = []

    def dfs(v: str) -> None:
        state[v] = 1
        for w in succ.get(v, []):
            if state.get(w) == 1:
                back.add((v, w))
            elif w not in state:
                dfs(w)
        state[v] = 2
        order.append(v)

    for s in [*starts, *nodes]:
        if s not in state:
            dfs(s)
    layer = {n: 0 for n in nodes}
    for v in reversed(order):  # topological order of the DAG without back edges
        for w in succ.get(v, []):
            if (v, w) not in back:
                layer[w] = max(layer[w], layer[v] + 1)
    return layer, back


def _pruned(wf: Workflow, min_probability: float) -> Workflow:
    edges = {k: e for k, e in wf.edges.items() if float(e["probability"]) >= min_probability}
    return Workflow(edges=edges, templates=wf.templates, tasks=wf.tasks)


def to_svg(wf: Workflow, title: str = "", min_probability: float = 0.05) -> str:
    """A standalone SVG picture, top to bottom; edges below ``min_probability`` hidden."""
    hidden = len(wf.edges)
    wf = _pruned(wf, min_probability)
    hidden -= len(wf.edges)
    if hidden:
        title = f"{title} ({hidden} transitions below {min_probability:.0%} not drawn)"
    layer, back = _layers(wf)
    columns: dict[int, list[str]] = defaultdict(list)
    for n in sorted(layer, key=lambda n: (layer[n], n)):
        columns[layer[n]].append(n)
    pos = {}
    for col, items in columns.items():
        for row, n in enumerate(items):
            pos[n] = (60 + row * (_W + _GX), 50 + col * (_H + _GY + 20))
    height = 80 + (max(columns) + 1) * (_H + _GY + 20) if columns else 200
    width = 120 + max((len(v) for v in columns.values()), default=1) * (_W + _GX)
    divergence = set(wf.divergence_points())
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="11">',
        '<defs><marker id="a" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto"><path d="M0,0L10,5L0,10z" fill="#555"/></marker></defs>',
        f'<text x="20" y="24" font-size="14" font-weight="bold">{html.escape(title)}</text>',
    ]
    for (a, b), e in sorted(wf.edges.items()):
        (x1, y1), (x2, y2) = pos[a], pos[b]
        if a == b:
            out.append(
                f'<path d="M{x1 + _W - 30},{y1} c20,-28 45,-10 30,6" fill="none" '
                f'stroke="#c33" stroke-dasharray="4 3" marker-end="url(#a)"/>'
            )
            continue
        loop = (a, b) in back
        sx = sy = tx = ty = mx = my = 0.0
        if not loop:
            sx, sy, tx, ty = x1 + _W / 2, y1 + _H, x2 + _W / 2, y2
            mx, my = (sx + tx) / 2, (sy + ty) / 2
            curve = f"C{sx},{my} {tx},{my} {tx},{ty}"
        else:  # back to an earlier layer: around the left side
            sx, sy, tx, ty = x1, y1 + _H / 2, x2, y2 + _H / 2
            mx, my = min(sx, tx) - 45, (sy + ty) / 2
            curve = f"C{mx},{sy} {mx},{ty} {tx},{ty}"
        color = "#c33" if loop else "#555"
        dash = ' stroke-dasharray="4 3"' if loop else ""
        width_px = 0.6 + 2.4 * float(e["probability"])
        out.append(
            f'<path d="M{sx},{sy} {curve}" fill="none" stroke="{color}" '
            f'stroke-width="{width_px:.2f}"{dash} marker-end="url(#a)"/>'
        )
        if float(e["probability"]) < 0.995:
            out.append(
                f'<text x="{mx + 3:.0f}" y="{my:.0f}" fill="#333" font-size="9">'
                f"{float(e['probability']):.2f}</text>"
            )
    for n, (x, y) in pos.items():
        name, tpl = _label(wf, n)
        special = n.startswith(("START", "END"))
        fill = "#e8eef7" if not special else "#ddd"
        border = 2.5 if n in divergence else 1
        out.append(
            f'<rect x="{x}" y="{y}" width="{_W}" height="{_H}" rx="6" fill="{fill}" '
            f'stroke="#246" stroke-width="{border}"/>'
            f'<text x="{x + 8}" y="{y + 17}" font-weight="bold">{html.escape(name)}</text>'
            f'<text x="{x + 8}" y="{y + 33}">{html.escape(tpl)}</text>'
        )
    out.append("</svg>")
    return "\n".join(out)


def to_dot(wf: Workflow, title: str = "") -> str:
    """Graphviz DOT text of the workflow (render with ``dot -Tsvg``)."""
    lines = [f'digraph "{title or "workflow"}" {{', "  rankdir=LR; node [shape=box];"]
    divergence = set(wf.divergence_points())
    for n in wf.nodes:
        name, tpl = _label(wf, n, 60)
        label = f"{name}\\n{tpl}".replace('"', '\\"')
        extra = ", penwidth=2.5" if n in divergence else ""
        lines.append(f'  "{n}" [label="{label}"{extra}];')
    for (a, b), e in sorted(wf.edges.items()):
        lines.append(f'  "{a}" -> "{b}" [label="{float(e["probability"]):.2f}"];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_html(wf: Workflow, title: str = "") -> str:
    """A self-contained HTML page: the SVG, the templates, the workflow's structure."""
    d = wf.to_dict()
    rows = "".join(
        f"<tr><td>{html.escape(n['id'])}</td><td>{html.escape(n['template'] or '')}</td></tr>"
        for n in d["nodes"]
    )
    facts = "".join(
        f"<li><b>{k.replace('_', ' ')}</b>: {html.escape(str(d[k]))}</li>"
        for k in ("tasks", "divergence_points", "concurrent_pairs", "loops")
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        "</head><body style='font-family:sans-serif'>"
        f"{to_svg(wf, title)}<ul>{facts}</ul><table border='1' cellpadding='3'>"
        f"<tr><th>event</th><th>template</th></tr>{rows}</table></body></html>\n"
    )
