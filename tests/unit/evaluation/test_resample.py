"""Class-ratio resampler: exact anomaly counts, seeded, order and ids kept."""

from __future__ import annotations

import polars as pl
import pytest

from logsieve.errors import LogsieveError
from logsieve.evaluation.resample import anomaly_ratio, resample_anomalies, target_anomaly_count


def _windows(n_normal: int, n_anomalous: int, n_null: int = 0) -> pl.DataFrame:
    labels = [0] * n_normal + [1] * n_anomalous + [None] * n_null
    # interleave so that order matters: anomalies spread through the table
    order = sorted(range(len(labels)), key=lambda i: (i * 7919) % len(labels))
    labels = [labels[i] for i in order]
    return pl.DataFrame(
        {
            "window_id": [f"w{i}" for i in range(len(labels))],
            "event_ids": [[f"E{i % 5}"] for i in range(len(labels))],
            "label": pl.Series(labels, dtype=pl.Int8),
        }
    )


@pytest.mark.parametrize(
    ("n_normal", "ratio", "expected"),
    [(900, 0.1, 100), (999, 0.001, 1), (1000, 0.0, 0), (95, 0.05, 5), (850, 0.15, 150), (10, 0.001, 0)],
)
def test_target_count(n_normal: int, ratio: float, expected: int) -> None:
    assert target_anomaly_count(n_normal, ratio) == expected


def test_target_count_is_closest() -> None:
    for n in (7, 100, 333, 1234):
        for ratio in (0.003, 0.01, 0.07, 0.5):
            a = target_anomaly_count(n, ratio)
            err = abs(a / (n + a) - ratio)
            for other in (a - 1, a + 1):
                if other >= 0:
                    assert err <= abs(other / (n + other) - ratio) + 1e-15


@pytest.mark.parametrize(("ratio", "n_anomalous_after"), [(0.1, 100), (0.01, 9), (0.5, 900), (0.0, 0)])
def test_exact_ratio_down_and_up(ratio: float, n_anomalous_after: int) -> None:
    w = _windows(900, 50, n_null=20)
    res = resample_anomalies(w, ratio, seed=3)
    out = res.windows
    assert res.n_anomalous_after == n_anomalous_after
    assert int((out["label"] == 1).sum()) == n_anomalous_after
    assert int((out["label"] == 0).sum()) == 900  # every normal window kept
    assert out["label"].null_count() == 20  # unlabelled kept, not counted
    assert anomaly_ratio(out) == pytest.approx(n_anomalous_after / (900 + n_anomalous_after))
    assert abs(anomaly_ratio(out) - ratio) <= 1 / 900
    assert out["window_id"].n_unique() == out.height  # copies are renamed


def test_exact_when_integer() -> None:
    w = _windows(900, 30)
    assert anomaly_ratio(resample_anomalies(w, 0.1, seed=0).windows) == 0.1
    assert anomaly_ratio(resample_anomalies(w, 0.01, seed=0).windows) == pytest.approx(9 / 909)


def test_upsampling_keeps_every_anomaly_and_renames_copies() -> None:
    w = _windows(900, 10)
    out = resample_anomalies(w, 0.1, seed=1).windows
    anomalies = out.filter(pl.col("label") == 1)
    originals = set(w.filter(pl.col("label") == 1)["window_id"].to_list())
    base = {wid.split("~r")[0] for wid in anomalies["window_id"].to_list()}
    assert base == originals
    assert anomalies.height == 100
    copies = anomalies.filter(pl.col("window_id").str.contains("~r"))
    assert copies.height == 90


def test_downsampling_is_a_subset_and_order_kept() -> None:
    w = _windows(300, 60).with_row_index("pos")
    out = resample_anomalies(w, 0.05, seed=2).windows
    assert out["pos"].is_sorted()
    assert set(out["window_id"].to_list()) <= set(w["window_id"].to_list())
    assert int((out["label"] == 1).sum()) == target_anomaly_count(300, 0.05)


def test_seeded() -> None:
    w = _windows(500, 40)
    a = resample_anomalies(w, 0.02, seed=5).windows
    b = resample_anomalies(w, 0.02, seed=5).windows
    c = resample_anomalies(w, 0.02, seed=6).windows
    assert a.equals(b)
    assert not a.equals(c)


def test_errors() -> None:
    with pytest.raises(LogsieveError, match="no anomalous"):
        resample_anomalies(_windows(100, 0), 0.1)
    with pytest.raises(LogsieveError, match="no normal"):
        resample_anomalies(_windows(0, 10), 0.1)
    with pytest.raises(LogsieveError, match=r"\[0, 1\)"):
        resample_anomalies(_windows(10, 10), 1.0)
    assert resample_anomalies(_windows(100, 0), 0.0).windows.height == 100
