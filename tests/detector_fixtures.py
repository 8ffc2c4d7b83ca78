"""Synthetic windows tables with injected anomalies, for detector tests.

Normal windows follow a small workflow over keys E1..E8 (a branch, a loop and an
optional step)::

    E1 -> (E2 | E3) -> (E4 E5){1..3} -> E6 -> [E7] -> E8

Anomalous windows (label 1) break it in one of four ways, in equal shares:
``unseen`` (a key E99 that never occurs in normal windows), ``order`` (E6 moved
before the loop), ``truncated`` (the window stops after the loop) and ``repeat``
(E5 E5 E5). Every window has ``line_ids`` (increasing, unique), ``start``/``end``
timestamps (increasing with the window index, so chronological splits work) and
``label``, plus ``messages`` (list[str]: each event's template with its ``<*>`` filled
by a number, as ``logsieve.grouping.text.attach_messages`` would give) for models that
read raw text. Deterministic for a given ``seed``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from logsieve.schema import WINDOW_SCHEMA

ANOMALY_KINDS = ("unseen", "order", "truncated", "repeat")
# distinct words per event, so that models reading templates or raw text can tell them apart
TEMPLATES = {
    "E1": "receiving block <*> from client",
    "E2": "opened pipeline to datanode <*>",
    "E3": "reused cached pipeline <*>",
    "E4": "writing packet <*> to mirror",
    "E5": "mirror acknowledged packet <*>",
    "E6": "closing block <*> after write",
    "E7": "verification succeeded for block <*>",
    "E8": "released lease <*>",
    "E99": "exception while serving block <*> connection reset by peer",
}


def normal_sequence(rng: np.random.Generator) -> list[str]:
    seq = ["E1", "E2" if rng.random() < 0.7 else "E3"]
    for _ in range(int(rng.integers(1, 4))):
        seq += ["E4", "E5"]
    seq.append("E6")
    if rng.random() < 0.5:
        seq.append("E7")
    seq.append("E8")
    return seq


def anomalous_sequence(rng: np.random.Generator, kind: str) -> list[str]:
    seq = normal_sequence(rng)
    loop_end = len(seq) - (3 if "E7" in seq else 2)  # index of E6
    if kind == "unseen":
        seq[int(rng.integers(1, len(seq) - 1))] = "E99"
    elif kind == "order":
        seq = seq[:2] + ["E6"] + seq[2:loop_end] + seq[loop_end + 1 :]
    elif kind == "truncated":
        seq = seq[:loop_end]
    elif kind == "repeat":
        seq = seq[:loop_end] + ["E5", "E5"] + seq[loop_end:]
    else:  # pragma: no cover
        raise ValueError(kind)
    return seq


def make_windows(
    n_normal: int = 240,
    n_anomalous: int = 24,
    seed: int = 0,
    prefix: str = "w",
    messages: bool = True,
) -> pl.DataFrame:
    """A windows table (``WINDOW_SCHEMA`` + ``messages``) with anomalies among normal windows."""
    rng = np.random.default_rng(seed)
    labels = np.array([0] * n_normal + [1] * n_anomalous, dtype=np.int8)
    rng.shuffle(labels)
    seqs = []
    k = 0
    for lab in labels:
        if lab:
            seqs.append(anomalous_sequence(rng, ANOMALY_KINDS[k % len(ANOMALY_KINDS)]))
            k += 1
        else:
            seqs.append(normal_sequence(rng))
    lengths = np.array([len(s) for s in seqs])
    first = np.concatenate([[1], np.cumsum(lengths)[:-1] + 1])
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    table = pl.DataFrame(
        {
            "window_id": [f"{prefix}{i}" for i in range(len(seqs))],
            "event_ids": seqs,
            "line_ids": [
                list(range(int(a), int(a) + int(n))) for a, n in zip(first, lengths, strict=True)
            ],
            "start": [t0 + timedelta(seconds=10 * i) for i in range(len(seqs))],
            "end": [t0 + timedelta(seconds=10 * i + int(n)) for i, n in enumerate(lengths)],
            "label": labels,
        },
        schema=WINDOW_SCHEMA,
    )
    if not messages:
        return table
    numbers = iter(rng.integers(1000, 9999, int(lengths.sum())).tolist())
    texts = [[TEMPLATES[e].replace("<*>", str(next(numbers))) for e in seq] for seq in seqs]
    return table.with_columns(pl.Series("messages", texts, dtype=pl.List(pl.String)))
