"""``logsieve experiment``: config validation, the grid, resumable runs, data cache, CLI functions.

Most runs use a fake detector registered for the test (fast, counts its fits) on a
small sequences dataset written from tests/detector_fixtures.py; one runs DeepLog on a
small synthetic raw HDFS log (parse, sessions, parsing noise, early detection).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import polars as pl
import pytest
from detector_fixtures import make_windows

from logsieve.detectors import registry
from logsieve.detectors.base import BaseDetector
from logsieve.errors import LogsieveError
from logsieve.evaluation.experiment import (
    CellEvent,
    collect_results,
    load_config,
    parse_grouping,
    plan_cells,
    run_experiment,
)

FAKE = "fake_exp"


class FakeDetector(BaseDetector):
    """Scores a window by the share of its events never seen in training; counts fits."""

    description = "test detector"
    fail_seed: int = -1  # raise ValueError when random_state equals this
    robust: str | None = None  # like the supervised models' option

    fits: ClassVar[list[int | None]] = []
    interrupt_at: ClassVar[int | None] = None  # raise KeyboardInterrupt on this fit number (1-based)

    def _fit(self, train: pl.DataFrame, valid: pl.DataFrame, progress: Any) -> None:
        FakeDetector.fits.append(self.random_state)
        if FakeDetector.interrupt_at is not None and len(FakeDetector.fits) >= FakeDetector.interrupt_at:
            raise KeyboardInterrupt
        if self.random_state == self.fail_seed:
            raise ValueError("planned failure")
        self.known_ = sorted(set(train["event_ids"].explode().drop_nulls().to_list()))

    def _score(self, windows: pl.DataFrame) -> np.ndarray:
        known = pl.Series(self.known_, dtype=pl.String).implode()
        unseen = windows["event_ids"].list.eval(~pl.element().is_in(known)).list.mean()
        return unseen.fill_null(0.0).to_numpy().astype(np.float64)


def register_fake() -> None:
    registry.register_detector(FAKE, replace=True)(FakeDetector)
    FakeDetector.fits.clear()
    FakeDetector.interrupt_at = None


def unregister_fake() -> None:
    registry._REGISTERED.pop(FAKE, None)
    FakeDetector.fits.clear()
    FakeDetector.interrupt_at = None


@pytest.fixture()
def fake():
    register_fake()
    yield FakeDetector
    unregister_fake()


def write_sequences(path: Path, seed: int = 0) -> Path:
    """A ``Sequence,label`` file (LogRobust layout) with anomalies spread in time."""
    w = make_windows(n_normal=150, n_anomalous=30, seed=seed)
    keys = w["event_ids"].list.eval(pl.element().str.strip_prefix("E")).list.join(" ")
    lines = ["Sequence,label"] + [f"{k},{lab}" for k, lab in zip(keys.to_list(), w["label"].to_list(), strict=True)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_config(tmp_path: Path, body: str, name: str = "exp.toml", run: str = "seeds = [0, 1]") -> Path:
    if not (tmp_path / "seq.csv").exists():
        write_sequences(tmp_path / "seq.csv")
    text = f"[run]\n{run}\n\n[datasets.seq]\nsequences = [\"seq.csv\"]\n" + textwrap.dedent(body)
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


BASIC = f"""
[aspects.split]
datasets = ["seq"]
split = ["chronological", "random"]
models = ["{FAKE}"]
"""


# ----------------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("[bogus]\nx = 1\n", r"\[top level\] unknown key 'bogus'"),
        ("[run]\njobs = 2\n", r"invalid TOML"),  # a second [run] table
        (BASIC + "colour = 'red'\n", r"\[aspects.split\] unknown key 'colour' \(allowed: "),
        (BASIC + "train = 'big'\n", r"train must be a number, not string 'big'"),
        (BASIC + "early = 'yes'\n", r"early must be true or false"),
        (BASIC + "seeds = [0.5]\n", r"seeds must be an integer"),
        (BASIC + "train = [0.95]\n", r"leaves no test windows"),
        (BASIC + "grouping = { seq = ['session'] }\n", r"pre-parsed sequences only take grouping 'sequence'"),
        (BASIC.replace(FAKE, "nosuchmodel"), r"unknown model 'nosuchmodel'; available: .*deeplog"),
        (BASIC.replace('["seq"]', '["nope"]'), r"unknown dataset 'nope'; defined: seq"),
        (BASIC.replace('"random"', '"sideways"'), r"split must be chronological or random"),
        (BASIC + "parsing_noise = ['blur:0.1']\n", r"bad parsing noise"),
        (BASIC + "parsing_noise = ['tokens:0.1']\n", r"re-parses raw logs"),
        (BASIC + "robust = ['magic']\n", r"robust must be false, true or one of"),
        (BASIC + f"[aspects.split.params.{FAKE}]\nwidth = 3\n", rf"unknown parameter 'width' for {FAKE}"),
        (BASIC + f"[aspects.split.params.{FAKE}]\nrandom_state = 3\n", r"random_state is set from the seeds"),
        (BASIC + "[params.ghost]\nx = 1\n", r"\[params\] unknown model 'ghost'"),
        (BASIC + "[datasets.more]\nsequences = ['missing.txt']\n", r"\[datasets.more\] sequences: no such file 'missing.txt'"),
        (BASIC + "[datasets.more]\nlog = 'seq.csv'\nsequences = ['seq.csv']\n", r"exactly one of log"),
        (BASIC + "[datasets.more]\nlog = 'seq.csv'\norder = 'file'\n", r"order applies to sequences datasets only"),
        (BASIC + "[datasets.more]\nlog = 'seq.csv'\nformat = 'nosuchformat'\n", r"\[datasets.more\] format"),
        ("[aspects.x]\nmodels = ['deeplog']\n", r"\[aspects.x\] missing key 'datasets'"),
        ("[aspects.x\n", r"invalid TOML"),
    ],
)
def test_config_errors(tmp_path: Path, fake, body: str, match: str | None) -> None:
    path = write_config(tmp_path, body)
    with pytest.raises(LogsieveError) as err:
        load_config(path)
    message = str(err.value)
    assert "\n" not in message
    assert str(path.resolve()) in message or str(path) in message
    if match:
        import re

        assert re.search(match, message), message


def test_config_run_section(tmp_path: Path, fake) -> None:
    with pytest.raises(LogsieveError, match=r"\[run\] unknown key 'seedz' \(allowed: name, description, seeds"):
        load_config(write_config(tmp_path, BASIC, run="seedz = [1]"))
    with pytest.raises(LogsieveError, match=r"\[run\] jobs must be at least 1"):
        load_config(write_config(tmp_path, BASIC, run="jobs = 0"))
    config = load_config(write_config(tmp_path, BASIC, run="seeds = [3]\nname = 'x'"))
    assert config.name == "x" and config.aspects["split"].seeds == (3,)


def test_config_missing_file(tmp_path: Path) -> None:
    with pytest.raises(LogsieveError, match="no such config file"):
        load_config(tmp_path / "none.toml")


def test_parse_grouping() -> None:
    from logsieve.grouping.windows import CountWindows, Sessions, TimeWindows

    assert isinstance(parse_grouping("session"), Sessions)
    assert parse_grouping("count:100,20") == CountWindows(100, 20)
    assert parse_grouping("time:1h,10m") == TimeWindows("1h", "10m")
    assert parse_grouping("sequence") is None
    for bad in ("count:x", "window:3", "time:", "count:1,2,3"):
        with pytest.raises(LogsieveError, match="bad grouping"):
            parse_grouping(bad)


def test_plan_grid_dedup_and_robust(tmp_path: Path, fake) -> None:
    body = BASIC + f"""
[aspects.noise]
datasets = ["seq"]
label_noise = [0, 0.1]
robust = [false, true]
models = ["{FAKE}", "deeplog"]
seeds = [0]
"""
    config = load_config(write_config(tmp_path, body))
    planned = plan_cells(config)
    split = [c for a, c in planned if a == "split"]
    noise = [c for a, c in planned if a == "noise"]
    assert len(split) == 2 * 2  # splits x seeds
    # fake: 2 noise x 2 robust; deeplog has no robust option: 2 noise x 1
    assert len(noise) == 4 + 2
    assert {c.robust for c in noise if c.model == FAKE} == {"none", "confident"}
    assert dict(next(c for c in noise if c.robust == "confident").params)["robust"] == "confident"
    # the noise-free fake cell of "noise" (seed 0, chronological) is the split aspect's cell
    keys = [c.key for _, c in planned]
    assert len(set(keys)) == len(keys) - 1
    with pytest.raises(LogsieveError, match="unknown aspect 'nope'"):
        plan_cells(config, ["nope"])
    assert {a for a, _ in plan_cells(config, ["noise"])} == {"noise"}


def test_a_changed_model_default_changes_the_cell_keys(tmp_path: Path, fake) -> None:
    """A run resumed after a default changed recomputes the cells that use it, never reuses them."""

    class FakeNewDefault(FakeDetector):
        fail_seed: int = -2  # another default than FakeDetector's -1

    config = load_config(write_config(tmp_path, BASIC))
    before = [c.key for _, c in plan_cells(config)]
    registry.register_detector(FAKE, replace=True)(FakeNewDefault)
    after = [c.key for _, c in plan_cells(config)]
    assert len(before) == len(after) == 4 and not set(before) & set(after)
    # set in the config, the parameter's default no longer matters
    pinned = load_config(write_config(tmp_path, BASIC + f"[aspects.split.params.{FAKE}]\nfail_seed = -5\n", name="p.toml"))
    with_new = [c.key for _, c in plan_cells(pinned)]
    registry.register_detector(FAKE, replace=True)(FakeDetector)
    assert [c.key for _, c in plan_cells(pinned)] == with_new


# ----------------------------------------------------------------------------- runs
def test_run_records_everything(tmp_path: Path, fake) -> None:
    config = write_config(tmp_path, BASIC)
    events: list[CellEvent] = []
    summary = run_experiment(config, tmp_path / "run", progress=events.append)
    assert summary.computed == 4 and summary.errors == 0 and summary.remaining == 0
    assert len(fake.fits) == 4
    assert [e.status for e in events].count("ok") == 4 and events[-1].done == 4
    results = pl.read_parquet(tmp_path / "run" / "results.parquet")
    assert results.height == 4
    row = results.filter((pl.col("split") == "chronological") & (pl.col("seed") == 0)).row(0, named=True)
    assert row["status"] == "ok"
    assert row["n_train"] + row["n_valid"] + row["n_test"] == 180
    assert row["n_train"] == 108 and row["n_valid"] == 18 and row["n_test"] == 54
    assert 0 <= row["leakage_fraction"] <= 1 and row["leakage_count"] == round(row["leakage_fraction"] * 54)
    assert row["tp"] + row["fp"] + row["tn"] + row["fn"] == 54
    # the recorded metrics are those of the cell's own scores file
    from logsieve.evaluation.metrics import evaluate

    cell_scores = pl.read_parquet(tmp_path / "run" / "scores" / f"{row['key']}.parquet")
    recomputed = evaluate(
        cell_scores["label"].to_numpy(), cell_scores["pred"].to_numpy(), cell_scores["score"].to_numpy()
    )
    for k in ("precision", "recall", "specificity", "f1", "roc_auc", "pr_auc", "mcc", "tp", "fp", "tn", "fn"):
        assert row[k] == pytest.approx(recomputed[k], nan_ok=True), k
    assert row["train_seconds"] > 0 and row["detect_seconds"] >= 0
    resolved = json.loads(row["config_json"])
    assert resolved["model"] == FAKE and resolved["seed"] == 0 and resolved["dataset_spec"]["kind"] == "sequences"
    assert len(row["data_checksum"]) == 16 and len(row["windows_checksum"]) == 16
    versions = json.loads(row["versions_json"])
    assert {"logsieve", "torch", "numpy", "polars", "sklearn"} <= set(versions)
    scores = pl.read_parquet(tmp_path / "run" / "scores" / f"{row['key']}.parquet")
    assert scores.height == 54 and set(scores.columns) == {"window_id", "label", "score", "pred"}
    # the chronological split is the same for both seeds; the random ones differ
    chrono = results.filter(pl.col("split") == "chronological")
    assert chrono["n_test_anomalous"].n_unique() == 1
    plan = json.loads((tmp_path / "run" / "plan.json").read_text())
    assert len(plan["cells"]) == 4 and (tmp_path / "run" / "config.toml").exists()


def test_resume_after_interruption(tmp_path: Path, fake) -> None:
    config = write_config(tmp_path, BASIC + "train = [0.5, 0.6]\n")
    fake.interrupt_at = 3
    with pytest.raises(KeyboardInterrupt):
        run_experiment(config, tmp_path / "run")
    stored = sorted((tmp_path / "run" / "cells").glob("*.parquet"))
    assert len(stored) == 2
    # results.parquet is written even when interrupted
    assert pl.read_parquet(tmp_path / "run" / "results.parquet").height == 2
    fake.fits.clear()
    fake.interrupt_at = None
    summary = run_experiment(config, tmp_path / "run")
    assert summary.done_before == 2
    assert len(fake.fits) == 8 - 2  # finished cells were not recomputed
    assert pl.read_parquet(tmp_path / "run" / "results.parquet").height == 8
    fake.fits.clear()
    again = run_experiment(config, tmp_path / "run")
    assert again.computed == 0 and fake.fits == []


def test_max_cells_and_dry_run(tmp_path: Path, fake) -> None:
    config = write_config(tmp_path, BASIC)
    dry = run_experiment(config, tmp_path / "run", dry_run=True)
    assert (dry.planned, dry.unique, dry.remaining) == (4, 4, 4)
    assert dry.aspects == {"split": 4}
    assert not (tmp_path / "run").exists()
    first = run_experiment(config, tmp_path / "run", max_cells=1)
    assert first.computed == 1 and first.remaining == 3 and first.stopped_early
    assert len(fake.fits) == 1
    dry = run_experiment(config, tmp_path / "run", dry_run=True)
    assert dry.done_before == 1 and dry.remaining == 3 and dry.estimated_seconds is not None


def test_errors_are_recorded_then_retried(tmp_path: Path, fake) -> None:
    config = write_config(tmp_path, BASIC + f"[aspects.split.params.{FAKE}]\nfail_seed = 1\n")
    summary = run_experiment(config, tmp_path / "run")
    assert summary.computed == 4 and summary.errors == 2
    results = pl.read_parquet(tmp_path / "run" / "results.parquet")
    errors = results.filter(pl.col("status") == "error")
    assert errors.height == 2 and set(errors["seed"].to_list()) == {1}
    assert errors["error"][0] == "ValueError: planned failure"
    fake.fits.clear()
    assert run_experiment(config, tmp_path / "run").computed == 0
    retried = run_experiment(config, tmp_path / "run", retry_errors=True)
    assert retried.computed == 2 and len(fake.fits) == 2


def test_class_ratio_and_label_noise_cells(tmp_path: Path, fake) -> None:
    body = f"""
[aspects.ratio]
datasets = ["seq"]
class_ratio = [0.05, 0.3]
models = ["{FAKE}"]
seeds = [0]

[aspects.noise]
datasets = ["seq"]
label_noise = [0.1]
models = ["{FAKE}"]
seeds = [0]

[aspects.ratio_all]
datasets = ["seq"]
class_ratio = [0.1]
class_ratio_scope = "all"
models = ["{FAKE}"]
seeds = [0]
"""
    run_experiment(write_config(tmp_path, body), tmp_path / "run")
    results = pl.read_parquet(tmp_path / "run" / "results.parquet").sort("class_ratio", nulls_last=True)
    ratio = results.filter(pl.col("aspect") == "ratio")
    for r in ratio.iter_rows(named=True):
        normal = r["n_train"] - r["n_train_anomalous"]
        assert r["n_train_anomalous"] == round(r["class_ratio"] * normal / (1 - r["class_ratio"]))
        assert r["n_test"] == 54  # the test part is never resampled (scope "train")
    every = results.filter(pl.col("aspect") == "ratio_all").row(0, named=True)
    for part in ("train", "valid", "test"):
        normal = every[f"n_{part}"] - every[f"n_{part}_anomalous"]
        assert every[f"n_{part}_anomalous"] == round(0.1 * normal / 0.9)
    noise = results.filter(pl.col("aspect") == "noise").row(0, named=True)
    assert noise["labels_flipped"] == round(0.1 * noise["n_train"]) + round(0.1 * noise["n_valid"])


@pytest.mark.slow
def test_jobs_two_processes(tmp_path: Path) -> None:
    """Worker processes (spawned) run the cells; deeplog, since the fake detector is test-only."""
    body = """
[params.deeplog]
history_size = 3
hidden_size = 8
num_layers = 1
epochs = 2
num_candidates = 2

[aspects.split]
datasets = ["seq"]
models = ["deeplog"]
"""
    summary = run_experiment(write_config(tmp_path, body), tmp_path / "run", jobs=2)
    assert summary.computed == 2 and summary.errors == 0
    assert pl.read_parquet(tmp_path / "run" / "results.parquet")["status"].to_list() == ["ok", "ok"]


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_pool_worker_exits_with_killed_parent() -> None:
    """A parent killed by a signal runs no clean-up: its spawned workers must still go."""
    script = textwrap.dedent(
        """
        import concurrent.futures as cf, multiprocessing, os, time
        from logsieve.evaluation.experiment.runner import _exit_with_parent
        if __name__ == "__main__":
            ctx = multiprocessing.get_context("spawn")
            pool = cf.ProcessPoolExecutor(1, mp_context=ctx, initializer=_exit_with_parent)
            print(pool.submit(os.getpid).result(), flush=True)
            time.sleep(60)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        worker = int(parent.stdout.readline())
        os.kill(worker, 0)  # alive while the parent is
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            os.kill(worker, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.kill(worker, signal.SIGKILL)
    pytest.fail(f"pool worker {worker} outlived its killed parent")


def test_log_dataset_end_to_end(tmp_path: Path) -> None:
    """A raw log: parse once, sessions, parsing noise, early detection, cache reuse."""
    from logsieve.synth import generate

    stats = generate(tmp_path / "synth.log", lines=3000, seed=2, anomaly_ratio=0.08)
    body = f"""
[run]
seeds = [0]

[params.deeplog]
history_size = 4
hidden_size = 8
num_layers = 1
epochs = 3
num_candidates = 3

[datasets.synth]
log = "synth.log"
format = "hdfs"
labels = "{stats.labels_path.name}"

[aspects.parsing]
datasets = ["synth"]
grouping = ["session"]
parsing_noise = ["none", "split:0.2", "tokens:0.05"]
models = ["deeplog"]

[aspects.early]
datasets = ["synth"]
early = true
models = ["deeplog"]
"""
    path = tmp_path / "log.toml"
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    summary = run_experiment(path, tmp_path / "run")
    assert summary.errors == 0, pl.read_parquet(tmp_path / "run" / "results.parquet")["error"].to_list()
    assert summary.unique == 4  # the noise-free cell of "parsing" differs from "early" only by early = true
    results = pl.read_parquet(tmp_path / "run" / "results.parquet")
    data_dirs = list((tmp_path / "run" / "data").iterdir())
    assert len(data_dirs) == 1
    files = sorted(p.name for p in data_dirs[0].glob("*.parquet"))
    assert files == [
        "events.parquet",
        "events__tokens-0.05__s0.parquet",
        "windows__session.parquet",
        "windows__session__split-0.2__s0.parquet",
        "windows__session__tokens-0.05__s0.parquet",
    ]
    early = results.filter(pl.col("aspect") == "early").row(0, named=True)
    assert early["early_method"] == "positions"
    assert early["early_n"] == early["tp"]
    lines = pl.read_parquet(tmp_path / "run" / "early" / f"{early['key']}.parquet")
    anomalous = lines.filter(pl.col("label") == 1)
    assert anomalous.height == early["tp"] and (anomalous["lines_seen"] <= anomalous["length"]).all()
    # normal windows read line by line: for a next-event model, an alert iff the window is a false positive
    assert early["early_normal_windows"] == early["fp"] + early["tn"] == lines.filter(pl.col("label") == 0).height
    assert early["early_false_alarm_rate"] == pytest.approx(early["fp"] / (early["fp"] + early["tn"]))
    noisy = results.filter(pl.col("parsing_noise") == "tokens:0.05").row(0, named=True)
    assert json.loads(noisy["noise_json"])["lines_perturbed"] == round(0.05 * 3000)
    assert noisy["windows_checksum"] != results.filter(pl.col("parsing_noise") == "none")["windows_checksum"][0]


def test_cli_functions(tmp_path: Path, fake) -> None:
    from logsieve.cli.experiment import experiment_command, parse_only, report_command

    assert parse_only(["a,b", "c"]) == ["a", "b", "c"] and parse_only(None) is None
    config = write_config(tmp_path, BASIC)
    dry = experiment_command(config, tmp_path / "run", dry_run=True)
    assert dry["planned"] == 4 and "report_md" not in dry
    out = experiment_command(config, tmp_path / "run", only=["split"], max_cells=2)
    assert out["computed"] == 2 and Path(out["report_html"]).exists()
    rep = report_command(tmp_path / "run")
    assert rep["finished"] == 2 and rep["pending"] == 2
    with pytest.raises(LogsieveError, match="not a run directory"):
        collect_results(tmp_path)


@pytest.mark.slow
def test_quick_config_on_real_data(shared_data: Path, tmp_path: Path) -> None:
    """experiments/quick.toml validates against the real data and its first cells run."""
    quick = Path(__file__).resolve().parents[3] / "experiments" / "quick.toml"
    config = load_config(quick)
    assert set(config.datasets) >= {"hdfs", "bgl", "hadoop"}
    summary = run_experiment(config, tmp_path / "run", only=["split"], max_cells=3)
    assert summary.computed == 3
    results = pl.read_parquet(tmp_path / "run" / "results.parquet")
    assert results["key"].n_unique() == 3  # a cell shared by two aspects is one row per aspect
    assert set(results["status"].to_list()) == {"ok"}, results["error"].to_list()


# ----------------------------------------------------------------------------- stable keys
#: Computed by the code before ``experiment.py`` became a package. A cell key must never
#: change for the same settings: every finished cell of every run directory would be
#: recomputed instead of reused.
STABLE_CELL_KEY = "318df8c80ec2a87a939d"
STABLE_DATA_ID = "fe8c03598c1b2c03"
STABLE_PLAN_KEYS = [
    "58c99f03ae3d72fcbcf9",
    "20941455e6e6ef1e361a",
    "74091362d79a883781dc",
    "a2f89afc85daa5cd8ced",
    "f13cc60459899a281a34",
    "8fa35477bf5929269624",
    "76b2867f63963d36c982",
    "24f40dd73ccf8ece3b9a",
]


def test_cell_keys_are_stable(tmp_path: Path, fake) -> None:
    from logsieve.evaluation.experiment import Cell

    cell = Cell(
        dataset="seq",
        data_id="0123456789abcdef",
        grouping="sequence",
        parsing_noise="none",
        split="random",
        train=0.6,
        valid=0.1,
        test=None,
        class_ratio=0.05,
        class_ratio_scope="train",
        label_noise=0.1,
        robust="confident",
        model=FAKE,
        params=(("fail_seed", 3), ("robust", "confident"), ("widths", (1, 2))),
        seed=7,
        early=True,
        early_method="positions",
        early_max_prefix=5,
        defaults="fedcba9876543210",
    )
    assert cell.key == STABLE_CELL_KEY
    # a whole config: the data id hashes the file's bytes; every parameter is pinned, so the
    # digest of the model's remaining defaults does not depend on BaseDetector's defaults
    (tmp_path / "tiny.csv").write_text("Sequence,label\n1 2 3,0\n1 2 4,0\n5 5,1\n", encoding="utf-8")
    body = f"""
[run]
seeds = [0, 4]

[params.{FAKE}]
threshold = "auto"
contamination = 0.01
valid_fraction = 0.1
include_anomalies = false
fail_seed = -1

[datasets.tiny]
sequences = {{ normal = "tiny.csv" }}

[aspects.grid]
datasets = ["tiny"]
split = ["chronological", "random"]
class_ratio = ["natural", 0.1]
robust = [true]
models = ["{FAKE}"]
"""
    path = tmp_path / "stable.toml"
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    config = load_config(path)
    assert config.datasets["tiny"].data_id == STABLE_DATA_ID
    assert [c.key for _, c in plan_cells(config)] == STABLE_PLAN_KEYS
