"""DeepLog (Du, Li, Zheng, Srikumar, ACM CCS 2017): the three parts of the paper.

1. :class:`DeepLog`, the log-key anomaly model (paper section 3.1): an LSTM reads the
   ``h`` most recent log keys (one-hot) and outputs a probability for every key; a
   key is normal when it is among the ``g`` most probable ones. Paper defaults for HDFS
   (also those of wuyifan18/DeepLog and Thijsvanede/DeepLog): ``h = 10``, ``L = 2``
   LSTM layers, ``alpha = 64`` memory units, ``g = 9``. Keys never seen in training are
   anomalous.
   With :meth:`~logsieve.detectors.neural.trainer.TorchDetector.update` it supports the
   paper's online update on false positives (section 3.3).
2. :class:`ParameterValueModel`, the parameter-value anomaly model (section 3.2):
   per log key, an LSTM predicts the next parameter-value vector from the previous
   ``h`` ones; the prediction errors (MSE) of validation vectors are modelled as a
   Gaussian, and an error outside its confidence interval is an anomaly.
3. :func:`build_workflow` / :class:`Workflow`, workflow construction for diagnosis
   (section 5): task separation by key co-occurrence and a finite-state workflow per
   task built from the observed (or the model's predicted) transitions, with the
   point where a sequence diverges from it.

Window scores of :class:`DeepLog` (higher = more anomalous): for every position of a
window the 0-based rank of the actual key among the model's predictions (0 = the most
probable key); a key outside the vocabulary gets rank ``max(n_keys, g)``. The window
score is the largest rank, so ``threshold_ = g - 0.5`` (the default,
``threshold="auto"``) reproduces the top-g rule exactly: a window is flagged iff one of
its keys is not among the ``g`` most probable. ``threshold="best_f1"`` on a labelled
validation set amounts to choosing ``g`` on validation data.

Positions and padding (``session_bounds=True``, the default for sessions): every key
of a window is predicted, the first ones from a history left-padded with the padding
index (which thus also marks "start of window"), and an end-of-window marker is
predicted after the last key; short windows are padded, not skipped (see
:mod:`logsieve.features.sequence`). A window ending before the shortest training
window's length scores like an unseen key (a data-driven form of the short-session
padding rule of the public re-implementations). With ``session_bounds=False`` (stream windows)
only positions with a full history are predicted, as in the paper.

Training uses each distinct ``(history, next key)`` pair once, weighted by how often
it occurs; with the weighted cross-entropy this is the same objective as training on
every pair. Scoring computes each distinct window, and within it each distinct pair,
once.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np
import polars as pl
import torch
import torch.nn.functional as F
from torch import nn

from logsieve.detectors.base import check_positive_ints
from logsieve.detectors.neural.next_event import END_OF_WINDOW, NextEventMixin
from logsieve.detectors.neural.trainer import Batch, TorchDetector, torch_session, train_module
from logsieve.detectors.registry import register_detector
from logsieve.errors import LogsieveError, NotFittedError
from logsieve.features.sequence import (
    N_SPECIAL,
    PAD,
    UNK,
    EventVocab,
    Pairs,
    append_marker,
    check_windows,
    count_pairs,
    distinct_windows,
    event_id_series,
    next_event_pairs,
)
from logsieve.schema import EVENT_ID

logger = logging.getLogger(__name__)

__all__ = [
    "END_OF_WINDOW",
    "DeepLog",
    "NextKeyLSTM",
    "ParameterValueModel",
    "Workflow",
    "build_workflow",
]

CITATION = (
    "Min Du, Feifei Li, Guineng Zheng, Vivek Srikumar. "
    "DeepLog: Anomaly Detection and Diagnosis from "
    "System Logs through Deep Learning. ACM CCS 2017. https://doi.org/10.1145/3133956.3134015"
)


class NextKeyLSTM(nn.Module):
    """Stacked LSTM over one-hot (or embedded) keys -> logits of the next key.

    ``embedding_dim=None`` feeds one-hot vectors as in the paper.
    """

    def __init__(
        self,
        n_tokens: int,
        n_outputs: int,
        hidden_size: int,
        num_layers: int,
        embedding_dim: int | None = None,
    ) -> None:
        super().__init__()
        self.n_tokens = n_tokens
        self.embedding = nn.Embedding(n_tokens, embedding_dim) if embedding_dim else None
        self.lstm = nn.LSTM(embedding_dim or n_tokens, hidden_size, num_layers, batch_first=True)
        self.out = nn.Linear(hidden_size, n_outputs)

    def forward(self, history: torch.Tensor) -> torch.Tensor:
        if self.embedding is not None:
            x = self.embedding(history)
        else:
            x = F.one_hot(history, self.n_tokens).to(self.out.weight.dtype)
        hidden, _ = self.lstm(x)
        return self.out(hidden[:, -1])


@register_detector("deeplog")
class DeepLog(NextEventMixin, TorchDetector):
    """DeepLog log-key anomaly detection (Du et al., CCS 2017).

    Parameters
    ----------
    history_size : int, default 10
        ``h``: keys of history the LSTM reads.
    hidden_size : int, default 64
        ``alpha``: LSTM memory units per layer.
    num_layers : int, default 2
        ``L``: stacked LSTM layers.
    num_candidates : int, default 9
        ``g``: a key is normal when among the ``g`` most probable next keys.
    embedding_dim : int or None, default None
        None: one-hot input as in the paper; an int learns an embedding instead.
    session_bounds : bool, default True
        Windows are sessions with a meaningful start and end (HDFS blocks, tasks):
        every key is predicted, the first ones from a padded history, and an
        end-of-window marker is predicted after the last key, so a session that
        stops early (or starts oddly) is detected too. An end that comes before the
        length of the shortest training window (``min_length_``) counts like an
        unseen key: the rank of the end marker among keys that never follow a short
        prefix is arbitrary, so the learned end alone is not reliable there. This
        plays the role of the padding of short sessions in the public
        re-implementations (wuyifan18 pads test sessions shorter than h + 1 with a key
        that is never predicted, which flags every short session), but learned from
        the training windows instead of fixed at h + 1.
        False, for fixed or sliding windows cut from a stream: only positions with
        a full history of ``h`` keys are predicted, as in the paper, and windows of
        ``h`` keys or fewer get score 0.
    epochs, batch_size, lr, weight_decay, patience, device, num_threads
        Training (see :class:`~logsieve.detectors.neural.trainer.TorchDetector`). Defaults
        here: 10 epochs (as in Thijsvanede/DeepLog's HDFS example), batch 256,
        Adam lr 0.01, one CPU thread. Training uses distinct weighted pairs, so an
        epoch is one pass over the DISTINCT pairs: on small or very repetitive data
        (a few hundred distinct pairs) raise ``epochs`` or lower ``batch_size``.
    threshold, contamination, valid_fraction, include_anomalies, random_state
        See :class:`~logsieve.detectors.base.BaseDetector`. ``threshold="auto"`` is the
        top-g rule (``g - 0.5``); ``"best_f1"`` on labelled validation data picks ``g``.

    Attributes
    ----------
    vocab_ : EventVocab
        Keys of the training windows (index 0 padding, 1 unknown).
    min_length_ : int
        Length of the shortest training window (used with ``session_bounds``).
    module_ : NextKeyLSTM
    """

    description = "LSTM next-key model: a window is anomalous when a key is outside top-g"
    citation = CITATION
    input_kind = "sequence"
    requires_labels = False

    history_size: int = 10
    hidden_size: int = 64
    num_layers: int = 2
    num_candidates: int = 9
    embedding_dim: int | None = None
    session_bounds: bool = True
    batch_size: int = 256
    lr: float = 1e-2
    # small LSTMs are dominated by per-operation overhead: one thread is the fastest and
    # immune to CPU contention (fixture fit: 0.06 s with 1 thread, 2.2 s with 2 on a busy
    # 2-core machine)
    num_threads: int | None = 1

    @classmethod
    def _test_params(cls) -> dict[str, Any]:
        return {
            "history_size": 4,
            "hidden_size": 16,
            "num_layers": 1,
            "epochs": 30,
            "batch_size": 64,
            "num_candidates": 2,
            "lr": 5e-2,
        }

    # ------------------------------------------------------------------ data
    def _validate_params(self) -> None:
        super()._validate_params()
        check_positive_ints(self, "history_size", "hidden_size", "num_layers", "num_candidates")

    def _pairs(self, windows: pl.DataFrame) -> Pairs:
        """Next-key pairs of ``windows`` under the ``session_bounds`` convention."""
        encoded = self.vocab_.encode(windows)
        if self.session_bounds:
            return next_event_pairs(append_marker(encoded, self._end_code), self.history_size, 0)
        return next_event_pairs(encoded, self.history_size, self.history_size)

    def _prepare_fit(self, train: pl.DataFrame) -> dict[str, np.ndarray]:
        self.vocab_ = EventVocab.fit(train)
        self.min_length_ = int(event_id_series(train).list.len().min() or 0)
        if self.vocab_.n_keys == 0:
            raise LogsieveError("DeepLog: the training windows hold no event ids")
        arrays = self._pair_arrays(train)
        logger.info(
            "DeepLog: %d keys, %d distinct training pairs (%d in all)",
            self.vocab_.n_keys,
            len(arrays["target"]),
            int(arrays["weight"].sum()),
        )
        return arrays

    def build_module(self) -> nn.Module:
        return NextKeyLSTM(
            len(self.vocab_), self.n_outputs_, self.hidden_size, self.num_layers, self.embedding_dim
        )

    def training_step(self, module: nn.Module, batch: Batch) -> torch.Tensor:
        return F.cross_entropy(module(batch["history"]), batch["target"], reduction="none")

    def update(
        self,
        windows: pl.DataFrame,
        *,
        epochs: int = 5,
        lr: float | None = None,
        progress: Any = None,
    ) -> DeepLog:
        """Online update (paper section 3.3): fine-tune on windows marked as normal.

        Besides fine-tuning the LSTM on their pairs, the marked windows' lengths
        lower ``min_length_``. Keys unseen in training stay unknown (the output layer
        keeps its size), so a marked window with a new key stays anomalous.
        """
        super().update(windows, epochs=epochs, lr=lr, progress=progress)
        lengths = event_id_series(check_windows(windows)).list.len()
        if len(lengths):
            self.min_length_ = min(self.min_length_, int(lengths.min() or 0))
        return self

    # ------------------------------------------------------------------ scoring
    def _pair_ranks(self, windows: pl.DataFrame) -> tuple[Pairs, np.ndarray]:
        """Pairs of ``windows`` and their ranks; an early end ranks like an unseen key."""
        pairs, ranks = super()._pair_ranks(windows)
        if self.session_bounds and len(ranks):
            # a window that ends earlier than every training window did: like an unseen key
            short = (pairs.target == self._end_code) & (pairs.position < self.min_length_)
            ranks[short] = self.oov_rank_
        return pairs, ranks

    # ------------------------------------------------------------------ explanation
    def _position_notes(
        self, actual: str, position: int, target: int, unseen: bool
    ) -> dict[str, Any]:
        if unseen:
            reason = "key never seen in training"
        elif actual == END_OF_WINDOW and position < self.min_length_:
            reason = f"window shorter than every training window ({self.min_length_} keys)"
        else:
            reason = f"not among the {self.num_candidates} most probable keys"
        return {"reason": reason}

    def explain(self, windows: pl.DataFrame, top: int | None = None) -> list[dict[str, Any]]:
        """Why each window was (not) flagged, one JSON-able dict per window, in order.

        Each dict has ``window_id``, ``score``, ``threshold``, ``is_anomaly`` and
        ``positions``: the positions whose rank is above the threshold (all the keys
        outside the top-g under the default threshold), each with ``position``
        (0-based in the window), ``line_id`` (from the ``line_ids`` column when
        present), ``event_id`` (the actual key), ``template``, ``rank``,
        ``probability`` of the actual key, ``unseen`` (key not in the vocabulary),
        ``reason`` (a short sentence) and ``expected``: the ``top`` most probable
        keys (default ``g``) with their ``event_id``, ``template`` and ``probability``.
        """
        return self._explain_positions(windows, top)

    # ------------------------------------------------------------------ diagnosis
    def workflow(self, windows: pl.DataFrame, min_probability: float = 0.1) -> Workflow:
        """Workflow built from this model's predictions (paper section 5, model-based).

        For every distinct history observed in ``windows``, each key the model gives at
        least ``min_probability`` becomes an edge ``last key of the history -> key``
        (``START`` for an empty history, ``END`` for the end marker), with the
        largest such probability; ``count`` is how often the transition was observed
        (0: predicted only). A node with several successors is a divergence point
        (branch, loop or concurrency). One task (no task separation).
        """
        self._check_fitted()
        windows = check_windows(windows)
        observed = build_workflow(windows, templates=self.templates_)
        distinct, _, _ = distinct_windows(windows)
        pairs = self._pairs(distinct)
        hist_u, _, _, _ = count_pairs(pairs.history, np.zeros(len(pairs), dtype=np.int32))

        def prob_step(module: nn.Module, batch: Batch) -> torch.Tensor:
            return torch.softmax(self._masked_logits(module, batch["history"]), dim=1).cpu()

        probs = torch.cat(self._infer(prob_step, {"history": hist_u.astype(np.int64)})).numpy()
        last = hist_u[:, -1]
        rows, cols = np.nonzero(probs >= float(min_probability))
        edges: dict[tuple[str, str], dict[str, float]] = {}
        for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
            src = START if last[r] == PAD else self.vocab_.token(int(last[r]))
            dst = self._key_name(int(c))
            if src is None or dst is None:
                continue
            dst = END if dst == END_OF_WINDOW else dst
            edge = edges.setdefault(
                (src, dst),
                {"count": observed.edges.get((src, dst), {}).get("count", 0.0), "probability": 0.0},
            )
            edge["probability"] = max(edge["probability"], float(probs[r, c]))
        return Workflow(
            edges=edges, templates=dict(self.templates_), tasks=[sorted(self.vocab_.tokens)]
        )

    # ------------------------------------------------------------------ persistence
    def _get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        state, arrays = super()._get_state()
        state["vocab_"] = self.vocab_.to_list()
        state["min_length_"] = self.min_length_
        return state, arrays

    def _set_state(self, state: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
        self.vocab_ = EventVocab.from_list(list(state["vocab_"]))
        self.min_length_ = int(state["min_length_"])
        super()._set_state(state, arrays)


# ====================================================================== workflows (section 5)
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

    def check(self, event_ids: Sequence[str]) -> dict[str, Any] | None:
        """Where ``event_ids`` first leaves the workflow, or None when it conforms.

        The sequence is projected onto each task's keys and walked from that task's
        ``START``; the result names the ``position`` (index in ``event_ids``; the
        length of the sequence for a premature end), the ``previous`` node, the
        actual ``event_id`` (``END`` for the end), its ``template``, and the
        ``expected`` successors with probabilities and templates.
        """
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
                succ = self.successors(prev)
                if key not in succ:
                    return self._divergence(i, prev, key, succ, t)
                prev = key
            succ = self.successors(prev)
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
        results = [self.check(seq) for seq in event_id_series(distinct).to_list()]
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
    linked = (prob >= threshold) | (prob.T >= threshold)
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
        out_total = defaultdict(float)
        names = []
        for a, b, w in zip(src[ok].tolist(), dst[ok].tolist(), weight[ok].tolist(), strict=True):
            na = _node(START, t, n_tasks) if a == PAD else vocab.tokens[a - N_SPECIAL]
            nb = _node(END, t, n_tasks) if b == len(vocab) else vocab.tokens[b - N_SPECIAL]
            names.append((na, nb, w))
            out_total[na] += w
        for na, nb, w in names:
            edges[(na, nb)] = {"count": w, "probability": w / out_total[na]}
    return Workflow(edges=edges, templates=templates, tasks=tasks)


# ============================================================ parameter values (section 3.2)
class _VectorLSTM(nn.Module):
    """LSTM over the last ``h`` parameter-value vectors -> the next vector."""

    def __init__(self, dim: int, hidden_size: int, num_layers: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(dim, hidden_size, num_layers, batch_first=True)
        self.out = nn.Linear(hidden_size, dim)

    def forward(self, history: torch.Tensor) -> torch.Tensor:
        hidden, _ = self.lstm(history)
        return self.out(hidden[:, -1])


def _mse_step(module: nn.Module, batch: Batch) -> torch.Tensor:
    return ((module(batch["history"]) - batch["target"]) ** 2).mean(dim=1)


@dataclass(eq=False)
class ParameterValueModel:
    """DeepLog's parameter-value anomaly model (paper section 3.2).

    Input: an events table in log order with an ``event_id`` column and a list
    column of numbers (``values_column``, default ``"values"``): the parameter-value
    vector of each line (e.g. the numbers extracted from its message: sizes,
    durations, counters). Every line of one key must carry a vector of the same
    length. With ``use_elapsed=True`` and a ``timestamp`` column, the seconds since
    the previous line (of any key) are prepended to each vector, as in the paper.

    For each key with at least ``min_samples`` lines, the values are standardised
    (mean / std of the key's training lines) and an LSTM (``num_layers`` x
    ``hidden_size``) is trained with MSE to predict each vector from the previous
    ``history_size`` vectors of the same key. The last ``valid_fraction`` of the key's
    vectors is held out; the MSEs of their predictions are modelled as a Gaussian
    ``N(mu, sigma)``. A line is anomalous when its prediction error exceeds the upper
    bound of the two-sided ``confidence`` interval, ``mu + z * sigma``.

    Scores (:meth:`decision_function`) are ``(mse - mu) / sigma``; they are nan for
    keys without a model and for the first ``history_size`` lines of each key in the
    scored table (no full history there), and such lines are never flagged.

    The paper does not fix ``history_size`` for this model; 5 is our default.
    """

    history_size: int = 5
    hidden_size: int = 64
    num_layers: int = 2
    epochs: int = 30
    batch_size: int = 256
    lr: float = 1e-2
    valid_fraction: float = 0.25
    confidence: float = 0.99
    min_samples: int = 20
    use_elapsed: bool = False
    values_column: str = "values"
    device: str = "auto"
    num_threads: int | None = None
    random_state: int | None = 0

    def _vectors(self, events: pl.DataFrame) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per key: (row indices in ``events``, (n, d) float64 vectors)."""
        if not isinstance(events, pl.DataFrame):
            raise LogsieveError(
                "parameter-value model input must be a Polars DataFrame (an events table)"
            )
        for col in (EVENT_ID, self.values_column):
            if col not in events.columns:
                raise LogsieveError(f"events table has no {col!r} column (parameter-value model)")
        values = events.get_column(self.values_column)
        if not isinstance(values.dtype, pl.List):
            raise LogsieveError(
                f"{self.values_column!r} must be a list column of numbers, not {values.dtype}"
            )
        frame = pl.DataFrame(
            {
                "_row": np.arange(events.height),
                EVENT_ID: events.get_column(EVENT_ID),
                "_v": values.cast(pl.List(pl.Float64)),
            }
        )
        if self.use_elapsed:
            if "timestamp" not in events.columns:
                raise LogsieveError("use_elapsed=True needs a 'timestamp' column")
            elapsed = (
                events.get_column("timestamp").diff().dt.total_microseconds().fill_null(0) / 1e6
            )
            frame = frame.with_columns(
                pl.concat_list(pl.Series("_e", elapsed).cast(pl.Float64), pl.col("_v")).alias("_v")
            )
        frame = frame.with_columns(pl.col("_v").list.len().alias("_d"))
        out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for (key,), part in frame.group_by(EVENT_ID, maintain_order=True):
            dims = part.get_column("_d").unique()
            if dims.len() != 1:
                raise LogsieveError(
                    f"event {key}: parameter vectors of different lengths "
                    f"({sorted(dims.to_list())})"
                )
            d = int(dims[0])
            if d == 0:
                continue
            flat = part.get_column("_v").explode().to_numpy().astype(np.float64)
            if np.isnan(flat).any():
                raise LogsieveError(f"event {key}: parameter values must not be null or nan")
            out[str(key)] = (part.get_column("_row").to_numpy(), flat.reshape(-1, d))
        return out

    def _windows(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        h = self.history_size
        idx = np.arange(h, len(vectors))
        hist = vectors[idx[:, None] - h + np.arange(h)[None, :]]
        return hist.astype(np.float32), vectors[idx].astype(np.float32)

    def fit(self, events: pl.DataFrame) -> ParameterValueModel:
        """Train one model per key (keys with fewer than ``min_samples`` lines are skipped)."""
        if not 0.0 < self.valid_fraction < 1.0:
            raise LogsieveError(
                "valid_fraction must be in (0, 1): the Gaussian is fitted on validation errors"
            )
        if not 0.0 < float(self.confidence) < 1.0:
            raise LogsieveError(f"confidence must be in (0, 1), not {self.confidence!r}")
        per_key = self._vectors(events)
        models: dict[str, dict[str, Any]] = {}
        modules: dict[str, nn.Module] = {}
        for key, (_, vectors) in per_key.items():
            n_valid = int(math.ceil(len(vectors) * self.valid_fraction))
            n_train = len(vectors) - n_valid
            if len(vectors) < self.min_samples or n_train <= self.history_size or n_valid < 2:
                logger.info("parameter model: skipping %s (%d lines)", key, len(vectors))
                continue
            mean = vectors[:n_train].mean(axis=0)
            std = vectors[:n_train].std(axis=0)
            std[std == 0] = 1.0
            z = (vectors - mean) / std
            hist, target = self._windows(z)
            cut = n_train - self.history_size
            with torch_session(self.random_state, self.device, self.num_threads) as (
                device,
                generator,
            ):
                module = _VectorLSTM(z.shape[1], self.hidden_size, self.num_layers)
                train_module(
                    module,
                    _mse_step,
                    {"history": hist[:cut], "target": target[:cut]},
                    epochs=self.epochs,
                    batch_size=self.batch_size,
                    lr=self.lr,
                    device=device,
                    generator=generator,
                    name=f"ParameterValueModel[{key}]",
                )
                errors = self._errors(module, hist[cut:], target[cut:], device)
            module.cpu()
            mu, sigma = float(errors.mean()), float(errors.std())
            models[key] = {
                "dim": int(z.shape[1]),
                "mean": mean.tolist(),
                "std": std.tolist(),
                "mu": mu,
                "sigma": max(sigma, 1e-12),
            }
            modules[key] = module
        if not models:
            raise LogsieveError(
                f"no event id has the {self.min_samples} lines with parameter values "
                "needed to fit a model"
            )
        self.z_ = NormalDist().inv_cdf(0.5 + float(self.confidence) / 2.0)
        self.models_, self.modules_ = models, modules
        return self

    def _errors(
        self, module: nn.Module, hist: np.ndarray, target: np.ndarray, device: torch.device
    ) -> np.ndarray:
        module.to(device).eval()
        out = []
        with torch.inference_mode():
            for s in range(0, len(hist), 8192):
                batch = {
                    "history": torch.from_numpy(hist[s : s + 8192]).to(device),
                    "target": torch.from_numpy(target[s : s + 8192]).to(device),
                }
                out.append(_mse_step(module, batch).cpu().numpy())
        return np.concatenate(out) if out else np.zeros(0)

    def _check(self) -> None:
        if not hasattr(self, "models_"):
            raise NotFittedError("this ParameterValueModel is not fitted yet: call fit() first")

    def score_events(self, events: pl.DataFrame) -> pl.DataFrame:
        """Per line: ``param_mse``, ``param_score`` (z), ``param_anomaly`` (bool), as a DataFrame.

        Rows keep the order of ``events``; ``line_id`` is copied when present.
        """
        self._check()
        mse = np.full(events.height, np.nan)
        score = np.full(events.height, np.nan)
        for key, (rows, vectors) in self._vectors(events).items():
            info = self.models_.get(key)
            if info is None or len(vectors) <= self.history_size:
                continue
            if vectors.shape[1] != info["dim"]:
                raise LogsieveError(
                    f"event {key}: {vectors.shape[1]} parameter values, "
                    f"the model expects {info['dim']}"
                )
            z = (vectors - np.asarray(info["mean"])) / np.asarray(info["std"])
            hist, target = self._windows(z)
            with torch_session(self.random_state, self.device, self.num_threads) as (device, _):
                err = self._errors(self.modules_[key], hist, target, device)
                self.modules_[key].cpu()
            at = rows[self.history_size :]
            mse[at] = err
            score[at] = (err - info["mu"]) / info["sigma"]
        cols: dict[str, Any] = {}
        if "line_id" in events.columns:
            cols["line_id"] = events.get_column("line_id")
        cols[EVENT_ID] = events.get_column(EVENT_ID)
        flagged = np.nan_to_num(score, nan=-np.inf) > self.z_
        return pl.DataFrame(
            {**cols, "param_mse": mse, "param_score": score, "param_anomaly": flagged}
        )

    def decision_function(self, events: pl.DataFrame) -> np.ndarray:
        """z-score of each line's prediction error (nan where not scored)."""
        return self.score_events(events).get_column("param_score").to_numpy()

    def predict(self, events: pl.DataFrame) -> np.ndarray:
        """1 where the error is above ``mu + z * sigma`` of the key's validation errors."""
        return self.score_events(events).get_column("param_anomaly").to_numpy().astype(np.int8)

    # ---- persistence (same directory layout and checks as detectors)
    def save(self, path: str | Path) -> Path:
        from logsieve.detectors.persistence import write_model_dir

        self._check()
        arrays = {
            f"{key}/{name}": t.detach().cpu().contiguous().numpy()
            for key, module in self.modules_.items()
            for name, t in module.state_dict().items()
        }
        params = {k: getattr(self, k) for k in self._param_names()}
        doc = {
            "name": "deeplog-parameter-values",
            "params": params,
            "state": {"z_": self.z_, "models_": self.models_},
        }
        return write_model_dir(path, doc, arrays)

    @classmethod
    def _param_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def load(cls, path: str | Path) -> ParameterValueModel:
        from logsieve.detectors.persistence import read_model_dir

        doc, arrays = read_model_dir(path)
        if doc.get("name") != "deeplog-parameter-values":
            raise LogsieveError(f"{path}: not a DeepLog parameter-value model")
        params = {k: v for k, v in doc["params"].items() if k in cls._param_names()}
        model = cls(**params)
        model.z_ = float(doc["state"]["z_"])
        model.models_ = {str(k): dict(v) for k, v in doc["state"]["models_"].items()}
        model.modules_ = {}
        for key, info in model.models_.items():
            module = _VectorLSTM(int(info["dim"]), model.hidden_size, model.num_layers)
            prefix = f"{key}/"
            tensors = {
                k[len(prefix) :]: torch.from_numpy(np.array(v))
                for k, v in arrays.items()
                if k.startswith(prefix)
            }
            try:
                module.load_state_dict(tensors, strict=True)
            except RuntimeError as exc:
                raise LogsieveError(
                    f"{path}: saved weights of {key} do not match the network"
                ) from exc
            model.modules_[key] = module.eval()
        return model
