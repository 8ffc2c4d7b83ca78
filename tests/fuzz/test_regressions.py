"""Regression tests for issue 16's "Tracebacks instead of one-line errors" items that the
earlier work left: tables that are not Parquet, wrong-typed model files, huge --set values,
output paths that are directories, experiments with damaged inputs or only failing cells."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import polars as pl
import pytest

from fuzz.conftest import check_case

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "evaluation"))


def error_of(res) -> str:
    assert res.exit_code == 2, res.output
    return res.output.strip().splitlines()[-1]


@pytest.mark.parametrize("command", ["group", "train", "detect-events", "train-events"])
def test_tables_that_are_not_parquet(fuzz_data: dict[str, Path], tmp_path: Path, command: str) -> None:
    log, out = fuzz_data["log"], tmp_path / "out.parquet"
    args = {
        "group": ["group", log, "-o", out],
        "train": ["train", log, "-m", "pca", "-o", tmp_path / "m"],
        "detect-events": ["detect", fuzz_data["windows"], "-m", fuzz_data["model"], "--events", log, "-o", out],
        "train-events": ["train", fuzz_data["windows"], "-m", "pca", "--events", log, "-o", tmp_path / "m"],
    }[command]
    msg = error_of(check_case("regression", args, [out, tmp_path / "m"]))
    assert f"{log}: not a readable Parquet" in msg


@pytest.mark.parametrize(
    ("file", "field", "value", "match"),
    [
        ("model.json", "state", [1], "field 'state' must be an object"),
        ("model.json", "params", "x", "field 'params' must be an object"),
        ("model.json", "name", 3, "field 'name' must be a string"),
        ("model.json", "threshold", "high", "field 'threshold' must be a number"),
        ("model.json", "templates", {"E1": 5}, "field 'templates' must map event ids"),
        ("model.json", "versions", [1], "field 'versions' must be an object"),
        ("model.json", "weights", None, "field 'weights' must be an object"),
        ("model.json", "params.alpha", "x", "bad parameters (alpha must be a number"),
        ("model.json", "params.random_state", [1], "random_state must be an integer"),
        ("model.json", "state.counter", "x", "saved state does not fit"),
        ("pipeline.json", "format_version", None, None),
        ("pipeline.json", "format_version", "x", "field 'format_version' must be an integer"),
        ("pipeline.json", "grouping", [1], "field 'grouping' must be an object"),
        ("pipeline.json", "masks", [1], "field 'masks' must be an array of objects"),
        ("pipeline.json", "templates", "x", "field 'templates' must be an object"),
    ],
)
def test_model_files_with_wrong_typed_fields(
    fuzz_data: dict[str, Path], tmp_path: Path, file: str, field: str, value, match: str | None
) -> None:
    model = tmp_path / "m"
    shutil.copytree(fuzz_data["model"], model)
    doc = json.loads((model / file).read_text())
    *parents, last = field.split(".")
    node = doc
    for key in parents:
        node = node[key]
    node[last] = value
    (model / file).write_text(json.dumps(doc))
    out = tmp_path / "s.parquet"
    res = check_case("regression", ["detect", fuzz_data["windows"], "-m", model, "-o", out], [out])
    if match is None:  # a null version reads as version 0: still loads
        assert res.exit_code == 0, res.output
        return
    assert match in error_of(res)


def test_set_value_too_large_to_allocate(fuzz_data: dict[str, Path], tmp_path: Path) -> None:
    model = tmp_path / "m"
    res = check_case(
        "regression",
        ["train", fuzz_data["windows"], "-m", "deeplog", "--set", "hidden_size=1000000000000", "-o", model],
    )
    assert "out of memory building or training the model" in error_of(res)
    assert not model.exists()


def test_set_value_of_the_wrong_type(fuzz_data: dict[str, Path], tmp_path: Path) -> None:
    res = check_case(
        "regression", ["train", fuzz_data["windows"], "-m", "pca", "--set", 'alpha="x"', "-o", tmp_path / "m"]
    )
    assert "alpha must be a number, not 'x'" in error_of(res)


@pytest.mark.parametrize("command", ["parse", "group", "detect"])
def test_output_path_that_is_a_directory(fuzz_data: dict[str, Path], tmp_path: Path, command: str) -> None:
    out = tmp_path / "adir"
    out.mkdir()
    args = {
        "parse": ["parse", fuzz_data["log"], "--format", "hdfs", "-o", out],
        "group": ["group", fuzz_data["events"], "-o", out],
        "detect": ["detect", fuzz_data["windows"], "-m", fuzz_data["model"], "-o", out],
    }[command]
    assert "output path is a directory" in error_of(check_case("regression", args))
    assert out.is_dir() and not any(out.iterdir())


# ----------------------------------------------------------------------------- experiments
@pytest.fixture()
def exp(tmp_path: Path):
    import test_experiment as te

    te.register_fake()
    yield te, tmp_path
    te.unregister_fake()


def test_experiment_config_not_utf8(exp) -> None:
    _, tmp = exp
    bad = tmp / "bad.toml"
    bad.write_bytes(b"[run]\nname = '\xff\xfe'\n")
    msg = error_of(check_case("regression", ["experiment", bad, "-o", tmp / "run"]))
    assert f"{bad}: not UTF-8 text" in msg
    assert not (tmp / "run").exists()


def test_experiment_whose_cells_all_fail_exits_2(exp) -> None:
    te, tmp = exp
    body = te.BASIC + f"[aspects.split.params.{te.FAKE}]\nfail_seed = 0\n"
    cfg = te.write_config(tmp, body, run="seeds = [0]")
    res = check_case("regression", ["experiment", cfg, "-o", tmp / "run", "-q"])
    assert "all 2 cells failed (first: ValueError: planned failure)" in error_of(res)
    assert (tmp / "run" / "report.md").exists()  # the report still lists the errors


def test_experiment_with_some_failing_cells_exits_0(exp) -> None:
    te, tmp = exp
    cfg = te.write_config(tmp, te.BASIC + f"[aspects.split.params.{te.FAKE}]\nfail_seed = 1\n")
    assert check_case("regression", ["experiment", cfg, "-o", tmp / "run", "-q"]).exit_code == 0


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        ("plan-json", "plan.json: damaged plan"),
        ("plan-shape", "plan.json: damaged plan (expected an object"),
        ("plan-escape", "plan.json: damaged plan (expected an object"),
        ("cell", "damaged run file"),
        ("cell-columns", "damaged run file"),
        ("scores", "damaged run file"),
    ],
)
@pytest.mark.parametrize("command", ["report", "retry"])
def test_damaged_run_directory(exp, damage: str, match: str, command: str) -> None:
    te, tmp = exp
    cfg = te.write_config(tmp, te.BASIC, run="seeds = [0]")
    run = tmp / "run"
    assert check_case("regression", ["experiment", cfg, "-o", run, "-q"]).exit_code == 0
    cell = sorted((run / "cells").glob("*.parquet"))[0]
    if damage == "plan-json":
        (run / "plan.json").write_text("{not json")
    elif damage == "plan-shape":
        (run / "plan.json").write_text("[1]")
    elif damage == "plan-escape":
        (run / "plan.json").write_text('{"cells": [{"aspect": "split", "key": "../../etc/x"}]}')
    elif damage == "cell":
        cell.write_bytes(cell.read_bytes()[:40])
    elif damage == "cell-columns":
        pl.DataFrame({"x": [1]}).write_parquet(cell)
    elif damage == "scores":
        if command == "retry":
            pytest.skip("score files are read by the report only")
        next((run / "scores").glob("*.parquet")).write_bytes(b"junk")
    args = ["report", run] if command == "report" else ["experiment", cfg, "-o", run, "--retry-errors", "-q"]
    res = check_case("regression", args)
    if command == "retry" and damage.startswith("plan"):  # a rerun writes plan.json anew
        assert res.exit_code == 0, res.output
        assert json.loads((run / "plan.json").read_text())["cells"][0]["aspect"] == "split"
        return
    assert match in error_of(res)


@pytest.mark.parametrize("file", ["pipeline.json", "model.json", "parser_state.json", "weights.safetensors"])
def test_model_file_linked_to_dev_zero_is_not_read(fuzz_data: dict[str, Path], tmp_path: Path, file: str) -> None:
    """Found by the fuzz suite: pipeline.json -> /dev/zero was read without end (memory)."""
    model = tmp_path / "m"
    shutil.copytree(fuzz_data["model"], model)
    (model / file).unlink()
    (model / file).symlink_to("/dev/zero")
    out = tmp_path / "s.parquet"
    res = check_case("regression", ["detect", fuzz_data["windows"], "-m", model, "-o", out], [out], timeout=10)
    assert res.exit_code == 2, res.output
