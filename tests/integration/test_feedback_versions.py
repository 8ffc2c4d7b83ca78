"""Model versions, history and rollback of `logsieve feedback`; alerts; workflow export."""

from __future__ import annotations

import json

import polars as pl
import pytest
from detector_fixtures import TEMPLATES, make_windows
from typer.testing import CliRunner

from logsieve.cli.app import app
from logsieve.detectors.registry import create_detector
from logsieve.pipeline import Pipeline
from logsieve.pipeline.feedback import apply_feedback, model_version, read_alerts, rollback
from logsieve.pipeline.workflow import workflow_job


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("fb") / "model"
    windows = make_windows(seed=0)
    det = create_detector("pca")
    pipe = Pipeline(det, templates=TEMPLATES)
    result = pipe.train(windows, train_normal_only=True)
    pipe.save(out, summary=result.summary, train_windows=result.seen)
    return out


def test_versions_history_and_rollback(model_dir, tmp_path):
    work = tmp_path / "m"
    import shutil

    shutil.copytree(model_dir, work)
    assert model_version(work) == 1
    test = make_windows(seed=1, prefix="t")
    pipe = Pipeline.load(work)
    normal = test.filter(pl.col("label") == 0)
    worst = normal[[int(pipe.score(normal).argmax())]]
    report = apply_feedback(work, worst, "normal")
    assert report["model_version"] == 2 and report["previous_version"] == 1
    assert (work / "history" / "v1" / "model.json").is_file()
    assert not Pipeline.load(work).detector.predict(worst).any()
    back = rollback(work)
    assert back == {"model_dir": str(work), "model_version": 3, "restored_version": 1,
                    "previous_version": 2}
    assert (work / "history" / "v2").is_dir()
    restored = json.loads((work / "pipeline.json").read_text())
    assert restored["model_version"] == 3
    assert (work / "model.json").read_bytes() == (work / "history/v1/model.json").read_bytes()
    with pytest.raises(Exception, match="no earlier version"):
        rollback(work)


def test_out_dir_leaves_the_model_alone(model_dir, tmp_path):
    before = (model_dir / "model.json").read_bytes()
    test = make_windows(seed=1, prefix="t").head(3)
    apply_feedback(model_dir, test, "normal", tmp_path / "new")
    assert (model_dir / "model.json").read_bytes() == before
    assert model_version(tmp_path / "new") == 2


def test_unsupervised_refuses_anomaly_label_in_one_line(model_dir, tmp_path):
    windows = make_windows(seed=1, prefix="t").head(2)
    windows.write_parquet(tmp_path / "w.parquet")
    res = CliRunner().invoke(app, ["feedback", "-m", str(model_dir), "--windows",
                                   str(tmp_path / "w.parquet"), "--window",
                                   windows["window_id"][0], "--label", "anomaly"])  # fmt: skip
    assert res.exit_code == 2
    assert "cannot learn" in res.output and len(res.output.strip().splitlines()) == 1


def test_bad_alerts_file_names_the_line(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text('{"alert_id": "a1", "window_id": "w", "lines": []}\nnot json\n')
    with pytest.raises(Exception, match=r"a\.jsonl.*2"):
        read_alerts(path)


@pytest.mark.parametrize("suffix", [".json", ".dot", ".svg", ".html"])
def test_workflow_export(model_dir, tmp_path, suffix):
    summary = workflow_job(model_dir, tmp_path / f"wf{suffix}")
    text = (tmp_path / f"wf{suffix}").read_text()
    assert summary["nodes"] >= 8 and summary["divergence_points"] >= 1
    assert "E1" in text


def test_cli_scope_option(model_dir, tmp_path):
    test = make_windows(seed=1, prefix="t")
    test.write_parquet(tmp_path / "w.parquet")
    wid = test["window_id"][0]
    base = ["feedback", "-m", str(model_dir), "--windows", str(tmp_path / "w.parquet"),
            "--window", wid, "--label", "normal"]  # fmt: skip
    res = CliRunner().invoke(app, [*base, "--scope", "everything"])
    assert res.exit_code == 2 and "scope" in res.output
    assert len(res.output.strip().splitlines()) == 1
    res = CliRunner().invoke(app, [*base, "--scope", "pattern", "-o", str(tmp_path / "new"),
                                   "--json"])  # fmt: skip
    assert res.exit_code == 0, res.output
    report = json.loads(res.output)
    assert report["scope"] == "pattern" and report["known_windows"]["normal"] == 1
    assert not Pipeline.load(tmp_path / "new").detector.predict(test[:1]).any()
