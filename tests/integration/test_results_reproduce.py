"""docs/results.md reproduces from the CLI: three HDFS 2% rows re-run with the real `logsieve`
commands the doc prints, in subprocesses, give the documented F1 of seed 0 within 0.005."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ROWS = ("deeplog", "plelog", "logrobust")
DATASET = "HDFS 2% sessions"


def _results_module():  # benchmarks/results.py is a script, not part of the package
    spec = importlib.util.spec_from_file_location("results", REPO / "benchmarks" / "results.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def logsieve(*args: object, cwd: Path, threads: int | None = None) -> dict:
    cmd = [sys.executable, "-m", "logsieve", *map(str, args), "--json"]
    env = dict(os.environ)
    if threads:  # the doc's rows with num_threads=N ran with N BLAS threads too
        env["OMP_NUM_THREADS"] = str(threads)
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=900, env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def sessions(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    work = tmp_path_factory.mktemp("results")
    hdfs = shared_data / "hdfs_loglead_2pct"
    logsieve("parse", hdfs / "HDFS_2pct.log.gz", "--format", "hdfs", "-o", "events.parquet",
             "--quiet", cwd=work)  # fmt: skip
    logsieve("group", "events.parquet", "--labels", hdfs / "anomaly_label.csv",
             "-o", "sessions.parquet", cwd=work)  # fmt: skip
    return work


@pytest.mark.slow
@pytest.mark.parametrize("model", ROWS)
def test_documented_row_reproduces_through_the_cli(model: str, sessions: Path) -> None:
    results = _results_module()
    rows = {
        r["model"]: r
        for r in results.rows_from_doc(REPO / "docs" / "results.md")
        if r["dataset"] == DATASET
    }
    assert model in rows, f"docs/results.md has no {model} row for {DATASET}"
    row = rows[model]
    documented = (row.get("f1_runs") or [row["f1"]])[0]
    options = results.cli_options(model, row.get("threads")).split()
    out = sessions / model
    threads = row.get("threads")
    logsieve("train", "sessions.parquet", *options, "--valid", "0.1", "--test", "0.3",
             "--seed", "0", "-o", out, "--quiet", cwd=sessions, threads=threads)  # fmt: skip
    logsieve("detect", out / "test_windows.parquet", "-m", out, "-o", out / "scores.parquet",
             "--quiet", cwd=sessions, threads=threads)  # fmt: skip
    f1 = logsieve("evaluate", out / "scores.parquet", cwd=sessions)["f1"]
    assert f1 == pytest.approx(documented, abs=0.005), f"{model}: CLI {f1:.4f}, doc {documented}"
