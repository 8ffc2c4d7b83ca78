"""Log-domain lexical constraints and counter-fitting of word vectors.

The synonym / antonym lists stand in for WordNet (not available offline), and
:func:`counter_fit` applies them after training: see the package docstring.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

logger = logging.getLogger(__name__)

# Hand-written log-domain lexical pairs (lowercase single tokens as produced by
# logsieve.features.text). Not WordNet: see the docstring of logsieve.features.semantic.
LOG_SYNONYMS: tuple[tuple[str, str], ...] = (
    ("error", "failure"),
    ("error", "fault"),
    ("error", "exception"),
    ("fail", "failure"),
    ("failed", "failure"),
    ("fails", "failure"),
    ("terminated", "killed"),
    ("terminate", "kill"),
    ("stop", "halt"),
    ("stopped", "halted"),
    ("start", "launch"),
    ("started", "launched"),
    ("begin", "start"),
    ("delete", "remove"),
    ("deleted", "removed"),
    ("deleting", "removing"),
    ("create", "add"),
    ("created", "added"),
    ("shutdown", "shutting"),
    ("timeout", "timed"),
    ("receive", "receiving"),
    ("received", "receiving"),
    ("send", "sending"),
    ("sent", "sending"),
    ("warning", "warn"),
    ("crash", "crashed"),
    ("abort", "aborted"),
    ("refused", "rejected"),
)
LOG_ANTONYMS: tuple[tuple[str, str], ...] = (
    ("start", "stop"),
    ("started", "stopped"),
    ("starting", "stopping"),
    ("open", "close"),
    ("opened", "closed"),
    ("opening", "closing"),
    ("up", "down"),
    ("success", "failure"),
    ("succeeded", "failed"),
    ("successful", "failed"),
    ("successfully", "unsuccessfully"),
    ("enable", "disable"),
    ("enabled", "disabled"),
    ("connect", "disconnect"),
    ("connected", "disconnected"),
    ("accept", "reject"),
    ("accepted", "rejected"),
    ("allow", "deny"),
    ("allowed", "denied"),
    ("granted", "denied"),
    ("valid", "invalid"),
    ("available", "unavailable"),
    ("reachable", "unreachable"),
    ("online", "offline"),
    ("true", "false"),
    ("correctable", "uncorrectable"),
    ("normal", "abnormal"),
    ("healthy", "unhealthy"),
    ("pass", "fail"),
    ("passed", "failed"),
    ("acquire", "release"),
    ("acquired", "released"),
    ("lock", "unlock"),
    ("locked", "unlocked"),
    ("mount", "unmount"),
    ("mounted", "unmounted"),
    ("load", "unload"),
    ("loaded", "unloaded"),
    ("ok", "error"),
    ("complete", "incomplete"),
    ("completed", "aborted"),
    ("found", "missing"),
)


def counter_fit(
    words: Sequence[str],
    vectors: np.ndarray,
    *,
    synonyms: Sequence[tuple[str, str]] = (),
    antonyms: Sequence[tuple[str, str]] = (),
    iterations: int = 100,
    step: float = 0.1,
    keep: float = 0.1,
) -> np.ndarray:
    """Counter-fit word vectors to lexical constraints (after Mrkšić et al., 2016).

    Works on unit vectors by gradient steps on three terms: synonyms attract (maximise
    their cosine), antonyms repel while their cosine is positive (until orthogonal or
    beyond), and every vector is held near its trained position (weight ``keep``).
    Words not in pairs do not move; vector lengths are restored at the end. Pairs with a
    word outside ``words`` are skipped. Deterministic (no randomness).

    Returns a new ``(len(words), dim)`` float32 array.
    """
    index = {w: i for i, w in enumerate(words)}

    def to_idx(pairs: Sequence[tuple[str, str]]) -> tuple[np.ndarray, np.ndarray]:
        kept = [(index[a], index[b]) for a, b in pairs if a in index and b in index and a != b]
        arr = np.array(kept, dtype=np.int64).reshape(-1, 2)
        return arr[:, 0], arr[:, 1]

    sa, sb = to_idx(synonyms)
    aa, ab = to_idx(antonyms)
    v = np.asarray(vectors, dtype=np.float64)
    if len(sa) + len(aa) == 0:
        return v.astype(np.float32)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    safe = np.where(norms > 0, norms, 1.0)
    v0 = v / safe
    cur = v0.copy()
    for _ in range(iterations):
        grad = 2.0 * keep * (cur - v0)
        if len(sa):  # minimise 1 - cos(a, b)
            np.add.at(grad, sa, -cur[sb])
            np.add.at(grad, sb, -cur[sa])
        if len(aa):  # minimise max(0, cos(a, b))
            active = np.einsum("ij,ij->i", cur[aa], cur[ab]) > 0
            np.add.at(grad, aa[active], cur[ab[active]])
            np.add.at(grad, ab[active], cur[aa[active]])
        cur = cur - step * grad
        n = np.linalg.norm(cur, axis=1, keepdims=True)
        cur = cur / np.where(n > 0, n, 1.0)
    moved = np.zeros(len(v), dtype=bool)
    moved[np.concatenate([sa, sb, aa, ab])] = True
    out = v.copy()
    out[moved] = cur[moved] * norms[moved]
    logger.debug(
        "counter-fitted %d words (%d synonym, %d antonym pairs)", int(moved.sum()), len(sa), len(aa)
    )
    return out.astype(np.float32)
