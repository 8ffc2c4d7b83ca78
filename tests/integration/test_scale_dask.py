"""--engine dask gives the local path's results: parse, group and detect on a LocalCluster of
2 worker processes, over a synthetic HDFS log of 200k lines."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

pytest.importorskip("distributed")

from logsieve.grouping.windows import CountWindows, Sessions, TimeWindows  # noqa: E402
from logsieve.io.tables import read_table  # noqa: E402
from logsieve.parsing.parser import LogParser  # noqa: E402
from logsieve.pipeline.jobs import detect_job, group_job, train_job  # noqa: E402
from logsieve.scale.cluster import dask_client  # noqa: E402
from logsieve.scale.detect import dask_detect  # noqa: E402
from logsieve.scale.group import dask_group  # noqa: E402
from logsieve.scale.parse import dask_parse  # noqa: E402
from logsieve.synth import generate  # noqa: E402

LINES = 200_000


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("scale")
    generate(d / "s.log", LINES, seed=3, labels_path=d / "labels.csv")
    LogParser("hdfs").parse_files([d / "s.log"], d / "local.parquet", chunk_bytes=3 << 20)
    return d


@pytest.fixture(scope="module")
def client():
    with dask_client(workers=2) as c:
        yield c


@pytest.fixture(scope="module")
def dask_events(work: Path, client) -> Path:
    # small blocks and chunks: several blocks per worker, several chunks per block
    stats = dask_parse(
        client, LogParser("hdfs"), [work / "s.log"], work / "dask", block_bytes=5 << 20,
        chunk_bytes=2 << 20,
    )
    assert stats.lines == LINES
    return work / "dask"


def test_parse_same_event_ids_templates_and_provenance(work: Path, dask_events: Path) -> None:
    parts = sorted(dask_events.glob("part-*.parquet"))
    assert len(parts) > 2
    local, local_meta = read_table(work / "local.parquet")
    dask, dask_meta = read_table(dask_events)
    assert dask.height == LINES
    assert dask.equals(local)  # every column of every line, line ids included
    assert dask_meta == local_meta  # templates, parser state and its hash
    assert not list(work.glob(".logsieve-*"))  # no temporary directory left


@pytest.mark.parametrize(
    "spec",
    [Sessions(), Sessions(idle="1m"), CountWindows(1000, 300), CountWindows(100, 250),
     TimeWindows("10m", "3m"), TimeWindows("5m")],
    ids=["sessions", "sessions-idle", "count-sliding", "count-gaps", "time-sliding", "time-fixed"],
)  # fmt: skip
def test_group_same_windows(work: Path, dask_events: Path, client, spec) -> None:
    name = str(abs(hash(repr(spec))))
    local_out, dask_out = work / f"l-{name}.parquet", work / f"d-{name}"
    want = group_job(work / "local.parquet", local_out, spec, labels=work / "labels.csv")
    got = dask_group(client, dask_events, dask_out, spec, labels=work / "labels.csv",
                     piece_rows=45_000)  # fmt: skip
    assert got["shuffle_bytes"] >= 0
    assert {k: v for k, v in got.items() if k not in ("output", "shuffle_bytes")} == {
        k: v for k, v in want.items() if k != "output"
    }
    local, local_meta = read_table(local_out)
    dask, dask_meta = read_table(dask_out)
    assert local.height > 10
    assert dask.equals(local)  # ids, lines, events, times and labels, in the same order
    assert dask_meta == local_meta


@pytest.mark.parametrize("kind", ["partial", "anomalies-only"])
def test_group_sessions_with_a_partial_label_table(
    work: Path, dask_events: Path, client, kind: str
) -> None:
    # each partition gets only its keys' slice of the table; keys the table does not name
    # must still get the whole table's rule (unknown, or normal for a list of anomalies)
    table = pl.read_csv(work / "labels.csv")
    table = table.filter(pl.col("Label") == "Anomaly") if kind != "partial" else table[::3]
    labels = work / f"labels-{kind}.csv"
    table.write_csv(labels)
    local_out, dask_out = work / f"l-{kind}.parquet", work / f"d-{kind}"
    want = group_job(work / "local.parquet", local_out, Sessions(), labels=labels)
    got = dask_group(client, dask_events, dask_out, Sessions(), labels=labels, piece_rows=45_000)
    assert got["unlabelled"] == want["unlabelled"]
    assert (got["unlabelled"] > 0) == (kind == "partial")
    local, dask = read_table(local_out)[0], read_table(dask_out)[0]
    assert dask.equals(local)


@pytest.mark.parametrize("model,params", [("pca", {}), ("deeplog", {"epochs": 1})])
def test_detect_same_scores(work: Path, dask_events: Path, client, model, params) -> None:
    windows = work / f"win-{model}.parquet"
    group_job(work / "local.parquet", windows, Sessions(), labels=work / "labels.csv")
    model_dir = work / f"model-{model}"
    train_job(windows, model, {**params, "random_state": 0} if model == "deeplog" else params,
              model_dir, split="0.6,0.1,0.3")  # fmt: skip
    test = model_dir / "test_windows.parquet"
    detect_job(test, model_dir, work / f"scores-{model}.parquet")
    summary = dask_detect(client, test, model_dir, work / f"scores-{model}", slice_rows=900)
    local, _ = read_table(work / f"scores-{model}.parquet")
    dask, meta = read_table(work / f"scores-{model}")
    assert len(list((work / f"scores-{model}").glob("part-*.parquet"))) > 1
    # ids, flags, labels and explanations exactly; scores to the last bits (a matrix product
    # over another batch of windows may sum in another order: PCA differs by 1e-17 here)
    assert dask.select("window_id", "is_anomaly", "label").equals(
        local.select("window_id", "is_anomaly", "label")
    )
    assert dask["explanation"].is_null().equals(local["explanation"].is_null())
    np.testing.assert_allclose(dask["score"].to_numpy(), local["score"].to_numpy(), rtol=1e-12,
                               atol=1e-15)  # fmt: skip
    assert summary["windows"] == local.height
    assert meta == {"table": "scores", "model": model}
    assert local["is_anomaly"].sum() > 0


def test_dask_output_refuses_a_file_and_keeps_it(work: Path, dask_events: Path, client) -> None:
    from logsieve.errors import InputError

    target = work / "taken.parquet"
    target.write_bytes(b"keep")
    with pytest.raises(InputError, match="not a dataset directory"):
        dask_group(client, dask_events, target, Sessions())
    assert target.read_bytes() == b"keep"


def test_group_reads_a_dataset_on_the_local_path_too(work: Path, dask_events: Path) -> None:
    out = work / "from-dir.parquet"
    group_job(dask_events, out, CountWindows(50))
    other = work / "from-file.parquet"
    group_job(work / "local.parquet", other, CountWindows(50))
    assert pl.read_parquet(out).equals(pl.read_parquet(other))


def test_experiment_cells_on_dask_equal_local(tmp_path: Path, client) -> None:
    from logsieve.evaluation.experiment import run_experiment
    from logsieve.scale.experiment import dask_executor

    repo = Path(__file__).resolve().parents[2]
    config = repo / "experiments" / "quick.toml"
    if not (repo.parent / "shared" / "data").is_dir():
        pytest.skip("experiments/quick.toml reads ../shared/data")
    local = run_experiment(config, tmp_path / "local", max_cells=2, jobs=1)
    remote = run_experiment(config, tmp_path / "dask", max_cells=2,
                            executor=dask_executor(client.scheduler.address, None))  # fmt: skip
    assert local.computed == remote.computed == 2 and remote.errors == 0
    cols = ["key", "status", "precision", "recall", "f1", "n_test", "threshold"]
    a = pl.read_parquet(tmp_path / "local" / "results.parquet").select(cols).sort("key")
    b = pl.read_parquet(tmp_path / "dask" / "results.parquet").select(cols).sort("key")
    assert a.equals(b)
