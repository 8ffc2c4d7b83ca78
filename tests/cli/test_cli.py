"""The command line: exit codes, one-line errors, JSON output, outputs on disk."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
from typer.testing import CliRunner

from logsieve.cli.app import app

DATA = Path(__file__).resolve().parents[1] / "data"
runner = CliRunner()


def invoke(*args: str | Path):
    return runner.invoke(app, [str(a) for a in args])


def test_help_and_version() -> None:
    res = invoke("--help")
    assert res.exit_code == 0
    for cmd in ("parse", "group", "sequences", "synth", "datasets", "demo", "formats", "bench"):
        assert cmd in res.output
    assert invoke("--version").output.startswith("logsieve ")


def test_python_dash_m_works() -> None:
    out = subprocess.run([sys.executable, "-m", "logsieve", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("logsieve ")


def test_formats_json() -> None:
    res = invoke("formats", "--json")
    assert res.exit_code == 0
    names = {row["name"] for row in json.loads(res.output)}
    assert {"hdfs", "bgl", "thunderbird", "spirit", "openssh", "weblog"} <= names


def test_parse_writes_events_and_templates(tmp_path: Path) -> None:
    out, tpl, state = tmp_path / "ev.parquet", tmp_path / "tpl.csv", tmp_path / "state.json"
    res = invoke("parse", DATA / "tiny_hdfs.log", "-o", out, "--format", "hdfs",
                 "--templates-out", tpl, "--state", state, "--json")
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["lines"] == 10 and summary["malformed_lines"] == 1
    events = pl.read_parquet(out)
    assert events.height == 9
    counts = pl.read_csv(tpl)
    assert counts.columns == ["event_id", "template", "count"] and counts["count"].sum() == 9
    assert json.loads(state.read_text())["state_version"] == 1


def test_parse_custom_format_and_mask(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("2024-01-02 10:00:00 INFO pool: opened conn-17\n2024-01-02 10:00:01 INFO pool: opened conn-99\n")
    out = tmp_path / "ev.parquet"
    res = invoke("parse", log, "-o", out, "--format", "<Date> <Time> <Level> <Component>: <Content>",
                 "--mask", r"conn=conn-\d+", "-q")
    assert res.exit_code == 0, res.output
    events = pl.read_parquet(out)
    assert events["event_id"].n_unique() == 1
    assert events["template"][0] == "opened <*>"


def test_parse_missing_file_is_one_line_exit_2(tmp_path: Path) -> None:
    res = invoke("parse", tmp_path / "missing.log", "-o", tmp_path / "x.parquet")
    assert res.exit_code == 2
    assert "missing.log: no such file" in res.output
    assert "Traceback" not in res.output
    assert not (tmp_path / "x.parquet").exists()


def test_parse_truncated_gzip_exit_2_no_output(tmp_path: Path) -> None:
    import gzip

    payload = "".join(f"081109 203518 1 INFO a: message {i} {i * 7919 % 104729}\n" for i in range(30_000)).encode()
    whole = gzip.compress(payload)
    bad = tmp_path / "cut.log.gz"
    bad.write_bytes(whole[: len(whole) // 2])
    out = tmp_path / "ev.parquet"
    res = invoke("parse", bad, "-o", out)
    assert res.exit_code == 2
    assert "cut.log.gz" in res.output and "gzip" in res.output
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_parse_bad_mask_exit_2(tmp_path: Path) -> None:
    res = invoke("parse", DATA / "tiny_hdfs.log", "-o", tmp_path / "x.parquet", "--mask", "nonsense")
    assert res.exit_code == 2 and "mask" in res.output.lower()


def test_parse_unknown_format_exit_2(tmp_path: Path) -> None:
    res = invoke("parse", DATA / "tiny_hdfs.log", "-o", tmp_path / "x.parquet", "--format", "zzz")
    assert res.exit_code == 2 and "unknown format" in res.output


def test_parse_with_truth_prints_accuracy(shared_data: Path, tmp_path: Path) -> None:
    folder = shared_data / "loghub_2k" / "HDFS"
    res = invoke("parse", folder / "HDFS_2k.log", "-o", tmp_path / "ev.parquet",
                 "--truth", folder / "HDFS_2k.log_structured.csv", "--json")
    assert res.exit_code == 0, res.output
    acc = json.loads(res.stdout.strip().splitlines()[-1])["accuracy"]
    assert acc["GA"] >= 0.99 and {"PA", "F1_GA"} <= set(acc)


def _synthetic_windows(tmp_path: Path) -> tuple[Path, Path, Path]:
    log = tmp_path / "s.log"
    assert invoke("synth", "-o", log, "--lines", "20000", "--seed", "5", "-q").exit_code == 0
    events, windows, state = tmp_path / "ev.parquet", tmp_path / "w.parquet", tmp_path / "st.json"
    assert invoke("parse", log, "-o", events, "--state", state, "-q").exit_code == 0
    res = invoke("group", events, "-o", windows, "--labels", tmp_path / "s.labels.csv", "--json")
    assert res.exit_code == 0, res.output
    return events, windows, state


def test_group_sessions_by_a_format_field(tmp_path: Path) -> None:
    """`--session-field IP` on a hand-written weblog file: one session per client and burst."""
    log = tmp_path / "web.csv"
    rows = [
        ("10.0.0.1", "06:58:55", "GET /login.php HTTP/1.1"),
        ("10.0.0.2", "06:59:02", "GET /index.php HTTP/1.1"),
        ("10.0.0.1", "06:59:10", "POST /process.php HTTP/1.1"),
        ("10.0.0.1", "08:15:00", "GET /login.php HTTP/1.1"),  # 76 minutes later: a new session
        ("10.0.0.2", "07:01:00", "GET /home.php HTTP/1.1"),
    ]
    log.write_text("".join(f"{ip},[29/Nov/2017:{t},{req},200\n" for ip, t, req in rows))
    events = tmp_path / "ev.parquet"
    assert invoke("parse", log, "--format", "weblog", "-o", events, "-q").exit_code == 0
    out = tmp_path / "w.parquet"
    res = invoke("group", events, "-o", out, "--session-field", "IP", "--idle", "30m", "--json")
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output)
    assert summary["grouping"] == {"kind": "session_field", "field": "IP", "idle": "30m"}
    assert summary["windows"] == 3 and summary["lines"] == 5 and summary["lines_dropped"] == 0
    w = pl.read_parquet(out)
    assert sorted(w["window_id"].to_list()) == ["10.0.0.1#1", "10.0.0.1#2", "10.0.0.2#1"]
    assert dict(zip(w["window_id"].to_list(), w["line_ids"].to_list(), strict=True))["10.0.0.1#1"] == [1, 3]
    bad = invoke("group", events, "-o", out, "--session-field", "IP", "--window", "5")
    assert bad.exit_code == 2 and "choose one of" in bad.output
    missing = invoke("group", events, "-o", out, "--session-field", "Host")
    assert missing.exit_code == 2 and "no 'Host' column" in missing.output


def test_models_lists_every_registered_detector() -> None:
    from logsieve.detectors.registry import list_detectors

    res = invoke("models", "--json")
    assert res.exit_code == 0
    names = {row["name"] for row in json.loads(res.output)}
    assert names == set(list_detectors())
    assert {"deeplog", "pca", "invariants"} <= names


def test_train_detect_evaluate_round_trip(tmp_path: Path) -> None:
    events, windows, state = _synthetic_windows(tmp_path)
    model = tmp_path / "model"
    res = invoke("train", windows, "-m", "deeplog", "-o", model, "--set", "epochs=2", "--set", "hidden_size=16",
                 "--test", "0.3", "--normal-only", "--templates", events, "--state", state, "--json")
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["split"]["train"]["anomalous"] == 0
    assert (model / "model.json").exists() and (model / "parser_state.json").exists()
    scores = tmp_path / "scores.parquet"
    res = invoke("detect", model / "test_windows.parquet", "-m", model, "-o", scores, "--events", events,
                 "--top", "2", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["windows"] == summary["split"]["test"]["windows"]
    for alert in out["top"]:
        assert alert["explanation"]["positions"] and alert["lines"]
    table = pl.read_parquet(scores)
    assert table.columns == ["window_id", "score", "is_anomaly", "label", "explanation"]
    res = invoke("evaluate", scores, "--json")
    metrics = json.loads(res.output)
    assert res.exit_code == 0 and {"precision", "recall", "specificity", "f1", "roc_auc", "pr_auc"} <= set(metrics)


def test_train_random_split_and_include_anomalies(tmp_path: Path) -> None:
    _, windows, _ = _synthetic_windows(tmp_path)
    table = pl.read_parquet(windows)

    def train(*extra: str) -> dict:
        res = invoke("train", windows, "-m", "pca", "-o", tmp_path / "m", "--test", "0.3", "--json", *extra)
        assert res.exit_code == 0, res.output
        return json.loads(res.stdout.strip().splitlines()[-1])

    chrono = train()
    shuffled = train("--split", "random", "--valid", "0.2", "--seed", "3")
    assert shuffled["split"]["method"] == "random" and chrono["split"]["method"] == "chronological"
    assert abs(shuffled["split"]["valid"]["windows"] - 0.2 * table.height) <= 1
    test_ids = set(pl.read_parquet(tmp_path / "m" / "test_windows.parquet")["window_id"])
    assert test_ids != set(table["window_id"].tail(len(test_ids)))  # not the last windows in time
    # an unsupervised model trains on the normal training windows unless told otherwise
    n_train = chrono["split"]["train"]["windows"]
    assert chrono["n_train_windows"] == n_train - chrono["split"]["train"]["anomalous"]
    assert chrono["split"]["train"]["anomalous"] > 0
    assert train("--include-anomalies")["n_train_windows"] == n_train


def test_detect_on_a_raw_log_uses_the_models_parser_state(tmp_path: Path) -> None:
    events, windows, state = _synthetic_windows(tmp_path)
    model = tmp_path / "model"
    assert invoke("train", windows, "-m", "pca", "-o", model, "--state", state, "-q").exit_code == 0
    later = tmp_path / "later.log"
    assert invoke("synth", "-o", later, "--lines", "3000", "--seed", "9", "-q").exit_code == 0
    scores = tmp_path / "later_scores.parquet"
    res = invoke("detect", later, "--format", "hdfs", "-m", model, "-o", scores, "--json")
    assert res.exit_code == 0, res.output
    assert pl.read_parquet(scores).height == json.loads(res.stdout.strip().splitlines()[-1])["windows"] > 0


def test_detect_top_shows_the_highest_scores_even_when_none_is_flagged(tmp_path: Path) -> None:
    events, windows, _ = _synthetic_windows(tmp_path)
    model = tmp_path / "model"
    assert invoke("train", windows, "-m", "pca", "-o", model, "--set", "threshold=1e12", "-q").exit_code == 0
    scores = tmp_path / "scores.parquet"
    res = invoke("detect", windows, "-m", model, "-o", scores, "--events", events, "--top", "3", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["anomalies"] == 0 and len(out["top"]) == 3
    table = pl.read_parquet(scores)
    best = table.sort("score", descending=True).head(3)
    assert [a["window_id"] for a in out["top"]] == best["window_id"].to_list()
    assert all(a["is_anomaly"] is False and a["explanation"] and a["lines"] for a in out["top"])
    assert table["explanation"].is_not_null().sum() == 3  # only those three are explained
    printed = invoke("detect", windows, "-m", model, "-o", scores, "--events", events, "--top", "1")
    assert printed.exit_code == 0 and "below the threshold" in printed.output


def test_train_errors_are_one_line(tmp_path: Path) -> None:
    _, windows, _ = _synthetic_windows(tmp_path)
    res = invoke("train", windows, "-m", "nosuchmodel", "-o", tmp_path / "m")
    assert res.exit_code == 2 and "deeplog" in res.output
    res = invoke("train", windows, "-m", "deeplog", "-o", tmp_path / "m", "--set", "nonsense")
    assert res.exit_code == 2 and "key=value" in res.output
    res = invoke("detect", tmp_path / "nope.parquet", "-m", tmp_path / "m", "-o", tmp_path / "s.parquet")
    assert res.exit_code == 2


def test_sequences_import(shared_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "train.parquet"
    res = invoke("sequences", shared_data / "hdfs_deeplog" / "hdfs_train", "-o", out, "--label", "0", "--json")
    assert res.exit_code == 0, res.output
    table = pl.read_parquet(out)
    assert table.height == 4855 and (table["label"] == 0).all()


def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    res = invoke("demo", "-w", tmp_path / "demo", "--lines", "20000", "--json")
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["lines"] == 20000 and summary["windows"] > 0 and summary["test_windows"] > 0
    assert set(summary["caught_by_kind"]) == {"extra_error", "missing_step", "stalled", "unusual_param", "wrong_order"}
    parts = {"deeplog_keys", "deeplog_values", "invariants", "deeplog"}
    assert all(set(row) == parts for row in summary["caught_by_kind"].values())
    assert set(summary["by_design"]) == {"stalled", "missing_step"} and set(summary["normal_flagged"]) == parts


def test_package_import_is_light() -> None:
    code = "import sys, logsieve, logsieve.cli.app; print('torch' in sys.modules, 'sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"


def test_public_names_resolve() -> None:
    import importlib

    import logsieve

    for name in logsieve.__all__:
        if name == "__version__":
            continue
        module, attr = logsieve._LAZY[name].split(":")
        # the lazy name is the very object its target module defines
        assert getattr(logsieve, name) is getattr(importlib.import_module(module), attr), name


def test_experiment_and_report_commands(shared_data: Path, tmp_path: Path) -> None:
    quick = Path(__file__).resolve().parents[2] / "experiments" / "quick.toml"
    res = invoke("experiment", quick, "-o", tmp_path / "run", "--dry-run", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout.strip().splitlines()[-1])["unique"] > 0
    res = invoke("experiment", quick, "-o", tmp_path / "run", "--only", "split", "--max-cells", "1", "--json")
    assert res.exit_code == 0, res.output
    res = invoke("report", tmp_path / "run", "--json")
    assert res.exit_code == 0, res.output
    html = (tmp_path / "run" / "report.html").read_text()
    assert "<html" in html.lower()


def test_experiment_unknown_key_is_one_line(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[run]\nseeds = [0]\nbogus = 1\n")
    res = invoke("experiment", cfg, "-o", tmp_path / "run")
    assert res.exit_code == 2 and "bogus" in res.output


def _deeplog_folder(root: Path) -> Path:
    """A tiny folder in the layout of DeepLog's HDFS files: normal cycles to train, broken ones to flag."""
    root.mkdir()
    normal = " ".join(str(k) for k in [5, 22, 11, 9, 11, 9, 26, 26] * 2)
    (root / "hdfs_train").write_text("\n".join([normal] * 30) + "\n")
    (root / "hdfs_test_abnormal").write_text("5 22 7 7 7 7 7 7 7 7 7 7 7\n5 22 11 9 26 26 26 26 26 26 26 26 26 26\n")
    return root


def test_bench_deeplog_json_without_the_peer(tmp_path: Path, monkeypatch) -> None:
    data = _deeplog_folder(tmp_path / "hdfs_deeplog")
    monkeypatch.setitem(sys.modules, "deeplog", None)  # the peer package is "not installed"
    res = invoke("bench", "deeplog", "--data", data, "--epochs", "2", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["data"] == {"train_sessions": 30, "test_sessions": 2}
    assert out["settings"]["history_size"] == 10 and out["settings"]["num_candidates"] == 9
    assert out["logsieve"]["recall"] == 1.0 and out["logsieve"]["fn"] == 0  # key 7 never seen in training
    assert "pip install --no-deps deeplog==0.0.3" in out["peer"]["skipped"]
    assert out["speedup"] is None
    table = invoke("bench", "deeplog", "--data", data, "--epochs", "1", "--skip-peer")
    assert table.exit_code == 0 and "logsieve" in table.output and "false negatives" in table.output


def test_bench_deeplog_missing_data_is_one_line(tmp_path: Path) -> None:
    res = invoke("bench", "deeplog", "--data", tmp_path / "nowhere")
    assert res.exit_code == 2
    assert "hdfs_train: not found" in res.output and "Traceback" not in res.output
