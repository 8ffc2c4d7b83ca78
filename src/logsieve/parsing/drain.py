"""Drain: online template mining with a fixed-depth prefix tree.

An implementation of Drain (He, Zhu, Zheng, Lyu: "Drain: An Online Log Parsing Approach
with Fixed Depth Tree", ICWS 2017), following the behaviour of the reference
implementation used in the Loghub benchmark (logpai/logparser) where the paper leaves a
choice open.

How a message is placed
-----------------------
1. The message is split on whitespace into tokens.
2. First tree level: the token count.
3. Next levels: the first ``depth - 3`` tokens, one level each (``depth`` counts every
   level of the tree: the root, the token-count level, the token levels and the level of
   the leaves that hold the clusters; this is the convention of logparser and Drain3, so
   ``depth=4`` routes on the first token). A token that contains a digit or the wildcard
   goes to the wildcard child; so does any token once a node holds ``max_children``
   children.
4. In the leaf, the cluster whose template is most similar is chosen. Similarity is the
   fraction of positions where the template's token equals the message's token. A
   template wildcard facing a real value never counts as equal (as in logparser); facing
   a wildcard of the message (a field the masks already replaced) it does count when
   ``match_masked`` is true (the default), and does not when it is false (logparser's
   exact rule). Among equally similar templates the one with more wildcards wins, then
   the oldest. If the best similarity reaches ``sim_th`` the message joins that cluster
   and every position where template and message differ becomes the wildcard; otherwise
   the message starts a new cluster (its tokens are the template).

Departures from logparser's code, all deliberate:

* ``match_masked`` (above). With logparser's rule a heavily masked message is barely
  similar even to a template identical to it (``a <*> <*> <*>`` scores 1/4 against
  itself), so masking more fields made Drain split more; on Loghub-2k Linux with the
  default masks, GA is 0.69 with the new rule and 0.24 with the old one.
* Messages shorter than the routing depth are attached to the tree like any other
  (logparser never stores them, so each such message became its own cluster).
* A message may carry a ``count`` (the number of identical lines it stands for); it only
  adds to the cluster size.
* Tokens that contain the wildcard (``core.<*>``) route like variables.

Cluster ids are 1, 2, 3... in creation order and never change. With ``max_clusters`` set,
the least recently used cluster is dropped when a new one would exceed the limit (its id
is not reused).
"""

from __future__ import annotations

import logging
import numbers
import operator
import re
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal

import numpy as np

from logsieve.errors import LogsieveError

__all__ = ["Drain"]

log = logging.getLogger(__name__)

_FORMAT = "logsieve.drain"
_VERSION = 1
_has_digit = re.compile(r"\d").search
_eq = operator.eq


class _Node:
    """Tree node: internal nodes have children, leaves hold clusters."""

    __slots__ = ("children", "clusters")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.clusters: list[_Cluster] = []


class _Cluster:
    """One template. ``cmp`` is what messages are compared with: the tokens themselves
    when a wildcard may match a message wildcard (``match_masked``), otherwise the tokens
    with wildcards replaced by None (equal to nothing). Either way
    ``sum(map(operator.eq, cmp, tokens))`` is the number of matching positions."""

    __slots__ = ("cid", "tokens", "cmp", "n_params", "size", "leaf")

    def __init__(
        self, cid: int, tokens: list[str], wildcard: str, keep_wild: bool, size: int, leaf: _Node
    ):
        self.cid = cid
        self.size = size
        self.leaf = leaf
        self.set_tokens(tokens, wildcard, keep_wild)

    def set_tokens(self, tokens: list[str], wildcard: str, keep_wild: bool) -> None:
        self.tokens = tokens
        self.n_params = sum(1 for t in tokens if t == wildcard)
        if keep_wild or not self.n_params:
            self.cmp: Sequence[str | None] = tokens
        else:
            self.cmp = [None if t == wildcard else t for t in tokens]


class Drain:
    """Fixed-depth-tree template miner.

    Parameters
    ----------
    depth : int
        Depth of the leaves (>= 3); ``depth - 3`` leading tokens route a message.
    sim_th : float
        Similarity threshold in [0, 1] to join an existing cluster.
    max_children : int
        Most children of an internal node; later tokens share the wildcard child.
    max_clusters : int or None
        Keep at most this many clusters (least recently used dropped); None = no limit.
    wildcard : str
        The variable marker in templates (also what masks write).
    parametrize_numeric_tokens : bool
        Route tokens that contain a digit to the wildcard child (the paper's rule).
    match_masked : bool
        Count a message wildcard facing a template wildcard as equal (see the module
        docstring); False reproduces logparser's similarity exactly.

    Notes
    -----
    The constructor only stores its parameters; they are checked on first use.
    """

    # set by _check() on first use: tokens that route a message, and children per node
    _n_route: int
    _limit: int

    def __init__(
        self,
        depth: int = 4,
        sim_th: float = 0.4,
        max_children: int = 100,
        max_clusters: int | None = None,
        wildcard: str = "<*>",
        parametrize_numeric_tokens: bool = True,
        match_masked: bool = True,
    ) -> None:
        self.depth = depth
        self.sim_th = sim_th
        self.max_children = max_children
        self.max_clusters = max_clusters
        self.wildcard = wildcard
        self.parametrize_numeric_tokens = parametrize_numeric_tokens
        self.match_masked = match_masked
        self._root: dict[int, _Node] = {}
        self._clusters: OrderedDict[int, _Cluster] = OrderedDict()  # LRU order, oldest first
        self._next_id = 1
        self._checked = False

    # ------------------------------------------------------------------ parameters
    def get_params(self) -> dict[str, Any]:
        """Constructor parameters (``Drain(**d.get_params())`` is an empty twin)."""
        return {
            "depth": self.depth,
            "sim_th": self.sim_th,
            "max_children": self.max_children,
            "max_clusters": self.max_clusters,
            "wildcard": self.wildcard,
            "parametrize_numeric_tokens": self.parametrize_numeric_tokens,
            "match_masked": self.match_masked,
        }

    def _check(self) -> None:
        if self._checked:
            return
        if not _is_int(self.depth) or self.depth < 3:
            raise LogsieveError(f"Drain depth must be an integer >= 3, got {self.depth!r}")
        if not isinstance(self.sim_th, numbers.Real) or not 0.0 <= float(self.sim_th) <= 1.0:
            raise LogsieveError(f"Drain sim_th must be in [0, 1], got {self.sim_th!r}")
        if not _is_int(self.max_children) or self.max_children < 1:
            raise LogsieveError(
                f"Drain max_children must be an integer >= 1, got {self.max_children!r}"
            )
        if self.max_clusters is not None and (
            not _is_int(self.max_clusters) or self.max_clusters < 1
        ):
            raise LogsieveError(
                f"Drain max_clusters must be None or an integer >= 1, got {self.max_clusters!r}"
            )
        if not isinstance(self.wildcard, str) or not self.wildcard or self.wildcard.split() != [
            self.wildcard
        ]:
            raise LogsieveError(
                f"Drain wildcard must be a non-empty string without spaces, got {self.wildcard!r}"
            )
        self._n_route = int(self.depth) - 3
        self._limit = int(self.max_children)
        self._checked = True

    # ------------------------------------------------------------------ tree walk
    def _is_variable(self, token: str) -> bool:
        return self.wildcard in token or (
            self.parametrize_numeric_tokens and _has_digit(token) is not None
        )

    def _search_leaf(self, tokens: list[str]) -> _Node | None:
        """Follow the tree without changing it; None when no path exists."""
        node = self._root.get(len(tokens))
        if node is None:
            return None
        w = self.wildcard
        for tok in tokens[: self._n_route]:
            child = node.children.get(tok)
            if child is None:
                child = node.children.get(w)
                if child is None:
                    return None
            node = child
        return node

    def _insert_leaf(self, tokens: list[str]) -> _Node:
        """The leaf for a new cluster with these tokens, creating nodes as needed."""
        n = len(tokens)
        node = self._root.get(n)
        if node is None:
            node = self._root[n] = _Node()
        w = self.wildcard
        limit = self._limit
        for tok in tokens[: self._n_route]:
            children = node.children
            child = children.get(tok)
            if child is None:
                if self._is_variable(tok):
                    key = w
                elif w in children:
                    key = tok if len(children) < limit else w
                elif len(children) + 1 < limit:
                    key = tok
                else:  # the last free slot is kept for the wildcard child
                    key = w
                child = children.get(key)
                if child is None:
                    child = children[key] = _Node()
            node = child
        return node

    def _best(self, leaf: _Node, tokens: list[str]) -> _Cluster | None:
        """Most similar cluster of a leaf if it reaches the threshold."""
        n = len(tokens)
        best: _Cluster | None = None
        best_sim = -1
        best_par = -1
        for cl in leaf.clusters:
            sim = sum(map(_eq, cl.cmp, tokens))
            if sim > best_sim or (sim == best_sim and cl.n_params > best_par):
                best, best_sim, best_par = cl, sim, cl.n_params
        if best is None:
            return None
        score = 1.0 if n == 0 else best_sim / n
        return best if score >= self.sim_th else None

    # ------------------------------------------------------------------ learning
    def add(self, message: str, count: int = 1) -> int:
        """Learn one message (standing for ``count`` identical lines).

        Returns
        -------
        int
            The id of the cluster it joined or created.
        """
        self._check()
        count = int(count)
        if count < 1:
            raise ValueError(f"count must be >= 1, got {count}")
        return self._add(_tokens(message), count)

    def count(self, cluster_id: int, count: int) -> None:
        """Add ``count`` lines to a cluster's size without relearning its message (a
        message met again); nothing happens for a cluster no longer held."""
        cl = self._clusters.get(cluster_id)
        if cl is not None:
            cl.size += int(count)

    def _add(self, tokens: list[str], count: int) -> int:
        leaf = self._search_leaf(tokens)
        cl = self._best(leaf, tokens) if leaf is not None else None
        if cl is None:
            return self._create(tokens, count)
        cl.size += count
        if cl.n_params < len(tokens):  # something may still generalise
            w = self.wildcard
            new = [t if t == m else w for t, m in zip(cl.tokens, tokens, strict=True)]
            if new != cl.tokens:
                cl.set_tokens(new, w, self.match_masked)
        if self.max_clusters is not None:
            self._clusters.move_to_end(cl.cid)
        return cl.cid

    def _create(self, tokens: list[str], count: int) -> int:
        if self.max_clusters is not None:
            while len(self._clusters) >= self.max_clusters:
                _, old = self._clusters.popitem(last=False)
                old.leaf.clusters.remove(old)
                log.debug("max_clusters reached: dropped cluster %d", old.cid)
        leaf = self._insert_leaf(tokens)
        cid = self._next_id
        self._next_id += 1
        cl = _Cluster(cid, list(tokens), self.wildcard, self.match_masked, count, leaf)
        leaf.clusters.append(cl)
        self._clusters[cid] = cl
        return cid

    def add_many(
        self, messages: Sequence[str], counts: Sequence[int] | None = None
    ) -> np.ndarray:
        """Learn messages in order.

        Parameters
        ----------
        messages : sequence of str
        counts : sequence of int, optional
            Line count each message stands for (default 1 each).

        Returns
        -------
        numpy.ndarray of int64, shape (len(messages),)
            Cluster id of each message at the time it was added.
        """
        self._check()
        if hasattr(messages, "to_list"):  # polars / pandas series
            messages = messages.to_list()
        n = len(messages)
        if counts is None:
            cnt = [1] * n
        else:
            cnt = np.asarray(counts, dtype=np.int64).tolist()
            if len(cnt) != n:
                raise ValueError(f"{len(cnt)} counts for {n} messages")
            if n and min(cnt) < 1:
                raise ValueError("counts must be >= 1")
        out = np.empty(n, dtype=np.int64)
        add = self._add
        for i, (msg, c) in enumerate(zip(messages, cnt, strict=True)):
            out[i] = add(_tokens(msg), c)
        return out

    # ------------------------------------------------------------------ inference
    def match(
        self, message: str, strategy: Literal["never", "fallback"] = "fallback"
    ) -> int | None:
        """Cluster id for a message without learning anything (state is never changed).

        Parameters
        ----------
        message : str
        strategy : {"fallback", "never"}
            ``"never"``: only the tree search of :meth:`add` (returns the cluster ``add``
            would join, or None where ``add`` would create one). ``"fallback"``: when
            that fails, also accept a template of the same length that covers the message
            (every constant token equal), preferring the one with most equal tokens.

        Returns
        -------
        int or None
        """
        self._check()
        if strategy not in ("never", "fallback"):
            raise ValueError(f"unknown match strategy {strategy!r}")
        tokens = _tokens(message)
        leaf = self._search_leaf(tokens)
        cl = self._best(leaf, tokens) if leaf is not None else None
        if cl is not None:
            return cl.cid
        return None if strategy == "never" else self._covering(tokens)

    def _covering(self, tokens: list[str]) -> int | None:
        node = self._root.get(len(tokens))
        if node is None:
            return None
        w = self.wildcard
        best: _Cluster | None = None
        best_sim = -1
        for leaf in _leaves(node):
            for cl in leaf.clusters:
                ok = True
                sim = 0
                for t, m in zip(cl.tokens, tokens, strict=True):
                    if t == w:
                        continue
                    if t != m:
                        ok = False
                        break
                    sim += 1
                if not ok:
                    continue
                if sim > best_sim or (sim == best_sim and best is not None and cl.cid < best.cid):
                    best, best_sim = cl, sim
        return None if best is None else best.cid

    # ------------------------------------------------------------------ views
    def template(self, cluster_id: int) -> str:
        """Current template of a cluster (tokens joined by one space)."""
        try:
            return " ".join(self._clusters[cluster_id].tokens)
        except KeyError:
            raise KeyError(f"no cluster {cluster_id!r}") from None

    @property
    def clusters(self) -> dict[int, tuple[str, int]]:
        """``{id: (template, size)}`` in id order; size sums the counts."""
        return {
            cid: (" ".join(cl.tokens), cl.size)
            for cid, cl in sorted(self._clusters.items())
        }

    def __len__(self) -> int:
        return len(self._clusters)

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"Drain({params}) with {len(self._clusters)} clusters"

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able state: parameters, clusters (in LRU order) and the tree."""

        def node_dict(node: _Node) -> dict[str, Any]:
            d: dict[str, Any] = {}
            if node.children:
                d["children"] = {k: node_dict(c) for k, c in node.children.items()}
            if node.clusters:
                d["clusters"] = [cl.cid for cl in node.clusters]
            return d

        return {
            "format": _FORMAT,
            "version": _VERSION,
            "params": self.get_params(),
            "next_id": self._next_id,
            "clusters": [
                {"id": cl.cid, "template": " ".join(cl.tokens), "size": cl.size}
                for cl in self._clusters.values()
            ],
            "tree": {str(n): node_dict(node) for n, node in self._root.items()},
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Drain:
        """Rebuild a miner from :meth:`to_dict`; later add/match behave identically.

        Raises
        ------
        LogsieveError
            If the dict is not a Drain state or is inconsistent.
        """
        if not isinstance(d, Mapping) or d.get("format") != _FORMAT:
            raise LogsieveError("not a logsieve Drain state (missing format tag)")
        if d.get("version") != _VERSION:
            raise LogsieveError(f"unsupported Drain state version {d.get('version')!r}")
        try:
            self = cls(**dict(d["params"]))
            self._check()
            wildcard = self.wildcard
            by_id: dict[int, tuple[list[str], int]] = {}
            order: list[int] = []
            for c in d["clusters"]:
                cid = int(c["id"])
                by_id[cid] = (str(c["template"]).split(), int(c["size"]))
                order.append(cid)
            placed: dict[int, _Cluster] = {}

            def build(nd: Mapping[str, Any]) -> _Node:
                node = _Node()
                for key, child in nd.get("children", {}).items():
                    node.children[str(key)] = build(child)
                for cid in nd.get("clusters", []):
                    cid = int(cid)
                    if cid in placed or cid not in by_id:
                        raise LogsieveError(f"Drain state: cluster {cid} misplaced in tree")
                    tokens, size = by_id[cid]
                    cl = _Cluster(cid, tokens, wildcard, self.match_masked, size, node)
                    node.clusters.append(cl)
                    placed[cid] = cl
                return node

            for n, nd in d["tree"].items():
                self._root[int(n)] = build(nd)
            if len(placed) != len(by_id):
                raise LogsieveError("Drain state: some clusters are not in the tree")
            for cid in order:
                self._clusters[cid] = placed[cid]
            self._next_id = int(d["next_id"])
            if by_id and self._next_id <= max(by_id):
                raise LogsieveError("Drain state: next_id is not above every cluster id")
        except LogsieveError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise LogsieveError(f"corrupt Drain state: {exc!r}") from None
        return self


def _tokens(message: str | None) -> list[str]:
    """Whitespace tokens; None (a missing message) is the empty message."""
    return [] if message is None else message.split()


def _is_int(x: object) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def _leaves(node: _Node) -> Iterator[_Node]:
    stack = [node]
    while stack:
        nd = stack.pop()
        if nd.clusters:
            yield nd
        stack.extend(reversed(list(nd.children.values())))
