"""Invariant Mining (Lou, Fu, Yang, Xu, Li, USENIX ATC 2010).

"Mining Invariants from Console Logs for System Problem Detection": the event counts of a
normal window obey sparse linear relations with small integer coefficients (a file
that is opened is closed: ``count(open) = count(close)``). The paper mines them from
the window x event count matrix ``X`` of normal windows and flags a window that breaks
any of them.

Mining, as in the paper:

1. *Invariant space dimension.* The right singular vectors of ``X`` with the smallest
   singular values are the best candidate relations; ``r`` is the number of them,
   taken from the smallest up, that hold (``|x . v| < epsilon``) on at least
   ``support`` of the windows (the paper's estimate of the dimension of the invariant
   space, computed here from the eigenvectors of ``X^T W X``).
2. *Hypothesis and test over small event subsets.* For subset sizes ``k = 1 ..
   max_size`` and every subset ``S`` of ``k`` columns, the hypothesis is the
   least-squares relation on ``S`` (the eigenvector of the smallest eigenvalue of
   ``X_S^T W X_S``); it is scaled to integers (divided by its smallest coefficient,
   times ``1 .. max_scale``, rounded; the first scale that passes is kept) and tested:
   it must hold on at least ``support`` of the training windows. Subsets that contain
   the columns of an invariant already found are skipped (a relation there would only
   combine the known one with a smaller one), and a valid invariant is kept only when
   it is linearly independent of those already kept. The search stops when ``r``
   invariants are found or every size up to ``max_size`` is done.

Detection: a window violates an invariant ``theta`` when ``|x . theta| > epsilon``
(with integer counts and coefficients and ``epsilon < 1``: when the relation does not
hold exactly). Score = the number of violated invariants; the natural threshold 0.5
flags a window that violates at least one. Explanations give the broken relations as
text, e.g. ``count(E5) = count(E9)`` or ``count(E2) + count(E3) = count(E1)``.

Paper and loglizer defaults: ``support = 0.98``, ``epsilon = 0.5``, scales 1, 2, 3.
The paper searches up to a small combination size (invariants of more than a handful
of events are rare); ``max_size = 3`` here keeps the search fast.

Implementation notes (same result, less work):

- distinct count vectors are used once with their multiplicity as weight (supports
  and least-squares fits are weighted sums over windows);
- a subset is only hypothesised when it *can* host an integer invariant with every
  coefficient non-zero: for each member ``j``, the share of windows where ``j``
  occurs but no other member does (such a window breaks the relation, since
  ``|a_j x_j| >= 1 > epsilon``) must not exceed ``1 - support``; the check uses
  pairwise co-occurrence bounds and is skipped when ``epsilon >= 1``;
- hypotheses of one size are computed together (batched eigen-decompositions) and
  tested together (gathered column products), then accepted in subset order.

``include_constant=True`` adds a constant column, so relations such as
``count(E22) = 1`` (exactly one allocation per block) can be mined; loglizer's
implementation has no constant term, and neither does the default here.

The out-of-vocabulary column (events never seen in training) is always zero in the
training windows, so the relation ``count(<oov>) = 0`` is found first: any unseen
event breaks it.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping
from itertools import combinations
from typing import Any, ClassVar

import numpy as np
import polars as pl

from logsieve.detectors.base import check_positive_ints
from logsieve.detectors.classical.base import CountDetector
from logsieve.detectors.registry import register_detector
from logsieve.errors import LogsieveError

logger = logging.getLogger(__name__)

__all__ = ["InvariantsMining", "format_invariant"]

CITATION = (
    "Jian-Guang Lou, Qiang Fu, Shengqi Yang, Ye Xu, Jiang Li. "
    "Mining Invariants from Console Logs for "
    "System Problem Detection. USENIX ATC 2010. https://www.usenix.org/conference/usenix-atc-10/"
    "mining-invariants-console-logs-system-problem-detection"
)

CONSTANT_NAME = "1"
#: largest (rows x candidates) block evaluated at once in the support tests
_BLOCK = 4_000_000


def _natural_key(term: tuple[int, str]) -> tuple[Any, ...]:
    """Sort terms by event id with numbers compared as numbers (E2 before E10); constant last."""
    name = term[1]
    parts = re.split(r"(\d+)", name)
    return (name == CONSTANT_NAME, [(0, int(p)) if p.isdigit() else (1, p) for p in parts])


def format_invariant(coef: np.ndarray, names: list[str]) -> str:
    """Readable relation of integer coefficients, e.g. ``count(E2) + count(E3) = count(E1)``.

    Positive terms go left, negative ones right (each side in event-id order); the
    column named ``"1"`` is the constant; an empty side is ``0``.
    """

    def side(terms: list[tuple[int, str]]) -> str:
        parts = []
        const = 0
        for c, name in terms:
            if name == CONSTANT_NAME:
                const += c
            else:
                parts.append(f"count({name})" if c == 1 else f"{c}*count({name})")
        if const:
            parts.append(str(const))
        return " + ".join(parts) if parts else "0"

    left = sorted(((int(c), names[j]) for j, c in enumerate(coef) if c > 0), key=_natural_key)
    right = sorted(((int(-c), names[j]) for j, c in enumerate(coef) if c < 0), key=_natural_key)
    if not left or (len(left) == 1 and left[0][1] == CONSTANT_NAME and right):
        left, right = right, left
    return f"{side(left)} = {side(right)}"


def _normalise_sign(coef: np.ndarray) -> np.ndarray:
    nz = np.flatnonzero(coef)
    if nz.size and coef[nz[0]] < 0:
        coef = -coef
    g = int(np.gcd.reduce(np.abs(coef[nz]).astype(np.int64))) if nz.size else 1
    return coef // g if g > 1 else coef


@register_detector("invariants")
class InvariantsMining(CountDetector):
    """Invariant Mining on event counts (Lou et al., USENIX ATC 2010); see the module docstring.

    Parameters
    ----------
    support : float, default 0.98
        Share of the (normal) training windows on which a relation must hold.
    epsilon : float, default 0.5
        A relation holds on a window when ``|x . theta| < epsilon``.
    max_size : int, default 3
        Largest number of terms (events, plus the constant) of a searched invariant.
    max_scale : int, default 3
        Integer scalings tried when rounding a hypothesis (1 .. max_scale).
    include_constant : bool, default False
        Allow a constant term (``count(E) = 1``); off in loglizer.
    max_candidates : int, default 2_000_000
        Safety cap on the subsets hypothesised per size (logged when hit).

    Attributes
    ----------
    invariants_ : ndarray of int64, shape (n_invariants, n_columns)
        Integer coefficients over the count columns (``<oov>`` first, then the
        vocabulary; the constant last when ``include_constant``).
    supports_ : ndarray of float64, shape (n_invariants,)
        Share of training windows satisfying each invariant.
    dimension_ : int
        Estimated dimension ``r`` of the invariant space.
    """

    description: ClassVar[str] = (
        "sparse integer invariants among event counts; score = number of violated invariants"
    )
    citation: ClassVar[str] = CITATION

    support: float = 0.98
    epsilon: float = 0.5
    max_size: int = 3
    max_scale: int = 3
    include_constant: bool = False
    max_candidates: int = 2_000_000

    @classmethod
    def _test_params(cls) -> dict[str, Any]:
        return {}

    def _validate_params(self) -> None:
        super()._validate_params()
        if not 0.0 < float(self.support) <= 1.0:
            raise LogsieveError(f"support must be in (0, 1], not {self.support!r}")
        if not float(self.epsilon) > 0:
            raise LogsieveError(f"epsilon must be positive, not {self.epsilon!r}")
        check_positive_ints(self, "max_size", "max_scale", "max_candidates")

    def _counter_params(self) -> dict[str, Any]:
        return {"tfidf": False, "normalize": None}

    # ------------------------------------------------------------------ matrices
    def _design(self, X: np.ndarray) -> np.ndarray:
        if self.include_constant:
            return np.column_stack([X, np.ones(X.shape[0])])
        return X

    def _column_names(self) -> list[str]:
        names = [self._event_label(j) for j in range(self.counter_.n_features_)]
        return [*names, CONSTANT_NAME] if self.include_constant else names

    # ------------------------------------------------------------------ mining
    def _supports(
        self, X: np.ndarray, w: np.ndarray, subsets: np.ndarray, coefs: np.ndarray
    ) -> np.ndarray:
        """Weighted share of rows where each relation ``(subsets[i], coefs[i])`` holds."""
        total = float(w.sum())
        out = np.empty(len(subsets), dtype=np.float64)
        step = max(1, _BLOCK // max(1, X.shape[0] * subsets.shape[1]))
        for a in range(0, len(subsets), step):
            S, C = subsets[a : a + step], coefs[a : a + step]
            resid = np.zeros((X.shape[0], len(S)))
            for t in range(S.shape[1]):
                resid += X[:, S[:, t]] * C[:, t][None, :]
            out[a : a + step] = (w @ (np.abs(resid) < self.epsilon)) / total
        return out

    def _estimate_dimension(self, X: np.ndarray, w: np.ndarray, gram: np.ndarray) -> int:
        """How many eigenvectors of ``X^T W X``, smallest first, hold on ``support`` of the rows."""
        _, vecs = np.linalg.eigh(gram)
        holds = np.abs(X @ vecs) < self.epsilon
        sup = (w @ holds) / float(w.sum())
        failing = np.flatnonzero(sup < self.support)
        return int(failing[0]) if failing.size else int(vecs.shape[1])

    def _possible(self, subsets: np.ndarray, freq: np.ndarray, co: np.ndarray) -> np.ndarray:
        """Subsets that pass the co-occurrence bound (see the module docstring)."""
        if self.epsilon >= 1.0 or subsets.shape[1] < 1:
            return np.ones(len(subsets), dtype=bool)
        slack = 1.0 - float(self.support) + 1e-12
        ok = np.ones(len(subsets), dtype=bool)
        k = subsets.shape[1]
        for t in range(k):
            j = subsets[:, t]
            alone = freq[j].copy()
            for u in range(k):
                if u != t:
                    alone -= co[j, subsets[:, u]]
            ok &= alone <= slack
        return ok

    def _hypotheses(self, gram: np.ndarray, subsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Integer-scaled candidates (one per subset and scale) and a mask of usable ones.

        Returns ``coefs`` of shape (n_scales, n_subsets, k) and ``usable`` (n_subsets,).
        """
        k = subsets.shape[1]
        G = gram[subsets[:, :, None], subsets[:, None, :]]
        _, vecs = np.linalg.eigh(G)
        theta = vecs[:, :, 0]
        mag = np.abs(theta)
        usable = (
            (mag.min(axis=1) > 1e-6 * mag.max(axis=1))
            if k > 1
            else np.ones(len(subsets), dtype=bool)
        )
        base = theta / np.where(
            mag.min(axis=1, keepdims=True) > 0, mag.min(axis=1, keepdims=True), 1.0
        )
        scales = np.arange(1, int(self.max_scale) + 1, dtype=np.float64)
        coefs = np.round(base[None, :, :] * scales[:, None, None])
        return coefs, usable

    def _fit_counts(self, train: pl.DataFrame, valid: pl.DataFrame) -> None:
        X0, w = self._distinct_features(train)
        X = self._design(X0)
        n_cols = X.shape[1]
        const_col = n_cols - 1 if self.include_constant else -1
        gram = (X * w[:, None]).T @ X
        total = float(w.sum())
        present = (X != 0).astype(np.float64)
        freq = (w @ present) / total
        co = ((present * w[:, None]).T @ present) / total

        r = self._estimate_dimension(X, w, gram)
        found: list[np.ndarray] = []
        supports: list[float] = []
        supports_of: list[frozenset[int]] = []
        basis = np.zeros((0, n_cols))
        blocked_singles: set[int] = set()
        for k in range(1, int(self.max_size) + 1):
            if len(found) >= r:
                break
            cols = [j for j in range(n_cols) if j not in blocked_singles]
            combos = combinations(cols, k)
            subsets = (
                np.fromiter(
                    (c for combo in combos for c in combo), dtype=np.int64, count=-1
                ).reshape(-1, k)
                if math.comb(len(cols), k) <= self.max_candidates
                else None
            )
            if subsets is None:
                logger.warning(
                    "invariants: %d subsets of size %d exceed max_candidates=%d; "
                    "stopping the search at size %d",
                    math.comb(len(cols), k),
                    k,
                    self.max_candidates,
                    k - 1,
                )
                break
            if k == 1 and const_col >= 0:
                subsets = subsets[subsets[:, 0] != const_col]
            if len(subsets) == 0:
                continue
            for prev in supports_of:
                if len(prev) > 1:  # skip supersets of invariants found at smaller sizes
                    subsets = subsets[np.isin(subsets, list(prev)).sum(axis=1) < len(prev)]
            subsets = subsets[self._possible(subsets, freq, co)]
            if len(subsets) == 0:
                continue
            coefs, usable = self._hypotheses(gram, subsets)
            subsets, coefs = subsets[usable], coefs[:, usable]
            chosen = np.full(len(subsets), -1)
            chosen_support = np.zeros(len(subsets))
            for s in range(coefs.shape[0]):
                todo = np.flatnonzero((chosen < 0) & (np.abs(coefs[s]) > 0).all(axis=1))
                if todo.size == 0:
                    continue
                sup = self._supports(X, w, subsets[todo], coefs[s, todo])
                ok = sup >= self.support
                chosen[todo[ok]] = s
                chosen_support[todo[ok]] = sup[ok]
            for i in np.flatnonzero(chosen >= 0):
                members = frozenset(int(c) for c in subsets[i])
                if any(prev <= members for prev in supports_of):
                    continue  # contains an invariant accepted earlier in this size
                vec = np.zeros(n_cols)
                vec[subsets[i]] = coefs[chosen[i], i]
                resid = vec - basis.T @ (basis @ vec)
                norm = float(np.linalg.norm(resid))
                if norm <= 1e-8 * float(np.linalg.norm(vec)):
                    continue
                basis = np.vstack([basis, resid / norm])
                found.append(_normalise_sign(vec.astype(np.int64)))
                supports.append(float(chosen_support[i]))
                supports_of.append(members)
                if k == 1:
                    blocked_singles.add(int(subsets[i, 0]))
                if len(found) >= r:
                    break
        self.dimension_ = int(r)
        self.invariants_ = np.array(found, dtype=np.int64).reshape(len(found), n_cols)
        self.supports_ = np.array(supports, dtype=np.float64)
        if r == 0:
            logger.warning(
                "invariants: no invariant space found (r = 0): every window will score 0"
            )
        logger.info("invariants: r = %d, mined %d invariants", r, len(found))

    # ------------------------------------------------------------------ scoring
    def _violations(self, X: np.ndarray) -> np.ndarray:
        """Boolean (n_windows, n_invariants): which invariants each row breaks."""
        D = self._design(X)
        return np.abs(D @ self.invariants_.T.astype(np.float64)) > self.epsilon

    def _score_matrix(self, X: np.ndarray) -> np.ndarray:
        if len(self.invariants_) == 0:
            return np.zeros(X.shape[0])
        return self._violations(X).sum(axis=1).astype(np.float64)

    def _natural_threshold(self) -> float:
        return 0.5

    def _contributions(self, X: np.ndarray) -> np.ndarray:
        if len(self.invariants_) == 0:
            return np.zeros_like(X)
        involved = (self.invariants_[:, : X.shape[1]] != 0).astype(np.float64)
        return self._violations(X).astype(np.float64) @ involved

    @property
    def relations_(self) -> list[str]:
        """The mined invariants as readable relations."""
        names = self._column_names()
        return [format_invariant(c, names) for c in self.invariants_]

    def _explain_extra(self, windows: pl.DataFrame, X: np.ndarray) -> list[dict[str, Any]]:
        names = self._column_names()
        relations = self.relations_
        if len(self.invariants_) == 0:
            return [{"violated": []} for _ in range(X.shape[0])]
        D = self._design(X)
        resid = D @ self.invariants_.T.astype(np.float64)
        out = []
        for i in range(X.shape[0]):
            broken = []
            for v in np.flatnonzero(np.abs(resid[i]) > self.epsilon):
                cols = np.flatnonzero(self.invariants_[v])
                broken.append(
                    {
                        "invariant": relations[v],
                        "counts": {names[c]: int(round(D[i, c])) for c in cols if names[c] != "1"},
                        "residual": float(resid[i, v]),
                        "support": float(self.supports_[v]),
                    }
                )
            out.append({"violated": broken})
        return out

    # ------------------------------------------------------------------ persistence
    def _model_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return {"dimension": self.dimension_}, {
            "invariants": self.invariants_,
            "supports": self.supports_,
        }

    def _load_model_state(self, state: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
        self.dimension_ = int(state["dimension"])
        inv = np.asarray(arrays["invariants"], dtype=np.int64)
        width = self.counter_.n_features_ + (1 if self.include_constant else 0)
        if inv.ndim != 2 or (inv.shape[0] and inv.shape[1] != width):
            raise LogsieveError(f"saved invariants have shape {inv.shape}, expected (n, {width})")
        self.invariants_ = inv.reshape(-1, width)
        self.supports_ = np.asarray(arrays["supports"], dtype=np.float64)
