"""Side-by-side benchmarks against peer packages (``logsieve bench ...``).

:func:`bench_deeplog` trains and scores logsieve's DeepLog on the DeepLog paper's HDFS
sessions (``hdfs_train``: 4,855 normal sessions; ``hdfs_test_abnormal``: 16,838
anomalous ones) with the paper's settings (h=10, L=2, alpha=64, g=9, 10 epochs), then
does the same with the PyPI ``deeplog`` 0.0.3 package (Thijsvanede/DeepLog) when it is
installed, and reports both times and recalls.

How the peer runs: its example's settings (one-hot LSTM, Adam through torch-train,
batch 128, k=9). Its own preprocessor numbers the event ids of each file separately
(train and test would disagree), so the context arrays are built here with one
mapping, in its layout: every event is predicted from the previous 10 events of its
session, padded with a NO_EVENT index; a session is flagged when any of its events is
outside the top 9. Only its ``fit`` and ``predict`` calls are timed, as only logsieve's
``fit`` and ``predict`` are. Install it with::

    pip install --no-deps deeplog==0.0.3 torch-train==0.0.3 tqdm

Both sides use the same number of torch threads (default 1: the fastest for these small
LSTMs, and steady when other processes share the CPU), and both run after a warm-up that
imports what the first optimiser creation imports (``torch._dynamo``, about 2 s).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from logsieve.errors import InputError, LogsieveError

logger = logging.getLogger(__name__)

__all__ = [
    "DEEPLOG_PAPER",
    "PEER_INSTALL",
    "bench_deeplog",
    "deeplog_bench_params",
    "default_deeplog_data",
    "load_deeplog_hdfs",
]

#: Du et al. (CCS'17), HDFS: false negatives and recall on the 16,838 abnormal sessions,
#: false positives on the 553,366 normal test sessions.
DEEPLOG_PAPER = {"fn": 619, "recall": 0.964, "fp": 833, "normal_sessions": 553_366}
PEER_INSTALL = "pip install --no-deps deeplog==0.0.3 torch-train==0.0.3 tqdm"
#: The peer example's one-hot input / output size for HDFS (its keys fit below it).
_PEER_SIZE = 30


def default_deeplog_data() -> Path:
    """``$LOGSIEVE_SHARED_DATA/hdfs_deeplog``, else ``../shared/data/hdfs_deeplog``.

    The fallback is relative to the working directory.
    """
    root = os.environ.get("LOGSIEVE_SHARED_DATA")
    return (Path(root) if root else Path("..") / "shared" / "data") / "hdfs_deeplog"


def load_deeplog_hdfs(data_dir: str | Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The ``hdfs_train`` and ``hdfs_test_abnormal`` windows of a DeepLog HDFS folder."""
    from logsieve.grouping.sequences import read_sequences

    data_dir = Path(data_dir)
    files = [data_dir / "hdfs_train", data_dir / "hdfs_test_abnormal"]
    for f in files:
        if not f.is_file():
            raise InputError(
                f, "not found (a folder with DeepLog's hdfs_train and hdfs_test_abnormal is needed)"
            )
    return read_sequences(files[0]), read_sequences(files[1])


def deeplog_bench_params(
    epochs: int = 10, threads: int = 1, seed: int = 0, device: str = "cpu"
) -> dict[str, Any]:
    """DeepLog parameters of the benchmark: the paper's (h=10, L=2, alpha=64, g=9).

    Trained on all of the training data.
    """
    return {
        "history_size": 10,
        "num_layers": 2,
        "hidden_size": 64,
        "num_candidates": 9,
        "epochs": int(epochs),
        "valid_fraction": 0.0,  # the paper trains on all of hdfs_train
        "num_threads": int(threads),
        "device": device,
        "random_state": int(seed),
    }


def _warm_up() -> None:
    import torch

    torch.optim.Adam([torch.zeros(1, requires_grad=True)])


def _run_logsieve(
    train: pl.DataFrame, test: pl.DataFrame, params: dict[str, Any]
) -> tuple[dict[str, Any], Any]:
    from logsieve.detectors.registry import create_detector

    det = create_detector("deeplog", **params)
    t0 = time.perf_counter()
    det.fit(train)
    t1 = time.perf_counter()
    flagged = det.predict(test)
    t2 = time.perf_counter()
    row = {
        "train_s": t1 - t0,
        "score_s": t2 - t1,
        "recall": float(flagged.mean()),
        "fn": int((flagged == 0).sum()),
    }
    return row, det


def _peer_contexts(
    windows: pl.DataFrame, mapping: dict[str, int], no_event: int, length: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-event (context, event, session) arrays in the layout of the peer's preprocessor."""
    seqs = windows.get_column("event_ids").to_list()
    lengths = np.array([len(s) for s in seqs], dtype=np.int64)
    events = np.array([mapping[e] for s in seqs for e in s], dtype=np.int64)
    session = np.repeat(np.arange(len(seqs)), lengths)
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    idx = np.arange(len(events))[:, None] - length + np.arange(length)[None, :]
    ctx = np.where(idx >= starts[:, None], events[np.maximum(idx, 0)], no_event)
    return ctx, events, session


def _run_peer(
    train: pl.DataFrame,
    test: pl.DataFrame,
    *,
    epochs: int,
    threads: int,
    seed: int,
    history: int,
    candidates: int,
) -> dict[str, Any]:
    try:
        import torch
        from deeplog import DeepLog as PeerDeepLog
    except ImportError as exc:
        return {"skipped": f"deeplog 0.0.3 is not installed ({exc}); {PEER_INSTALL}"}
    keys = sorted(
        {e for s in train["event_ids"].to_list() + test["event_ids"].to_list() for e in s}
    )
    mapping = {e: i for i, e in enumerate(keys)}
    no_event = len(keys)
    if no_event >= _PEER_SIZE:
        return {
            "skipped": (
                f"{no_event} distinct keys: more than the peer's one-hot size {_PEER_SIZE} allows"
            )
        }
    x_tr, y_tr, _ = _peer_contexts(train, mapping, no_event, history)
    x_te, y_te, sess = _peer_contexts(test, mapping, no_event, history)
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    try:
        model = PeerDeepLog(input_size=_PEER_SIZE, hidden_size=64, output_size=_PEER_SIZE)
        with contextlib.redirect_stderr(io.StringIO()):  # its fit always draws tqdm bars
            t0 = time.perf_counter()
            model.fit(
                torch.from_numpy(x_tr), torch.from_numpy(y_tr),
                epochs=epochs, batch_size=128, optimizer=torch.optim.Adam, verbose=False,
            )  # fmt: skip
            t1 = time.perf_counter()
            pred, _ = model.predict(torch.from_numpy(x_te), k=candidates, verbose=False)
            t2 = time.perf_counter()
    finally:
        torch.set_num_threads(old)
    miss = ~(pred.numpy() == y_te[:, None]).any(axis=1)
    flagged = np.zeros(test.height, dtype=bool)
    np.logical_or.at(flagged, sess, miss)
    return {
        "train_s": t1 - t0,
        "score_s": t2 - t1,
        "recall": float(flagged.mean()),
        "fn": int((~flagged).sum()),
    }


def bench_deeplog(
    train: pl.DataFrame,
    test: pl.DataFrame,
    *,
    epochs: int = 10,
    threads: int = 1,
    seed: int = 0,
    device: str = "cpu",
    peer: bool = True,
    on_fitted: Callable[[Any], None] | None = None,
) -> dict[str, Any]:
    """Train on ``train``, flag ``test``: logsieve's DeepLog, then the PyPI ``deeplog`` 0.0.3.

    Returns a JSON-able dict: ``settings``, ``logsieve`` and ``peer`` (each with
    ``train_s``, ``score_s``, ``recall`` = share of ``test`` windows flagged, ``fn`` =
    windows not flagged; the peer's is ``{"skipped": reason}`` when it did not run),
    ``speedup`` (peer's train + score seconds over logsieve's, or None) and ``paper``.
    ``test`` is meant to hold anomalous windows only (``hdfs_test_abnormal``), so
    "recall" is the share flagged. ``on_fitted`` receives logsieve's fitted detector
    (outside the timed region), for measurements on other data.
    """
    if threads < 1 or epochs < 1:
        raise LogsieveError(f"threads and epochs must be >= 1, not {threads} and {epochs}")
    from logsieve.detectors.neural.trainer import available_cores

    threads = min(int(threads), available_cores())  # both sides; never more threads than cores
    params = deeplog_bench_params(epochs, threads, seed, device)
    settings = {
        k: params[k]
        for k in ("history_size", "num_layers", "hidden_size", "num_candidates", "epochs")
    }
    _warm_up()
    logger.info(
        "bench deeplog: logsieve on %d training and %d test sessions", train.height, test.height
    )
    ours, detector = _run_logsieve(train, test, params)
    if on_fitted is not None:
        on_fitted(detector)
    if peer:
        logger.info("bench deeplog: deeplog 0.0.3")
        theirs = _run_peer(
            train, test, epochs=int(epochs), threads=int(threads), seed=int(seed),
            history=settings["history_size"], candidates=settings["num_candidates"],
        )  # fmt: skip
    else:
        theirs = {"skipped": "not run (peer=False)"}
    speedup = None
    if "skipped" not in theirs:
        speedup = (theirs["train_s"] + theirs["score_s"]) / max(
            ours["train_s"] + ours["score_s"], 1e-9
        )
    return {
        "settings": {**settings, "threads": int(threads), "seed": int(seed), "device": device},
        "data": {"train_sessions": train.height, "test_sessions": test.height},
        "logsieve": ours,
        "peer": theirs,
        "speedup": speedup,
        "paper": DEEPLOG_PAPER,
    }


def bench_table(result: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """Rows ``(what, logsieve, deeplog 0.0.3, paper)`` of a :func:`bench_deeplog` result."""
    ours, peer, paper = result["logsieve"], result["peer"], result["paper"]
    ran = "skipped" not in peer
    rows = [  # label, value of one side, format, paper's value
        ("train seconds", lambda r: r["train_s"], "{:.2f}", "-"),
        ("score seconds", lambda r: r["score_s"], "{:.2f}", "-"),
        ("train + score", lambda r: r["train_s"] + r["score_s"], "{:.2f}", "-"),
        ("recall", lambda r: r["recall"], "{:.4f}", f"{paper['recall']:.3f}"),
        ("false negatives", lambda r: r["fn"], "{:,}", f"{paper['fn']:,}"),
    ]
    return [
        (label, fmt.format(value(ours)), fmt.format(value(peer)) if ran else "-", published)
        for label, value, fmt, published in rows
    ]
