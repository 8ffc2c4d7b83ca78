"""DeepLog (Du, Li, Zheng, Srikumar, ACM CCS 2017): the log-key anomaly model.

An LSTM reads the ``h`` most recent log keys and predicts the next; a key outside the
``g`` most probable ones (or never seen in training) is an anomaly. The paper's other
two parts live beside it: the parameter-value model in :mod:`.deeplog_params` and
workflow construction for diagnosis in :mod:`.deeplog_workflow`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, cast

import numpy as np
import polars as pl
import torch
import torch.nn.functional as F
from torch import nn

from logsieve.detectors.base import check_positive_ints
from logsieve.detectors.deeplog_params import WindowValueModel
from logsieve.detectors.deeplog_workflow import END, START, Workflow, build_workflow
from logsieve.detectors.neural.next_event import END_OF_WINDOW, NextEventMixin
from logsieve.detectors.neural.trainer import Batch, TorchDetector
from logsieve.detectors.registry import register_detector
from logsieve.errors import LogsieveError
from logsieve.features.sequence import (
    PAD,
    EventVocab,
    Pairs,
    append_marker,
    check_windows,
    count_pairs,
    distinct_windows,
    event_id_series,
    next_event_pairs,
)
from logsieve.schema import LABEL

logger = logging.getLogger(__name__)

__all__ = ["END_OF_WINDOW", "DeepLog", "NextKeyLSTM"]

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
    """DeepLog log-key anomaly detection (Du et al., CCS 2017, section 3.1).

    Paper defaults for HDFS (also wuyifan18/DeepLog's and Thijsvanede/DeepLog's):
    ``h = 10``, ``L = 2`` LSTM layers, ``alpha = 64`` memory units, ``g = 9``, one-hot
    keys. :meth:`~logsieve.detectors.neural.trainer.TorchDetector.update` gives the
    paper's online update on false positives (section 3.3).

    Window scores (higher = more anomalous): for every position of a
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
    parameter_model : bool, default False
        Also train the paper's parameter-value model (section 3.2,
        :class:`~logsieve.detectors.deeplog_params.WindowValueModel`) on the windows'
        ``values`` and ``elapsed`` columns (``logsieve parse --values`` then ``group``).
        A window is then flagged when a key is outside the top-g OR a parameter value
        (or the time since the previous line) is outside the Gaussian range of its
        key's prediction errors; the score is ``max(rank, g - 0.5 + z - z_)``.
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
    parameter_model: bool = False
    batch_size: int = 256
    lr: float = 1e-2
    # small LSTMs are dominated by per-operation overhead: one thread is the fastest and
    # immune to CPU contention (timings in docs/results.md)
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
        self.min_length_ = int(cast(int, event_id_series(train).list.len().min()) or 0)
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
            self.min_length_ = min(self.min_length_, int(cast(int, lengths.min()) or 0))
        return self

    # ------------------------------------------------------------------ values
    def needs_values(self) -> bool:
        """True when the windows must carry ``values`` and ``elapsed`` (parse --values)."""
        return bool(self.parameter_model)

    def _fit(self, train: pl.DataFrame, valid: pl.DataFrame, progress: Any) -> None:
        self.values_: WindowValueModel | None = None
        self.taught_pairs_: list[list[str]] = []
        if self.parameter_model:
            WindowValueModel.check(train)
        super()._fit(train, valid, progress)
        if self.parameter_model:
            normal = valid.filter(pl.col(LABEL).is_null() | (pl.col(LABEL) == 0))
            self.values_ = WindowValueModel(
                device=self.device, random_state=self.random_state
            ).fit(train, normal)
        # the workflow of the training windows: alerts name where a window left it
        self.workflow_: Workflow | None = build_workflow(train, templates=self.templates_)

    def _score_distinct(self, windows: pl.DataFrame) -> np.ndarray:
        scores = super()._score_distinct(windows)
        values = getattr(self, "values_", None)
        if values is None or windows.height == 0:
            return scores
        shifted = self._natural_threshold() + (values.window_scores(windows) - values.z_)
        return np.maximum(scores, shifted)

    def add_keys(self, windows: pl.DataFrame) -> list[str]:
        """Feedback: keys of ``windows`` never seen in training join the vocabulary.

        The network grows in place: the known keys keep their weights, the end marker
        moves to the new last output, and each new key starts with zero weights and a
        low bias (the fine-tuning that follows teaches where it occurs). Returns the new keys.
        """
        self._check_fitted()
        seen = set(self.vocab_.tokens)
        new = sorted(
            {k for k in event_id_series(check_windows(windows)).explode().drop_nulls().to_list()}
            - seen
        )
        if not new:
            return []
        old_module, old_n, old_outputs = self.module_, len(self.vocab_), self.n_outputs_
        self.vocab_ = EventVocab([*self.vocab_.tokens, *new])
        module = self.build_module()
        old, fresh = old_module.state_dict(), module.state_dict()
        with torch.no_grad():
            for key, tensor in fresh.items():
                src = old[key]
                if key == "embedding.weight":
                    tensor.zero_()
                    tensor[:old_n] = src
                elif key == "lstm.weight_ih_l0" and not self.embedding_dim:
                    tensor.zero_()  # one-hot input: one column per index
                    tensor[:, :old_n] = src
                elif key.startswith("out."):
                    tensor.zero_()
                    if key == "out.bias":
                        tensor.fill_(float(src.min()) - 5.0)
                    tensor[:old_n] = src[:old_n]
                    if old_outputs > old_n:  # the end marker
                        tensor[len(self.vocab_)] = src[old_n]
                else:
                    tensor.copy_(src)
        module.load_state_dict(fresh)
        self.module_ = module
        return new

    # ------------------------------------------------------------------ scoring
    def _pair_ranks(self, windows: pl.DataFrame) -> tuple[Pairs, np.ndarray]:
        """Pairs of ``windows`` and their ranks; an early end ranks like an unseen key."""
        pairs, ranks = super()._pair_ranks(windows)
        if self.session_bounds and len(ranks):
            # a window that ends earlier than every training window did: like an unseen key
            short = (pairs.target == self._end_code) & (pairs.position < self.min_length_)
            ranks[short] = self.oov_rank_
        return pairs, self.adjust_pair_ranks(pairs.history, pairs.target, ranks)

    def adjust_pair_ranks(
        self, history: np.ndarray, target: np.ndarray, ranks: np.ndarray
    ) -> np.ndarray:
        """``ranks`` (of the pairs ``history[i] -> target[i]``, in the codes of
        :meth:`_pairs`, after the short-window rule) with the taught pairs
        (:meth:`teach_pairs`) that rank above the threshold set to 0, in place. Batch
        scoring and ``watch``'s streaming ranks both go through here."""
        if getattr(self, "taught_pairs_", None) and len(ranks):
            flagged = np.flatnonzero(ranks > self.threshold_)
            if len(flagged):
                codes = self._taught_codes()
                rows = self._pair_rows(history, target, flagged)
                hit = np.fromiter((r.tobytes() in codes for r in rows), bool, len(rows))
                ranks[flagged[hit]] = 0.0
        return ranks

    # ------------------------------------------------------------------ feedback
    @staticmethod
    def _pair_rows(history: np.ndarray, target: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """Rows ``idx`` of the pairs as ``history codes + target code`` (int64)."""
        return np.concatenate([history[idx], target[idx, None]], axis=1).astype(np.int64)

    def _pair_code(self, token: str) -> int:
        if token == "":
            return PAD
        if token == END_OF_WINDOW:
            return self._end_code
        return self.vocab_.index(token)

    def _taught_codes(self) -> set[bytes]:
        return {
            np.array([self._pair_code(t) for t in pair], dtype=np.int64).tobytes()
            for pair in self.taught_pairs_
        }

    def teach_pairs(self, windows: pl.DataFrame) -> int:
        """Feedback: the (history, next key) pairs of ``windows`` still outside the top-g
        are remembered as normal and rank 0 from now on; returns how many were added.

        The fine-tuning of :meth:`update` generalises, but the ranks of rare keys (HDFS:
        keys in 14 of 7,775 training sessions) sit among many near-equal low logits, so
        the steps that lift them reorder that tail and flag other normal windows. An
        exact pair is what the operator vouched for and changes no other prediction.
        Pairs are stored as event ids (``""`` for padding, the end marker by name), so
        they survive a growing vocabulary.
        """
        self._check_fitted()
        pairs, ranks = self._pair_ranks(check_windows(windows))
        flagged = np.flatnonzero(ranks > self.threshold_)
        taught: list[list[str]] = [list(p) for p in getattr(self, "taught_pairs_", [])]
        seen = {tuple(p) for p in taught}
        for row in self._pair_rows(pairs.history, pairs.target, flagged).tolist():
            names = ["" if c == PAD else self._key_name(int(c)) for c in row]
            if any(n is None for n in names):  # an unseen key cannot be vouched for
                continue
            pair = tuple(cast(list[str], names))
            if pair not in seen:
                seen.add(pair)
                taught.append(list(pair))
        added = len(taught) - len(getattr(self, "taught_pairs_", []))
        self.taught_pairs_ = taught
        return added

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
        out = self._explain_positions(windows, top)
        values = getattr(self, "values_", None)
        params = values.explain(check_windows(windows), self.templates_) if values else None
        workflow = getattr(self, "workflow_", None)
        checks = workflow.check_windows(windows) if workflow is not None else None
        for i, exp in enumerate(out):
            if params is not None:
                exp["parameters"] = params[i]
            if checks is not None:
                exp["workflow"] = checks[i]
        return out

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
        values = getattr(self, "values_", None)
        if values is not None:
            vstate, varrays = values.get_state()
            state["values_"] = vstate
            arrays.update(varrays)
        workflow = getattr(self, "workflow_", None)
        if workflow is not None:
            state["workflow_"] = workflow.to_dict()
        if getattr(self, "taught_pairs_", None):
            state["taught_pairs_"] = [list(p) for p in self.taught_pairs_]
        return state, arrays

    def _set_state(self, state: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
        self.vocab_ = EventVocab.from_list(list(state["vocab_"]))
        self.min_length_ = int(state["min_length_"])
        vstate = state.get("values_")
        self.values_ = WindowValueModel.from_state(vstate, arrays) if vstate else None
        wf = state.get("workflow_")
        self.workflow_ = Workflow.from_dict(wf) if wf else None
        self.taught_pairs_ = [list(p) for p in state.get("taught_pairs_", [])]
        super()._set_state(state, arrays)
