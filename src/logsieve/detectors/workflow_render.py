"""Pictures of a DeepLog workflow (:class:`~.deeplog_workflow.Workflow`): DOT, SVG, HTML.

The SVG is laid out here (no Graphviz needed), Sugiyama-style: nodes in layers by their
longest path from ``START`` once the back edges that close loops are set aside (those are
drawn as red dashed arcs on the right), edges spanning several layers routed through dummy
points, the order in each layer chosen by barycentre sweeps to reduce crossings. Each box
holds the event id and its template wrapped to a fixed width; divergence points (several
successors) have a thick border, and a node that runs concurrently with others names them.
"""

from __future__ import annotations

import html
from collections import defaultdict

from logsieve.detectors.deeplog_workflow import Workflow

__all__ = ["to_dot", "to_html", "to_svg"]

_W, _GX, _GY, _LINE = 210, 46, 58, 13  # box width, gaps between boxes and layers, text line
_DUMMY = 26  # width of a long edge's slot in a layer it crosses
_WRAP = 34  # characters per template line in a box


def _label(wf: Workflow, node: str, width: int = 34) -> tuple[str, str]:
    base = node.split(":")[0]
    tpl = wf.templates.get(base) or ""
    return node, (tpl if len(tpl) <= width else tpl[: width - 1] + "…")


def _wrap(text: str, width: int = _WRAP, lines: int = 3) -> list[str]:
    """``text`` in lines of at most ``width`` characters (at most ``lines``, the last cut)."""
    out: list[str] = []
    for word in text.split():
        while len(word) > width:
            out.append(word[:width])
            word = word[width:]
        if out and len(out[-1]) + 1 + len(word) <= width:
            out[-1] += " " + word
        else:
            out.append(word)
    if len(out) > lines:
        out = out[:lines]
        out[-1] = out[-1][: width - 1] + "…"
    return out


def _layers(wf: Workflow) -> tuple[dict[str, int], set[tuple[str, str]]]:
    """Layer of each node (longest path from ``START`` once loops are cut) and the back
    edges that close the loops; the DFS that finds them follows the likeliest edges first,
    so the main path runs forward."""
    succ: dict[str, list[str]] = defaultdict(list)
    for (a, b), _ in sorted(wf.edges.items(), key=lambda kv: -float(kv[1]["count"])):
        if a != b:
            succ[a].append(b)
    nodes = wf.nodes
    starts = [n for n in nodes if n.startswith("START")] or nodes[:1]
    state: dict[str, int] = {}
    back: set[tuple[str, str]] = set()
    order: list[str] = []
    for root in [*starts, *nodes]:  # iterative DFS
        if root in state:
            continue
        state[root] = 1
        stack = [(root, iter(succ.get(root, [])))]
        while stack:
            v, it = stack[-1]
            w = next(it, None)
            if w is None:
                state[v] = 2
                order.append(v)
                stack.pop()
            elif state.get(w) == 1:
                back.add((v, w))
            elif w not in state:
                state[w] = 1
                stack.append((w, iter(succ.get(w, []))))
    layer = {n: 0 for n in nodes}
    for v in reversed(order):  # topological order of the graph without back edges
        for w in succ.get(v, []):
            if (v, w) not in back:
                layer[w] = max(layer[w], layer[v] + 1)
    last = max(layer.values(), default=0)
    for n in nodes:  # END nodes on the bottom row
        if n.startswith("END"):
            layer[n] = last
    return layer, back


def _order(
    layer: dict[str, int], edges: list[tuple[str, str]], sweeps: int = 8
) -> tuple[list[list[str]], dict[tuple[str, str], list[str]]]:
    """Rows of nodes (with dummy nodes where an edge spans several layers), ordered by
    barycentre sweeps down and up to reduce crossings; and each edge's chain of nodes."""
    rank = dict(layer)
    chains: dict[tuple[str, str], list[str]] = {}
    up: dict[str, list[str]] = defaultdict(list)
    down: dict[str, list[str]] = defaultdict(list)
    for a, b in edges:
        lo, hi = (a, b) if rank[a] <= rank[b] else (b, a)
        chain = [lo]
        for r in range(rank[lo] + 1, rank[hi]):
            dummy = f"\x00{a}\x00{b}\x00{r}"
            rank[dummy] = r
            chain.append(dummy)
        chain.append(hi)
        for x, y in zip(chain, chain[1:], strict=False):
            if rank[x] != rank[y]:
                down[x].append(y)
                up[y].append(x)
        chains[(a, b)] = chain if chain[0] == a else chain[::-1]
    rows: list[list[str]] = [[] for _ in range(max(rank.values(), default=0) + 1)]
    for n in sorted(rank, key=lambda n: (n.startswith("\x00"), n)):
        rows[rank[n]].append(n)

    def bary(n: str, j: int, where: dict[str, int], nbrs: dict[str, list[str]]) -> float:
        ps = [where[m] for m in nbrs.get(n, []) if m in where]
        return sum(ps) / len(ps) if ps else float(j)

    def sweep(rows_: list[list[str]], nbrs: dict[str, list[str]]) -> None:
        for i in range(1, len(rows_)):
            where = {n: j for j, n in enumerate(rows_[i - 1])}
            keyed = sorted(((bary(n, j, where, nbrs), j), n) for j, n in enumerate(rows_[i]))
            rows_[i] = [n for _, n in keyed]

    for _ in range(sweeps):
        sweep(rows, up)
        rows.reverse()
        sweep(rows, down)
        rows.reverse()
    return rows, chains


def _pruned(wf: Workflow, min_probability: float) -> Workflow:
    """Edges below ``min_probability``, except each node's likeliest way in."""
    best: dict[str, tuple[str, str]] = {}
    for (a, b), e in wf.edges.items():
        if a != b and (b not in best or float(e["count"]) > float(wf.edges[best[b]]["count"])):
            best[b] = (a, b)
    keep = set(best.values())
    edges = {
        k: e for k, e in wf.edges.items() if float(e["probability"]) >= min_probability or k in keep
    }
    return Workflow(edges=edges, templates=wf.templates, tasks=wf.tasks)


def to_svg(wf: Workflow, title: str = "", min_probability: float = 0.05) -> str:
    """A standalone SVG picture, top to bottom; edges below ``min_probability`` hidden
    (except a node's likeliest way in). Divergence points have a thick border, nodes
    that run concurrently with others say with which, loops are red dashed arcs."""
    hidden = len(wf.edges)
    concurrent: dict[str, list[str]] = defaultdict(list)
    for a, b in wf.concurrent_pairs():
        concurrent[a].append(b)
        concurrent[b].append(a)
    divergence = set(wf.divergence_points())
    wf = _pruned(wf, min_probability)
    hidden -= len(wf.edges)
    layer, back = _layers(wf)
    plain = [k for k in sorted(wf.edges) if k[0] != k[1]]
    rows, chains = _order(layer, plain)
    height_of = {
        n: 22 + _LINE * len(_wrap(wf.templates.get(n.split(":")[0]) or "")) + (
            _LINE if concurrent.get(n) else 0) + 6
        for n in layer
    }  # fmt: skip
    row_h = [max((height_of.get(n, 0) for n in r), default=0) for r in rows]

    def slot(n: str) -> float:  # dummy points of long edges take a narrow slot
        return _DUMMY if n.startswith("\x00") else _W + _GX

    widest = max((sum(slot(n) for n in r) for r in rows), default=_W)
    pos: dict[str, tuple[float, float]] = {}
    y = 64.0
    for r, items in enumerate(rows):
        x = 40 + (widest - sum(slot(n) for n in items)) / 2  # centred rows
        for n in items:
            pos[n] = (x - (_W - _DUMMY) / 2 if n.startswith("\x00") else x, y)
            x += slot(n)
        y += row_h[r] + _GY
    width = int(200 + widest)  # room on the right for the loop arcs
    height = int(y + 40)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
        '<defs><marker id="a" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto"><path d="M0,0L10,5L0,10z" fill="#555"/></marker>'
        '<marker id="r" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto"><path d="M0,0L10,5L0,10z" fill="#c33"/></marker></defs>',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="20" y="24" font-size="14" font-weight="bold">{html.escape(title)}</text>',
        f'<text x="20" y="42" font-size="10" fill="#444">thick border: divergence point · '
        f"∥: runs concurrently with · red dashed: loop (↻ repeats) · edge label: probability"
        f"{f' · {hidden} transitions below {min_probability:.0%} not drawn' if hidden else ''}"
        f"</text>",
    ]

    def centre(n: str) -> tuple[float, float, float]:
        x, y_ = pos[n]
        h = 0.0 if n.startswith("\x00") else float(height_of[n])
        return x + _W / 2, y_, h

    for (a, b), e in sorted(wf.edges.items()):
        p = float(e["probability"])
        if a == b:  # self-loop: an arc on the box's right edge
            x, y_ = pos[a]
            out.append(
                f'<path d="M{x + _W},{y_ + 8} c26,0 26,22 0,22" fill="none" stroke="#c33" '
                f'stroke-dasharray="4 3" marker-end="url(#r)"/>'
                f'<text x="{x + _W + 20:.0f}" y="{y_ + 10:.0f}" fill="#c33" font-size="9">'
                f"↻{p:.2f}</text>"
            )
            continue
        loop = (a, b) in back
        chain = chains[(a, b)]
        pts = []
        for i, n in enumerate(chain):
            cx, cy, h = centre(n)
            if i == 0:
                pts.append((cx, cy + h) if not loop else (cx + _W / 2, cy + h / 2))
            elif i == len(chain) - 1:
                pts.append((cx, cy) if not loop else (cx + _W / 2, cy + h / 2))
            else:
                pts.append((cx, cy + row_h[layer_of(n, rows)] / 2))
        if loop:  # back edge: an arc out to the right, up to the earlier node
            (sx, sy), (tx, ty) = pts[0], pts[-1]
            bulge = max(sx, tx) + 40 + 10 * abs(sy - ty) / 100
            d = f"M{sx:.0f},{sy:.0f} C{bulge:.0f},{sy:.0f} {bulge:.0f},{ty:.0f} {tx:.0f},{ty:.0f}"
            mx, my = bulge - 8, (sy + ty) / 2
        else:
            d = f"M{pts[0][0]:.0f},{pts[0][1]:.0f}"
            for (x1, y1), (x2, y2) in zip(pts, pts[1:], strict=False):
                ym = (y1 + y2) / 2
                d += f" C{x1:.0f},{ym:.0f} {x2:.0f},{ym:.0f} {x2:.0f},{y2:.0f}"
            (x1, y1), (x2, y2) = pts[0], pts[1]
            mx, my = x1 + 0.65 * (x2 - x1), y1 + 0.65 * (y2 - y1)  # apart from siblings
        color, marker = ("#c33", "r") if loop else ("#555", "a")
        dash = ' stroke-dasharray="4 3"' if loop else ""
        out.append(
            f'<path d="{d}" fill="none" stroke="{color}" stroke-width="{0.7 + 2.3 * p:.2f}"'
            f'{dash} marker-end="url(#{marker})"/>'
        )
        if p < 0.995:
            out.append(
                f'<text x="{mx + 3:.0f}" y="{my + 3:.0f}" fill="{color}" font-size="9" '
                f'stroke="white" stroke-width="3" paint-order="stroke">{p:.2f}</text>'
            )
    for n, (x, y_) in pos.items():
        if n.startswith("\x00"):
            continue
        special = n.startswith(("START", "END"))
        fill = "#ddd" if special else "#e8eef7"
        border = 3 if n in divergence else 1
        out.append(
            f'<rect x="{x:.0f}" y="{y_:.0f}" width="{_W}" height="{height_of[n]}" rx="6" '
            f'fill="{fill}" stroke="#246" stroke-width="{border}"/>'
            f'<text x="{x + 8:.0f}" y="{y_ + 15:.0f}" font-weight="bold">{html.escape(n)}</text>'
        )
        lines = _wrap(wf.templates.get(n.split(":")[0]) or "")
        for i, line in enumerate(lines):
            out.append(
                f'<text x="{x + 8:.0f}" y="{y_ + 29 + i * _LINE:.0f}">{html.escape(line)}</text>'
            )
        if concurrent.get(n):
            out.append(
                f'<text x="{x + 8:.0f}" y="{y_ + 29 + len(lines) * _LINE:.0f}" fill="#275" '
                f'font-size="10">∥ {html.escape(", ".join(sorted(concurrent[n])))}</text>'
            )
    out.append("</svg>")
    return "\n".join(out)


def layer_of(node: str, rows: list[list[str]]) -> int:
    """Index of the row that holds ``node``."""
    return next(i for i, r in enumerate(rows) if node in r)


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
