"""Binary decision trees flattened into plain node arrays and scored in NumPy.

scikit-learn grows the trees (the decision tree, every isolation forest); copying them
into arrays lets a model save to safetensors without pickle and score the same after
loading.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from logsieve.errors import LogsieveError

__all__ = ["FlatTrees", "node_depths"]


def node_depths(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Depth of every node of trees stored as child arrays (-1 = leaf), level by level."""
    left = np.asarray(left, dtype=np.int64)
    right = np.asarray(right, dtype=np.int64)
    depth = np.zeros(len(left), dtype=np.int64)
    inner = np.flatnonzero(left >= 0)
    children = np.concatenate([left[inner], right[inner]])
    parents = np.concatenate([inner, inner])
    for _ in range(len(left) + 1):
        new = depth.copy()
        new[children] = depth[parents] + 1
        if np.array_equal(new, depth):
            return depth
        depth = new
    raise LogsieveError("tree arrays contain a cycle")


class FlatTrees:
    """Binary decision trees flattened into one set of node arrays (scored in NumPy).

    ``feature[n] < 0`` marks a leaf; internal nodes send ``x[feature] <= threshold``
    to ``left`` else ``right``; ``value[n]`` is the node's output (read at leaves);
    ``roots[t]`` is the root of tree ``t``.
    """

    KEYS = ("feature", "threshold", "left", "right", "value", "roots")

    def __init__(
        self,
        feature: ArrayLike,
        threshold: ArrayLike,
        left: ArrayLike,
        right: ArrayLike,
        value: ArrayLike,
        roots: ArrayLike,
    ) -> None:
        self.feature = np.asarray(feature, dtype=np.int64)
        self.threshold = np.asarray(threshold, dtype=np.float64)
        self.left = np.asarray(left, dtype=np.int64)
        self.right = np.asarray(right, dtype=np.int64)
        self.value = np.asarray(value, dtype=np.float64)
        self.roots = np.asarray(roots, dtype=np.int64)
        n = len(self.feature)
        if not (len(self.threshold) == len(self.left) == len(self.right) == len(self.value) == n):
            raise LogsieveError("tree arrays have different lengths")
        internal = self.feature >= 0
        if internal.any() and (
            min(self.left[internal].min(), self.right[internal].min()) < 0
            or max(self.left[internal].max(), self.right[internal].max()) >= n
        ):
            raise LogsieveError("tree arrays hold out-of-range child indices")
        if len(self.roots) and (self.roots.min() < 0 or self.roots.max() >= n):
            raise LogsieveError("tree arrays hold out-of-range roots")
        # bounds the descent in leaves() (and refuses cyclic arrays from a tampered file)
        self.max_depth = (
            int(node_depths(np.where(internal, self.left, -1), self.right).max()) if n else 0
        )

    @classmethod
    def from_sklearn(
        cls, trees: list[Any], values: list[np.ndarray], features: list[np.ndarray] | None = None
    ) -> FlatTrees:
        """Flatten scikit-learn ``tree_`` objects; ``values[t]`` is tree ``t``'s node output.

        ``features[t]``, when given, maps tree ``t``'s column indices to the input's
        (an isolation forest's trees each see a subset of the columns).
        """
        parts: dict[str, list[np.ndarray]] = {k: [] for k in cls.KEYS}
        offset = 0
        for t, tree in enumerate(trees):
            feat = tree.feature.astype(np.int64)
            leaf = tree.children_left < 0
            if features is not None:
                feat = np.where(
                    leaf, -1, np.asarray(features[t], dtype=np.int64)[np.where(leaf, 0, feat)]
                )
            else:
                feat = np.where(leaf, -1, feat)
            parts["feature"].append(feat)
            parts["threshold"].append(tree.threshold.astype(np.float64))
            parts["left"].append(np.where(leaf, -1, tree.children_left + offset))
            parts["right"].append(np.where(leaf, -1, tree.children_right + offset))
            parts["value"].append(np.asarray(values[t], dtype=np.float64))
            parts["roots"].append(np.array([offset]))
            offset += tree.node_count
        return cls(*(np.concatenate(parts[k]) for k in cls.KEYS))

    def leaves(self, X: np.ndarray, chunk: int = 8192) -> np.ndarray:
        """Leaf node reached by every row of ``X`` in every tree, shape (n_rows, n_trees)."""
        X = np.asarray(X, dtype=np.float32)  # scikit-learn trees compare float32 features
        out = np.empty((X.shape[0], len(self.roots)), dtype=np.int64)
        for a in range(0, X.shape[0], chunk):
            Xc = X[a : a + chunk]
            node = np.broadcast_to(self.roots, (Xc.shape[0], len(self.roots))).copy()
            rows = np.arange(Xc.shape[0])[:, None]
            for _ in range(self.max_depth):
                feat = self.feature[node]
                internal = feat >= 0
                if not internal.any():
                    break
                vals = Xc[rows, np.where(internal, feat, 0)].astype(np.float64)
                nxt = np.where(vals <= self.threshold[node], self.left[node], self.right[node])
                node = np.where(internal, nxt, node)
            out[a : a + chunk] = node
        return out

    def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        return {f"{prefix}{k}": getattr(self, k) for k in self.KEYS}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], prefix: str) -> FlatTrees:
        return cls(*(arrays[f"{prefix}{k}"] for k in cls.KEYS))
