"""Anomaly kinds and the per-block plan of a synthetic log.

Decides, before any event exists, how many blocks fill the requested line count, which
of them are anomalous (kind and variant) and how many optional events each one gets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

ANOMALY_KINDS: tuple[str, ...] = (
    "missing_step",
    "extra_error",
    "wrong_order",
    "unusual_param",
    "stalled",
)
"""Kinds of injected anomaly, one per anomalous block."""

VARIANTS: dict[str, tuple[str, ...]] = {
    "missing_step": ("no_allocate", "no_add_stored", "replica_lost", "no_responder"),
    "extra_error": ("error_event",),
    "wrong_order": ("allocate_late", "delete_before_store", "respond_before_receive"),
    "unusual_param": ("huge_size", "size_mismatch"),
    "stalled": ("replica_stalled", "namenode_stalled"),
}
"""Sub-variants of each kind (the ``Detail`` column of the kinds file)."""

_REPLICAS = 3  # write pipeline length of every block


@dataclass
class _Plan:
    n: int
    kind: np.ndarray  # int8, -1 = normal
    variant: np.ndarray  # int8
    n_err: np.ndarray  # int8 (extra_error)
    replicated: np.ndarray  # bool
    deleted: np.ndarray  # bool
    n_served: np.ndarray  # int32
    n_exc: np.ndarray  # int32
    n_verif: np.ndarray  # int32


def _plan_blocks(rng: np.random.Generator, lines: int, ratio: float, kind_ids: list[int]) -> _Plan:
    """Decide the per-block structure for just enough blocks to fill ``lines`` exactly."""
    cap = lines // 10 + 2  # every block has at least 10 lines, so this is always enough
    reads = rng.random(cap) < 0.25
    n_served = (reads * (1 + np.minimum(rng.poisson(1.9, cap), 7))).astype(np.int32)
    n_exc = (reads * np.minimum(rng.poisson(2.5, cap), 8)).astype(np.int32)
    n_verif = ((rng.random(cap) < 0.14) * (1 + (rng.random(cap) < 0.4))).astype(np.int32)
    replicated = rng.random(cap) < 0.01
    deleted = rng.random(cap) < 0.8

    kind = np.full(cap, -1, dtype=np.int8)
    variant = np.zeros(cap, dtype=np.int8)
    n_err = np.zeros(cap, dtype=np.int8)
    if ratio > 0 and kind_ids:
        # One anomaly per stratum of length 1/ratio at a random place inside it: every
        # prefix of blocks holds round(ratio * n) +- 1 anomalies, evenly spread over time.
        stride = 1.0 / ratio
        strata = int(math.ceil(cap * ratio)) + 1
        pos = np.floor((np.arange(strata) + rng.random(strata)) * stride).astype(np.int64)
        pos = np.unique(pos[pos < cap])
        nk = len(kind_ids)
        groups = -(-len(pos) // nk)
        cycle = rng.permuted(np.tile(np.arange(nk), (groups, 1)), axis=1).ravel()[: len(pos)]
        kind[pos] = np.asarray(kind_ids, dtype=np.int8)[cycle]
        n_var = np.array([len(VARIANTS[k]) for k in ANOMALY_KINDS])
        variant[pos] = np.floor(rng.random(len(pos)) * n_var[kind[pos]]).astype(np.int8)
        is_error = kind[pos] == ANOMALY_KINDS.index("extra_error")
        n_err[pos] = np.where(is_error, 1 + (rng.random(len(pos)) < 0.35), 0)
    anomalous = kind >= 0
    replicated &= ~anomalous
    deleted |= (kind == ANOMALY_KINDS.index("wrong_order")) & (
        variant == VARIANTS["wrong_order"].index("delete_before_store")
    )  # needs a deletion to misplace

    counts = _block_line_counts(kind, variant, n_err, replicated, deleted, n_served, n_exc, n_verif)
    csum = np.cumsum(counts)
    n = int(np.searchsorted(csum, lines, side="right"))
    residual = lines - int(csum[n - 1])
    # Top up with extra reads ("Served block") of random normal blocks: exact line count
    # without truncating any lifecycle.
    targets = np.flatnonzero(~anomalous[:n])
    if len(targets) == 0:
        targets = np.arange(n)
    if residual:
        n_served[:n] += np.bincount(rng.choice(targets, residual), minlength=n).astype(np.int32)
    return _Plan(
        n=n,
        kind=kind[:n].copy(),
        variant=variant[:n].copy(),
        n_err=n_err[:n].copy(),
        replicated=replicated[:n].copy(),
        deleted=deleted[:n].copy(),
        n_served=n_served[:n].copy(),
        n_exc=n_exc[:n].copy(),
        n_verif=n_verif[:n].copy(),
    )


def _block_line_counts(
    kind: np.ndarray,
    variant: np.ndarray,
    n_err: np.ndarray,
    replicated: np.ndarray,
    deleted: np.ndarray,
    n_served: np.ndarray,
    n_exc: np.ndarray,
    n_verif: np.ndarray,
) -> np.ndarray:
    rep = replicated.astype(np.int64)
    counts = (1 + 4 * _REPLICAS) + 6 * rep + deleted * (2 * _REPLICAS + 2 * rep)
    counts = counts + n_served + n_exc + n_verif
    missing = kind == ANOMALY_KINDS.index("missing_step")
    # lines lost per missing_step variant: no_allocate, no_add_stored, replica_lost, no_responder
    drop = np.array([1, _REPLICAS, 2, _REPLICAS])
    counts = counts - np.where(missing, drop[np.clip(variant, 0, 3)], 0)
    return counts + n_err
