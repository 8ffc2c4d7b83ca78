"""Tests for the synthetic HDFS generator (logsieve.synth)."""

from __future__ import annotations

import gzip
import re
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest

from logsieve.errors import LogsieveError
from logsieve.synth import (
    ANOMALY_KINDS,
    FULL_BLOCK_SIZE,
    MIN_LINES,
    NORMAL_WRITE_MAX_S,
    TEMPLATES,
    VARIANTS,
    generate,
    sidecar_paths,
)

LINE_RE = re.compile(r"^(\d{6}) (\d{6}) (\d+) (INFO|WARN|ERROR) ([\w$.]+): (.+)$")
BLK_RE = r"(blk_-?\d+)"
NORMAL_KEYS = [t.key for t in TEMPLATES if not t.anomalous]
ERROR_KEYS = [t.key for t in TEMPLATES if t.anomalous]
WRITE_KEYS = ("responder_terminating", "received", "add_stored")


def _template_regex(text: str) -> str:
    parts = re.split(r"\{\w+\}", text)
    return "^" + ".+?".join(re.escape(p) for p in parts) + "$"


def _read(path: Path) -> list[str]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return fh.read().splitlines()


def _events(lines: list[str]) -> pl.DataFrame:
    """One row per line: position, time, component, content, block id and template key."""
    df = pl.DataFrame({"line": lines}).with_row_index("pos")
    df = df.with_columns(
        pl.col("line").str.extract(LINE_RE.pattern, 1).alias("date"),
        pl.col("line").str.extract(LINE_RE.pattern, 2).alias("time"),
        pl.col("line").str.extract(LINE_RE.pattern, 5).alias("component"),
        pl.col("line").str.extract(LINE_RE.pattern, 6).alias("content"),
    ).with_columns(
        pl.col("content").str.extract(BLK_RE, 1).alias("blk"),
        (pl.col("date") + pl.col("time")).str.to_datetime("%y%m%d%H%M%S").alias("ts"),
        pl.col("content").str.extract(r" size (\d+)", 1).cast(pl.Int64).alias("size"),
    )
    key = pl.lit(None, dtype=pl.String)
    for tpl in reversed(TEMPLATES):
        cond = (pl.col("component") == tpl.component) & pl.col("content").str.contains(
            _template_regex(tpl.text)
        )
        key = pl.when(cond).then(pl.lit(tpl.key)).otherwise(key)
    return df.with_columns(key.alias("key"))


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> dict:
    d = tmp_path_factory.mktemp("synth")
    stats = generate(d / "hdfs.log", lines=30_000, seed=7, anomaly_ratio=0.05)
    lines = _read(stats.path)
    return {
        "stats": stats,
        "lines": lines,
        "events": _events(lines),
        "labels": pl.read_csv(stats.labels_path),
        "kinds": pl.read_csv(stats.kinds_path),
    }


def _blocks_of(sample: dict, kind: str) -> dict[str, pl.DataFrame]:
    ids = sample["kinds"].filter(pl.col("Kind") == kind)["BlockId"].to_list()
    ev = sample["events"]
    return {b: ev.filter(pl.col("blk") == b).sort("pos") for b in ids}


def _normal_blocks(sample: dict) -> pl.DataFrame:
    normal = sample["labels"].filter(pl.col("Label") == "Normal")["BlockId"]
    return sample["events"].filter(pl.col("blk").is_in(normal.implode()))


# ---------------------------------------------------------------- determinism, shape


def test_same_seed_same_bytes_different_seed_differs(tmp_path: Path) -> None:
    a = generate(tmp_path / "a.log", lines=3000, seed=3)
    b = generate(tmp_path / "b.log", lines=3000, seed=3)
    c = generate(tmp_path / "c.log", lines=3000, seed=4)
    assert a.path.read_bytes() == b.path.read_bytes()
    assert a.labels_path.read_bytes() == b.labels_path.read_bytes()
    assert a.kinds_path.read_bytes() == b.kinds_path.read_bytes()
    assert a.path.read_bytes() != c.path.read_bytes()
    assert a.labels_path.read_bytes() != c.labels_path.read_bytes()


def test_chunking_does_not_change_output(tmp_path: Path) -> None:
    a = generate(tmp_path / "a.log", lines=4000, seed=5)
    b = generate(tmp_path / "b.log", lines=4000, seed=5, chunk_lines=333)
    assert a.path.read_bytes() == b.path.read_bytes()


@pytest.mark.parametrize("n", [MIN_LINES, 101, 1234, 5003])
def test_exact_line_count(tmp_path: Path, n: int) -> None:
    stats = generate(tmp_path / "x.log", lines=n, seed=n)
    data = stats.path.read_bytes()
    assert data.count(b"\n") == n and data.endswith(b"\n")
    assert stats.lines == n


def test_every_line_has_the_hdfs_layout(sample: dict) -> None:
    lines = sample["lines"]
    assert len(lines) == 30_000
    bad = [ln for ln in lines if not LINE_RE.match(ln)]
    assert bad == []
    ev = sample["events"]
    assert ev["ts"].null_count() == 0  # every Date/Time is a real calendar time
    assert ev["blk"].null_count() == 0  # every line belongs to a block
    assert ev["key"].null_count() == 0  # every line is one of the known message shapes
    first = sample["lines"][0].split(" ")
    assert datetime.strptime(first[0] + first[1], "%y%m%d%H%M%S") == sample["stats"].first_timestamp


def test_timestamps_non_decreasing(sample: dict) -> None:
    ts = sample["events"]["ts"]
    assert ts.is_sorted()
    assert ts[-1] == sample["stats"].last_timestamp


def test_blocks_interleave(sample: dict) -> None:
    ev = sample["events"]
    per_block = ev.group_by("blk").agg(
        pl.len().alias("n"), (pl.col("pos").max() - pl.col("pos").min() + 1).alias("span")
    )
    # a block's lines are spread among other blocks' lines, not written as one run
    assert (per_block["span"] > per_block["n"]).mean() > 0.95
    busy = ev.with_columns(pl.col("ts").dt.truncate("1m").alias("minute")).group_by("minute").agg(
        pl.col("blk").n_unique()
    )
    assert busy["blk"].max() > 50


def test_realistic_ids_and_values(sample: dict) -> None:
    ev = sample["events"]
    ids = ev["blk"].str.slice(4).cast(pl.Int64)
    assert (ids < 0).any() and (ids > 0).any()
    assert ids.abs().median() > 10**17  # 64-bit-ish ids, not small counters
    ips = ev["content"].str.extract_all(r"10\.25[01]\.\d{1,3}\.\d{1,3}").explode()
    ips = ips.drop_nulls().unique()
    assert len(ips) > 100
    sizes = _normal_blocks(sample)["size"].drop_nulls()
    assert (sizes == FULL_BLOCK_SIZE).mean() > 0.8
    assert sizes.max() <= FULL_BLOCK_SIZE and sizes.min() > 0
    assert (sizes < FULL_BLOCK_SIZE).any()
    pid = ev["line"].str.split(" ").list.get(2).cast(pl.Int64)
    assert pid.n_unique() > 50


# ---------------------------------------------------------------- labels


def test_labels_cover_exactly_the_blocks(sample: dict) -> None:
    labels = sample["labels"]
    assert labels.columns == ["BlockId", "Label"]
    assert set(labels["Label"].unique()) == {"Normal", "Anomaly"}
    assert labels["BlockId"].is_unique().all()
    ev = sample["events"]
    in_log = ev["blk"].unique(maintain_order=True)
    assert labels["BlockId"].to_list() == in_log.to_list()  # order of first appearance
    stats = sample["stats"]
    assert stats.blocks == labels.height
    assert stats.anomalous_blocks == (labels["Label"] == "Anomaly").sum()


def test_kinds_file_matches_labels(sample: dict) -> None:
    kinds, labels = sample["kinds"], sample["labels"]
    assert kinds.columns == ["BlockId", "Kind", "Detail"]
    anomalous = labels.filter(pl.col("Label") == "Anomaly")["BlockId"]
    assert sorted(kinds["BlockId"].to_list()) == sorted(anomalous.to_list())
    assert set(kinds["Kind"]) == set(ANOMALY_KINDS)
    counts = kinds["Kind"].value_counts()
    assert counts["count"].max() - counts["count"].min() <= 1  # kinds cycle evenly
    assert sample["stats"].kind_counts == dict(zip(counts["Kind"], counts["count"], strict=True))
    for kind, variants in VARIANTS.items():
        if kind != "extra_error":
            seen = set(kinds.filter(pl.col("Kind") == kind)["Detail"])
            assert seen == set(variants), kind


@pytest.mark.parametrize("ratio", [0.0, 0.03, 0.2])
def test_anomaly_ratio_close_to_setting(tmp_path: Path, ratio: float) -> None:
    stats = generate(tmp_path / "r.log", lines=20_000, seed=11, anomaly_ratio=ratio)
    labels = pl.read_csv(stats.labels_path)
    share = (labels["Label"] == "Anomaly").mean()
    assert abs(share - ratio) <= 2 / labels.height
    assert stats.anomaly_fraction == pytest.approx(share)


def test_kinds_subset(tmp_path: Path) -> None:
    stats = generate(tmp_path / "k.log", lines=5000, seed=1, anomaly_ratio=0.1, kinds=["stalled"])
    kinds = pl.read_csv(stats.kinds_path)
    assert set(kinds["Kind"]) == {"stalled"}
    assert stats.kind_counts == {"stalled": kinds.height}


# ---------------------------------------------------------------- normal workflow


def test_normal_blocks_follow_the_workflow(sample: dict) -> None:
    normal = _normal_blocks(sample).sort("pos")
    assert not normal["key"].is_in(ERROR_KEYS).any()
    counts = normal.group_by("blk").agg(
        *[(pl.col("key") == k).sum().alias(k) for k in NORMAL_KEYS],
        pl.col("key").first().alias("first"),
    )
    assert (counts["allocate"] == 1).all()
    assert (counts["first"] == "allocate").all()
    assert (counts["receiving"] >= 3).all()
    for k in WRITE_KEYS:
        assert (counts[k] >= 3).all(), k
    assert (counts["responder_terminating"] == 3).all()
    # optional steps occur, but not everywhere
    for k in ("invalidate", "served", "serve_exception", "verified"):
        assert 0 < (counts[k] > 0).mean() < 1, k


# ---------------------------------------------------------------- anomalies are visible


def test_missing_step_blocks_lack_a_step_every_normal_block_has(sample: dict) -> None:
    normal = _normal_blocks(sample)
    mins = normal.group_by("blk").agg(*[(pl.col("key") == k).sum().alias(k) for k in NORMAL_KEYS])
    floor = {k: mins[k].min() for k in NORMAL_KEYS}
    blocks = _blocks_of(sample, "missing_step")
    assert blocks
    for blk, ev in blocks.items():
        have = {k: (ev["key"] == k).sum() for k in NORMAL_KEYS}
        assert any(have[k] < floor[k] for k in NORMAL_KEYS), blk


def test_extra_error_blocks_hold_an_error_event(sample: dict) -> None:
    blocks = _blocks_of(sample, "extra_error")
    assert blocks
    details = dict(zip(sample["kinds"]["BlockId"], sample["kinds"]["Detail"], strict=True))
    for blk, ev in blocks.items():
        errors = ev.filter(pl.col("key").is_in(ERROR_KEYS))["key"].to_list()
        assert errors, blk
        assert sorted(errors) == sorted(details[blk].split("+"))


def _order_ok(ev: pl.DataFrame) -> bool:
    """The three orderings every normal block obeys."""
    keys = ev["key"].to_list()
    pos = {k: [i for i, x in enumerate(keys) if x == k] for k in set(keys)}
    if keys[0] != "allocate":
        return False
    stored, dropped = pos.get("add_stored"), pos.get("invalidate")
    if stored and dropped and max(stored) > min(dropped):
        return False
    return min(pos["receiving"]) < min(pos.get("responder_terminating", [10**9]))


def test_wrong_order_blocks_have_an_out_of_order_pair(sample: dict) -> None:
    normal = _normal_blocks(sample).sort("pos").partition_by("blk")
    assert all(_order_ok(ev) for ev in normal)
    blocks = _blocks_of(sample, "wrong_order")
    assert blocks
    for blk, ev in blocks.items():
        assert not _order_ok(ev), blk
        assert set(ev["key"]) <= set(NORMAL_KEYS)  # same events, only the order is off


def test_unusual_param_blocks_have_odd_sizes(sample: dict) -> None:
    normal = _normal_blocks(sample).group_by("blk").agg(
        pl.col("size").max().alias("max"), pl.col("size").drop_nulls().n_unique().alias("distinct")
    )
    assert (normal["max"] <= FULL_BLOCK_SIZE).all() and (normal["distinct"] == 1).all()
    blocks = _blocks_of(sample, "unusual_param")
    assert blocks
    for blk, ev in blocks.items():
        sizes = ev["size"].drop_nulls()
        assert sizes.max() > 4 * FULL_BLOCK_SIZE or sizes.n_unique() > 1, blk


def test_stalled_blocks_have_a_long_gap_before_the_last_write_steps(sample: dict) -> None:
    def write_span(ev: pl.DataFrame) -> float:
        w = ev.filter(pl.col("key").is_in(WRITE_KEYS))
        return (w["ts"].max() - ev["ts"].min()).total_seconds()

    normal = _normal_blocks(sample).sort("pos").partition_by("blk")
    assert max(write_span(ev) for ev in normal) < NORMAL_WRITE_MAX_S
    blocks = _blocks_of(sample, "stalled")
    assert blocks
    for blk, ev in blocks.items():
        assert write_span(ev) >= 1800, blk
        assert set(ev["key"]) <= set(NORMAL_KEYS)


# ---------------------------------------------------------------- files and errors


def test_gzip_output_matches_plain(tmp_path: Path) -> None:
    plain = generate(tmp_path / "p.log", lines=2500, seed=9)
    gz = generate(tmp_path / "g.log.gz", lines=2500, seed=9)
    assert gz.labels_path == tmp_path / "g.labels.csv"
    with gzip.open(gz.path, "rb") as fh:
        assert fh.read() == plain.path.read_bytes()
    assert gz.labels_path.read_bytes() == plain.labels_path.read_bytes()
    again = generate(tmp_path / "g2.log.gz", lines=2500, seed=9)
    assert again.path.read_bytes() == gz.path.read_bytes()  # no timestamp in the gzip header


def test_sidecar_paths_and_explicit_label_path(tmp_path: Path) -> None:
    assert sidecar_paths("d/x.log") == (Path("d/x.labels.csv"), Path("d/x.kinds.csv"))
    assert sidecar_paths("d/x.log.gz") == (Path("d/x.labels.csv"), Path("d/x.kinds.csv"))
    assert sidecar_paths("d/x.txt")[0] == Path("d/x.txt.labels.csv")
    stats = generate(tmp_path / "o.log", lines=500, labels_path=tmp_path / "sub" / "lab.csv")
    assert stats.labels_path.read_text().startswith("BlockId,Label\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.kinds.csv", "o.log", "sub"]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"lines": 10}, "at least"),
        ({"lines": 1000, "anomaly_ratio": 1.5}, "ratio"),
        ({"lines": 1000, "kinds": ["nope"]}, "unknown anomaly kind"),
        ({"lines": 1000, "n_datanodes": 2}, "n_datanodes"),
    ],
)
def test_bad_arguments_raise_logsieve_error(tmp_path: Path, kwargs: dict, match: str) -> None:
    with pytest.raises(LogsieveError, match=match):
        generate(tmp_path / "bad.log", **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_cli_function_and_stats_dict(tmp_path: Path) -> None:
    stats = generate(tmp_path / "c.log", lines=800, seed=2, anomaly_ratio=0.05)
    d = stats.to_dict()
    assert d["lines"] == 800 and d["blocks"] == stats.blocks
    assert d["path"] == str(tmp_path / "c.log")
    assert sum(d["kind_counts"].values()) == d["anomalous_blocks"]
