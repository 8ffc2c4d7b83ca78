"""Early detection: lines seen before the first alert, on hand-made cases."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import polars as pl
import pytest

from logsieve.detectors.base import BaseDetector
from logsieve.errors import LogsieveError
from logsieve.evaluation.early import early_summary, lines_to_first_alert, supports_positions


class CountBad(BaseDetector):
    """Whole-window model: score = number of "BAD" events (threshold 0.5 -> one is enough)."""

    threshold: str | float = 0.5
    scored: ClassVar[list[int]] = []

    def _fit(self, train: pl.DataFrame, valid: pl.DataFrame, progress: Any) -> None:
        pass

    def _score(self, windows: pl.DataFrame) -> np.ndarray:
        CountBad.scored.append(windows.height)
        return windows["event_ids"].list.count_matches("BAD").to_numpy().astype(np.float64)


class TwoBad(CountBad):
    """Alerts only when two BAD events were seen: needs the longer prefix."""

    threshold: str | float = 1.5


class Positional(CountBad):
    """A next-event model: explain() reports the failed predictions (DeepLog's format)."""

    def explain(self, windows: pl.DataFrame, top: int | None = None) -> list[dict[str, Any]]:
        out = []
        for seq in windows["event_ids"].to_list():
            flagged = [{"position": i, "rank": 9, "expected": []} for i, e in enumerate(seq) if e == "BAD"]
            if seq and seq[-1] == "STOP":  # the window ended early: flagged at the end marker
                flagged.append({"position": len(seq), "rank": 9, "expected": []})
            out.append({"positions": flagged, "is_anomaly": bool(flagged)})
        return out


@pytest.fixture()
def windows() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "window_id": ["a", "b", "c", "d"],
            "event_ids": [
                ["E1", "E2", "BAD", "E3"],
                ["BAD", "E1"],
                ["E1", "E1", "E1", "E1", "E1", "BAD", "E2", "BAD"],
                ["E1", "E2", "STOP"],
            ],
            "line_ids": [[1, 2, 3, 4], [5, 6], [7, 8, 9, 10, 11, 12, 13, 14], [15, 16, 17]],
            "label": pl.Series([1, 1, 1, 1], dtype=pl.Int8),
        }
    )


def _fit(cls: type[CountBad], windows: pl.DataFrame) -> CountBad:
    normal = windows.head(1).with_columns(pl.lit(0, dtype=pl.Int8).alias("label"))
    return cls().fit(normal, valid=normal)


def test_prefix_method_hand_made(windows: pl.DataFrame) -> None:
    det = _fit(CountBad, windows)
    out = lines_to_first_alert(det, windows, method="auto")
    assert out["method"].to_list() == ["prefix"] * 4
    assert out["length"].to_list() == [4, 2, 8, 3]
    assert out["lines_seen"].to_list() == [3, 1, 6, None]  # d is never flagged
    two = lines_to_first_alert(_fit(TwoBad, windows), windows)
    assert two["lines_seen"].to_list() == [None, None, 8, None]


def test_prefix_batches_and_max_prefix(windows: pl.DataFrame) -> None:
    det = _fit(CountBad, windows)
    a = lines_to_first_alert(det, windows, method="prefix")
    b = lines_to_first_alert(det, windows, method="prefix", batch_size=1)
    assert a.equals(b)
    capped = lines_to_first_alert(det, windows, method="prefix", max_prefix=4)
    # c: no BAD in its first 4 lines, flagged by the whole window only -> counted at its end
    assert capped["lines_seen"].to_list() == [3, 1, 8, None]
    CountBad.scored.clear()
    lines_to_first_alert(det, windows.slice(2, 1), method="prefix")
    # prefixes E1, E1 E1, ... are distinct here: 8 prefixes scored in one call
    assert sum(CountBad.scored) == 8


def test_positions_method_hand_made(windows: pl.DataFrame) -> None:
    det = _fit(Positional, windows)
    assert supports_positions(det, windows)
    out = lines_to_first_alert(det, windows)
    assert out["method"].to_list() == ["positions"] * 4
    # first flagged position + 1; the end-of-window marker (position = length) counts as the last line
    assert out["lines_seen"].to_list() == [3, 1, 6, 3]
    assert not supports_positions(_fit(CountBad, windows))
    with pytest.raises(LogsieveError, match="per-position"):
        lines_to_first_alert(_fit(CountBad, windows), windows, method="positions")


def test_resolve_method(windows: pl.DataFrame) -> None:
    from logsieve.evaluation.early import resolve_method

    positional = _fit(Positional, windows)
    normal = pl.DataFrame({"window_id": ["n"], "event_ids": [["E1", "E2"]], "label": pl.Series([0], dtype=pl.Int8)})
    # a window without failed predictions still shows per-position decisions (an empty list)
    assert resolve_method(positional, normal) == "positions"
    assert lines_to_first_alert(positional, normal, method="positions")["lines_seen"].to_list() == [None]
    assert resolve_method(_fit(CountBad, windows), windows) == "prefix"
    assert resolve_method(positional, windows, "prefix") == "prefix"
    with pytest.raises(LogsieveError, match="unknown early-detection method"):
        resolve_method(positional, windows, "sometimes")  # type: ignore[arg-type]


def test_deeplog_uses_positions() -> None:
    from detector_fixtures import make_windows

    from logsieve.detectors.registry import create_detector, get_detector_class

    train = make_windows(seed=0)
    test = make_windows(n_normal=40, n_anomalous=24, seed=1, prefix="t")
    det = create_detector("deeplog", **get_detector_class("deeplog")._test_params()).fit(train)
    scores = det.decision_function(test)
    hit = test.filter(pl.Series((scores > det.threshold_) & (test["label"].to_numpy() == 1)))
    assert hit.height > 0
    out = lines_to_first_alert(det, hit)
    assert set(out["method"].to_list()) == {"positions"}
    seen = out["lines_seen"].to_numpy()
    assert ((seen >= 1) & (seen <= out["length"].to_numpy())).all()
    # a window with an unseen key (E99) is flagged no later than the line holding it
    for row, s in zip(hit.iter_rows(named=True), seen, strict=True):
        if "E99" in row["event_ids"]:
            assert s <= row["event_ids"].index("E99") + 1


def test_empty_and_summary(windows: pl.DataFrame) -> None:
    det = _fit(CountBad, windows)
    empty = lines_to_first_alert(det, windows.head(0))
    assert empty.height == 0
    assert early_summary(empty)["n"] == 0 and early_summary(empty)["median"] is None
    s = early_summary(lines_to_first_alert(det, windows))
    assert s["n"] == 3
    assert s["median"] == 3.0
    assert s["max"] == 6.0
    assert s["median_fraction"] == pytest.approx(0.75)
    with pytest.raises(LogsieveError, match="unknown early-detection method"):
        lines_to_first_alert(det, windows, method="bogus")  # type: ignore[arg-type]
