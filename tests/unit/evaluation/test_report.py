"""``logsieve report``: report.md / self-contained report.html with plots, published numbers."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import polars as pl
import pytest
from test_experiment import FAKE, register_fake, unregister_fake, write_config

from logsieve.errors import LogsieveError
from logsieve.evaluation.experiment import run_experiment
from logsieve.evaluation.report import PUBLISHED, build_report, published_table
from logsieve.evaluation.report.sections import _comparison

BODY = f"""
[aspects.split]
description = "chronological against random splits"
datasets = ["seq"]
split = ["chronological", "random"]
models = ["{FAKE}"]

[aspects.ratio]
datasets = ["seq"]
class_ratio = [0.02, 0.2]
models = ["{FAKE}"]

[aspects.noise]
datasets = ["seq"]
label_noise = [0, 0.1]
robust = [false, true]
models = ["{FAKE}"]
seeds = [0]

[aspects.early]
datasets = ["seq"]
early = true
models = ["{FAKE}"]
"""


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("report")
    register_fake()
    try:
        run_experiment(write_config(tmp, BODY + f"[aspects.split.params.{FAKE}]\nfail_seed = 1\n"), tmp / "run")
    finally:
        unregister_fake()
    return tmp / "run"


@pytest.fixture(scope="module")
def report(run_dir: Path) -> dict:
    return build_report(run_dir)


def test_files_written(run_dir: Path, report: dict) -> None:
    assert Path(report["report_md"]).exists() and Path(report["report_html"]).exists()
    assert report["failed"] == 2  # the split aspect's seed-1 cells
    assert report["pending"] == 0
    pngs = sorted((run_dir / "plots").glob("*.png"))
    assert len(pngs) == report["plots"] >= 6
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in pngs)


def test_html_is_self_contained(report: dict) -> None:
    text = Path(report["report_html"]).read_text(encoding="utf-8")
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    assert len(images) == report["plots"]
    assert base64.b64decode(images[0]).startswith(b"\x89PNG")
    assert "<style>" in text
    assert "http://" not in text and "https://" not in text  # nothing to fetch
    assert "<table>" in text


def test_markdown_sections(report: dict) -> None:
    md = Path(report["report_md"]).read_text(encoding="utf-8")
    for heading in (
        "# Experiment report: exp",
        "## Run",
        "## Published numbers beside ours",
        "## Aspect: split",
        "## Aspect: ratio",
        "## Aspect: noise",
        "## Aspect: early",
        "### Summary (mean ± std over seeds)",
        "### Plots",
        "### Early detection",
        "### Failed cells",
        "## Time costs",
        "## Published numbers (Le & Zhang, ICSE'22)",
    ):
        assert heading in md, heading
    assert "chronological against random splits" in md
    assert "ValueError: planned failure" in md
    assert re.search(r"!\[PR curves: seq sequence chronological\]\(plots/split-\d+\.png\)", md)
    assert re.search(r"!\[F1 vs class_ratio", md) and re.search(r"!\[F1 vs label_noise", md)
    assert re.search(r"!\[early detection\]", md)
    # mean ± std over the two seeds of the ratio aspect
    assert re.search(r"\| seq \| sequence \| 0\.0200 \| fake_exp \| 2 \| [0-9.]+ ± [0-9.]+ \|", md)


def test_published_numbers_match_settings() -> None:
    table = published_table()
    assert {"a", "b", "c", "d", "f", "g"} == set(table["table"].to_list())
    assert table.filter((pl.col("table") == "a") & (pl.col("model") == "DeepLog") & (pl.col("family") == "hdfs"))["f1"].item() == 0.908
    rows = pl.DataFrame(
        {
            "aspect": ["split", "split", "ratio", "split"],
            "family": ["hdfs", "bgl", "hdfs", "hdfs"],
            "dataset": ["hdfs", "bgl", "hdfs", "hdfs"],
            "grouping": ["session", "count:100", "session", "session"],
            "parsing_noise": ["none"] * 4,
            "split": ["chronological", "chronological", "chronological", "random"],
            "class_ratio": [None, None, 0.05, None],
            "label_noise": [0.0] * 4,
            "robust": ["none"] * 4,
            "model": ["deeplog", "cnn", "logrobust", "pca"],
            "precision": [0.8, 0.5, 0.9, 0.3],
            "recall": [1.0, 0.9, 0.8, 0.2],
            "specificity": [0.99, 0.9, 0.99, 0.9],
            "f1": [0.889, 0.643, 0.847, 0.24],
        }
    )
    block = _comparison(rows, set())
    assert block is not None
    text = [" ".join(r) for r in block.rows]
    assert len(text) == 3  # pca is not one of the study's models
    assert any("hdfs session chronological" in t and "F1 0.908" in t and "RQ2_session" in t for t in text)
    assert any("bgl count:100 chronological" in t and "F1 0.810" in t for t in text)
    assert any("ratio 0.05" in t and "F1 0.962" in t and "RQ3" in t for t in text)
    assert all(p["source"] for p in PUBLISHED)


def test_published_json() -> None:
    """The numbers come from published.json (package data), each row citing its source."""
    import json
    from importlib import resources

    import numpy as np

    doc = json.loads(resources.files("logsieve.evaluation.report").joinpath("published.json").read_text("utf-8"))
    assert doc["rows"] == PUBLISHED and len(PUBLISHED) == 115
    assert all(r["source"].startswith("Le & Zhang, ICSE'22 (LogADEmpirical), pictures/") for r in PUBLISHED)
    # table (c) holds the mean and sample std of the five rounds transcribed beside it
    rounds = doc["random_5rounds_f1"]
    for r in (r for r in PUBLISHED if r["table"] == "c"):
        assert r["f1"] == float(np.mean(rounds[r["model"]]))
        assert r["f1_std"] == float(np.std(rounds[r["model"]], ddof=1))


def test_missing_run_dir(tmp_path: Path) -> None:
    with pytest.raises(LogsieveError, match="no such run directory"):
        build_report(tmp_path / "nope")
    with pytest.raises(LogsieveError, match="not a run directory"):
        build_report(tmp_path)
