"""DeepLog's workflow construction for diagnosis (Du et al., CCS 2017, section 5).

Task separation by key co-occurrence and a finite-state workflow per task, built from
the observed transitions (or from a model's predicted ones,
:meth:`logsieve.detectors.deeplog.DeepLog.workflow`), with the point where a sequence
diverges from it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from logsieve.features.sequence import (
    N_SPECIAL,
    PAD,
    UNK,
    EventVocab,
    append_marker,
    check_windows,
    count_pairs,
    distinct_windows,
    event_id_series,
    next_event_pairs,
)

__all__ = ["END", "START", "Workflow", "build_workflow", "separate_tasks"]


START = "START"
END = "END"


def _node(name: str, task: int, n_tasks: int) -> str:
    return name if n_tasks == 1 else f"{name}:{task}"


@dataclass
class Workflow:
    """A finite-state workflow of log keys (DeepLog section 5), JSON-able.

    Nodes are event ids plus ``START``/``END`` (``START:t``/``END:t`` per task when
    there are several tasks). ``edges[(a, b)]`` holds ``count`` (weighted number of
    observed ``a -> b`` transitions) and ``probability`` (share of ``a``'s outgoing
    transitions, or the model's probability for model-built workflows).
    """

    edges: dict[tuple[str, str], dict[str, float]]
    templates: dict[str, str] = field(default_factory=dict)
    tasks: list[list[str]] = field(default_factory=list)

    # ---- structure
    @property
    def nodes(self) -> list[str]:
        return sorted({n for edge in self.edges for n in edge})

    def successors(self, node: str) -> dict[str, float]:
        """Next nodes of ``node`` with their probabilities, most probable first."""
        out = {b: e["probability"] for (a, b), e in self.edges.items() if a == node}
        return dict(sorted(out.items(), key=lambda kv: (-kv[1], kv[0])))

    def divergence_points(self) -> list[str]:
        """Nodes with more than one successor (branches, loops, concurrency)."""
        return sorted({a for a, _ in self.edges if len(self.successors(a)) > 1})

    def concurrent_pairs(self) -> list[list[str]]:
        """Key pairs seen in both orders (``a -> b`` and ``b -> a``): concurrency candidates."""
        return sorted([a, b] for a, b in self.edges if a < b and (b, a) in self.edges)

    def loops(self) -> list[list[str]]:
        """Cycles: self-loops and strongly connected groups of several keys."""
        graph: dict[str, list[str]] = defaultdict(list)
        for a, b in self.edges:
            graph[a].append(b)
        index: dict[str, int] = {}
        low: dict[str, int] = {}
        stack: list[str] = []
        on_stack: set[str] = set()
        out: list[list[str]] = []
        counter = [0]

        def visit(v: str) -> None:  # Tarjan's algorithm (graphs are small: one node per key)
            index[v] = low[v] = counter[0]
            counter[0] += 1
            stack.append(v)
            on_stack.add(v)
            for w in graph.get(v, ()):
                if w not in index:
                    visit(w)
                    low[v] = min(low[v], low[w])
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1 or (v, v) in self.edges:
                    out.append(sorted(comp))

        for v in sorted(graph):
            if v not in index:
                visit(v)
        return sorted(out)

    # ---- conformance
    def _task_of(self) -> dict[str, int]:
        return {k: t for t, keys in enumerate(self.tasks) for k in keys}

    def _adjacency(self) -> dict[str, dict[str, float]]:
        """:meth:`successors` of every node at once (one pass over the edges)."""
        out: dict[str, dict[str, float]] = {}
        for (a, b), e in self.edges.items():
            out.setdefault(a, {})[b] = e["probability"]
        return {a: dict(sorted(d.items(), key=lambda kv: (-kv[1], kv[0]))) for a, d in out.items()}

    def check(
        self, event_ids: Sequence[str], _adjacency: Mapping[str, dict[str, float]] | None = None
    ) -> dict[str, Any] | None:
        """Where ``event_ids`` first leaves the workflow, or None when it conforms.

        The sequence is projected onto each task's keys and walked from that task's
        ``START``; the result names the ``position`` (index in ``event_ids``; the
        length of the sequence for a premature end), the ``previous`` node, the
        actual ``event_id`` (``END`` for the end), its ``template``, and the
        ``expected`` successors with probabilities and templates.
        """
        adjacency = self._adjacency() if _adjacency is None else _adjacency
        n_tasks = max(1, len(self.tasks))
        task_of = self._task_of()
        for i, key in enumerate(event_ids):
            if self.tasks and key not in task_of:
                return self._divergence(i, None, key, {}, None)
        for t in range(n_tasks):
            prev = _node(START, t, n_tasks)
            for i, key in enumerate(event_ids):
                if self.tasks and task_of.get(key) != t:
                    continue
                succ = adjacency.get(prev, {})
                if key not in succ:
                    return self._divergence(i, prev, key, succ, t)
                prev = key
            succ = adjacency.get(prev, {})
            end = _node(END, t, n_tasks)
            if prev != _node(START, t, n_tasks) and end not in succ:
                return self._divergence(len(event_ids), prev, END, succ, t)
        return None

    def _divergence(
        self,
        position: int,
        previous: str | None,
        key: str,
        succ: Mapping[str, float],
        task: int | None,
    ) -> dict[str, Any]:
        return {
            "position": position,
            "task": task,
            "previous": previous,
            "event_id": key,
            "template": self.templates.get(key),
            "expected": [
                {"event_id": k, "template": self.templates.get(k), "probability": p}
                for k, p in succ.items()
            ],
        }

    def check_windows(self, windows: pl.DataFrame) -> list[dict[str, Any] | None]:
        """:meth:`check` for every window (each distinct sequence checked once)."""
        windows = check_windows(windows)
        distinct, inverse, _ = distinct_windows(windows)
        adjacency = self._adjacency()
        results = [self.check(seq, adjacency) for seq in event_id_series(distinct).to_list()]
        return [results[u] for u in inverse]

    # ---- serialisation
    def to_dict(self) -> dict[str, Any]:
        """JSON-able graph: nodes (with templates), edges, tasks and the derived structure."""
        return {
            "nodes": [{"id": n, "template": self.templates.get(n)} for n in self.nodes],
            "edges": [
                {"source": a, "target": b, "count": e["count"], "probability": e["probability"]}
                for (a, b), e in sorted(self.edges.items())
            ],
            "tasks": self.tasks,
            "divergence_points": self.divergence_points(),
            "concurrent_pairs": self.concurrent_pairs(),
            "loops": self.loops(),
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Workflow:
        edges = {
            (e["source"], e["target"]): {
                "count": float(e["count"]),
                "probability": float(e["probability"]),
            }
            for e in doc["edges"]
        }
        templates = {
            n["id"]: n["template"] for n in doc.get("nodes", []) if n.get("template") is not None
        }
        return cls(edges=edges, templates=templates, tasks=[list(t) for t in doc.get("tasks", [])])


def separate_tasks(
    windows: pl.DataFrame, distance: int = 5, threshold: float = 0.5
) -> list[list[str]]:
    """Group log keys into tasks by co-occurrence (DeepLog section 5, density-based).

    For keys ``i`` and ``j``, ``p(j | i)`` is the share of occurrences of ``i`` that
    have ``j`` within ``distance`` positions after them in the same window. Keys are
    linked when ``p(j | i)`` or ``p(i | j)`` reaches ``threshold``; the connected
    groups are the tasks (each sorted; the groups sorted by their first key).
    """
    windows = check_windows(windows)
    vocab = EventVocab.fit(windows)
    if vocab.n_keys == 0:
        return []
    enc = vocab.encode(windows)
    codes, owner = enc.codes.astype(np.int64), enc.owner
    n = len(codes)
    hits = []
    for d in range(1, int(distance) + 1):
        p = np.arange(n - d)
        same = owner[p] == owner[p + d]
        hits.append(np.column_stack([p[same], codes[p[same] + d]]))
    size = len(vocab)
    occurrences = np.bincount(codes, minlength=size).astype(np.float64)
    co = np.zeros((size, size))
    if hits:
        both = np.unique(np.concatenate(hits), axis=0)  # count each (occurrence, key) once
        np.add.at(co, (codes[both[:, 0]], both[:, 1]), 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        prob = np.where(occurrences[:, None] > 0, co / occurrences[:, None], 0.0)
    linked = (prob >= threshold) | (threshold <= prob.T)
    parent = list(range(size))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for a, b in zip(*np.nonzero(linked), strict=True):
        ra, rb = find(int(a)), find(int(b))
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    groups: dict[int, list[str]] = defaultdict(list)
    for code in range(N_SPECIAL, size):
        groups[find(code)].append(vocab.tokens[code - N_SPECIAL])
    return sorted((sorted(g) for g in groups.values()), key=lambda g: g[0])


def build_workflow(
    windows: pl.DataFrame,
    *,
    templates: Mapping[str, str] | None = None,
    separate: bool = False,
    distance: int = 5,
    task_threshold: float = 0.5,
    min_count: float = 1,
) -> Workflow:
    """Workflow (finite-state automaton over log keys) of the sequences in ``windows``.

    Every window is walked ``START -> k_0 -> ... -> k_{n-1} -> END``; each transition
    seen at least ``min_count`` times (counting duplicate windows) becomes an edge
    whose probability is its share of the source's outgoing transitions. With
    ``separate=True`` keys are first split into tasks (:func:`separate_tasks`) and
    each task's workflow is built from the windows projected onto its keys, as the
    paper does for interleaved multi-task logs. Fully vectorized over windows.
    """
    windows = check_windows(windows)
    templates = dict(templates or {})
    distinct, _, counts = distinct_windows(windows)
    tasks = (
        separate_tasks(distinct, distance, task_threshold)
        if separate
        else [sorted(EventVocab.fit(distinct).tokens)]
    )
    n_tasks = max(1, len(tasks))
    edges: dict[tuple[str, str], dict[str, float]] = {}
    for t, keys in enumerate(tasks):
        vocab = EventVocab(keys)
        enc = vocab.encode(distinct)
        keep = enc.codes != UNK  # project onto the task's keys
        lengths = np.bincount(enc.owner[keep], minlength=len(enc)).astype(np.int64)
        projected = append_marker(type(enc)(enc.codes[keep], lengths), len(vocab))
        pairs = next_event_pairs(projected, 1, 0)
        present = lengths[pairs.window] > 0  # windows without this task's keys add nothing
        src, dst, weight, _ = count_pairs(
            pairs.history[present],
            pairs.target[present],
            counts[pairs.window[present]].astype(np.float64),
        )
        src = src[:, 0]
        ok = weight >= min_count
        out_total: defaultdict[str, float] = defaultdict(float)
        names = []
        for a, b, w in zip(src[ok].tolist(), dst[ok].tolist(), weight[ok].tolist(), strict=True):
            na = _node(START, t, n_tasks) if a == PAD else vocab.tokens[a - N_SPECIAL]
            nb = _node(END, t, n_tasks) if b == len(vocab) else vocab.tokens[b - N_SPECIAL]
            names.append((na, nb, w))
            out_total[na] += w
        for na, nb, w in names:
            edges[(na, nb)] = {"count": w, "probability": w / out_total[na]}
    return Workflow(edges=edges, templates=templates, tasks=tasks)
