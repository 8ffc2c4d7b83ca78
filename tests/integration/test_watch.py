"""`logsieve watch` end to end: batch equivalence, SIGKILL + rotation exactly once, truncation,
stdin, model reload, bad lines, webhook on loopback."""

from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from logsieve.cli.app import app
from logsieve.pipeline.jobs import detect_job
from logsieve.streaming.watcher import WatchConfig, Watcher
from logsieve.synth import generate

runner = CliRunner()
SRC = Path(__file__).resolve().parents[2] / "src"


def ok(*args: object) -> str:
    res = runner.invoke(app, [str(a) for a in args])
    assert res.exit_code == 0, res.output
    return res.output


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("watch")
    gen = generate(d / "train.log", lines=12_000, seed=3)
    ok("parse", d / "train.log", "--format", "hdfs", "-o", d / "ev.parquet", "-q")
    ok("group", d / "ev.parquet", "--labels", gen.labels_path, "-o", d / "win.parquet", "-q")
    ok("train", d / "win.parquet", "--model", "deeplog", "--normal-only", "--seed", "0",
       "--set", "epochs=2", "-o", d / "model", "-q")  # fmt: skip
    generate(d / "test.log", lines=30_000, seed=4)
    return {"dir": d, "model": d / "model", "test": d / "test.log"}


def _alerts(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def _batch_flagged(inputs: list[Path], model: Path, out: Path) -> pl.DataFrame:
    detect_job(inputs, model, out)
    return pl.read_parquet(out)


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}


def test_no_follow_equals_detect(model: dict[str, Path], tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_bytes(model["test"].read_bytes()[: 2_000_000])
    status = Watcher(WatchConfig([str(log)], model["model"], tmp_path / "st",
                                 alerts=tmp_path / "a.jsonl", follow=False)).run()  # fmt: skip
    scores = _batch_flagged([log], model["model"], tmp_path / "s.parquet")
    alerts = _alerts(tmp_path / "a.jsonl")
    flagged = scores.filter(pl.col("is_anomaly"))
    assert flagged.height > 0
    assert sorted(a["window_id"] for a in alerts) == sorted(flagged["window_id"])
    assert status["windows"]["closed"] == scores.height  # the same windows, all closed
    by_id = dict(zip(scores["window_id"], scores["score"], strict=True))
    for a in alerts:  # window-end alerts carry the final score; line alerts a lower bound
        if a["trigger"]["kind"] == "window_end":
            assert a["score"] == pytest.approx(by_id[a["window_id"]])
        else:
            assert a["score"] <= by_id[a["window_id"]]
            assert any(x["line_no"] == a["trigger"]["line_no"] for x in a["lines"])
    final = json.loads((tmp_path / "st" / "status.json").read_text())
    assert final["lines_processed"] == len(log.read_text().splitlines())  # last one unfinished


def test_line_alert_shows_its_trigger_line_when_the_batch_goes_on(model: dict[str, Path],
                                                                   tmp_path: Path) -> None:
    """A window keeps only its last lines; one batch may bring many after the trigger. The
    trigger is still the line its line id names, shown with its own text."""
    log = tmp_path / "a.log"
    log.write_bytes(model["test"].read_bytes()[: 2_000_000])
    Watcher(WatchConfig([str(log)], model["model"], tmp_path / "st", alerts=tmp_path / "a.jsonl",
                        follow=False, keep_lines=1)).run()  # fmt: skip
    lines = log.read_text().splitlines()
    alerts = [a for a in _alerts(tmp_path / "a.jsonl") if a["trigger"]["kind"] == "line"]
    assert alerts
    for a in alerts:
        t = a["trigger"]
        assert t["line_no"] == t["line_id"]  # one input, read from its start
        assert a["lines"] == [{"source": str(log), "line_no": t["line_no"],
                               "text": lines[t["line_no"] - 1]}]  # fmt: skip


def _wait_status(state: Path, lines: int, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + 180  # a guard against hanging, not a speed check
    while time.monotonic() < deadline:
        try:
            if json.loads((state / "status.json").read_text())["lines_processed"] >= lines:
                return
        except (OSError, ValueError, KeyError):
            pass
        if proc is not None and proc.poll() is not None:
            raise AssertionError(proc.stderr.read() if proc.stderr else "watcher died")
        time.sleep(0.05)
    raise AssertionError(f"watcher did not reach {lines} lines")


def test_sigkill_and_rotation_exactly_once(model: dict[str, Path], tmp_path: Path) -> None:
    """The crash-and-rotation scenario of benchmarks/watch_crash.py, on 30k lines."""
    lines = model["test"].read_text().splitlines(keepends=True)
    total, kill_at, rotate_at = len(lines), 12_000, 18_000
    log, state, alerts = tmp_path / "live.log", tmp_path / "st", tmp_path / "alerts.jsonl"
    cmd = [sys.executable, "-m", "logsieve", "watch", str(log), "-m", str(model["model"]),
           "--state-dir", str(state), "--alerts", str(alerts), "--checkpoint-lines", "1500",
           "--checkpoint-seconds", "0.3", "-q"]  # fmt: skip
    log.write_text("")
    proc = subprocess.Popen(cmd, env=_env(), stderr=subprocess.PIPE, text=True)
    written = 0
    try:
        for end in range(1000, total + 1, 1000):
            if written == rotate_at:
                os.replace(log, tmp_path / "live.log.1")  # rotation by rename
                log.write_text("")
            with open(log, "a") as fh:
                fh.writelines(lines[written:end])
            written = end
            if written == kill_at:
                _wait_status(state, 9_000, proc)
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                proc = subprocess.Popen(cmd, env=_env(), stderr=subprocess.PIPE, text=True)
            time.sleep(0.01)
        _wait_status(state, total, proc)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    subprocess.run([*cmd, "--no-follow"], env=_env(), check=True, timeout=300)
    status = json.loads((state / "status.json").read_text())
    assert status["lines_processed"] == total
    assert status["sources"][0]["rotations"] == 1
    got = _alerts(alerts)
    ids = [a["window_id"] for a in got]
    assert len(ids) == len(set(ids))  # no window alerted twice
    assert len({a["alert_id"] for a in got}) == len(got)
    scores = _batch_flagged([tmp_path / "live.log.1", log], model["model"], tmp_path / "s.parquet")
    assert sorted(ids) == sorted(scores.filter(pl.col("is_anomaly"))["window_id"])


def _follow_in_thread(cfg: WatchConfig) -> tuple[Watcher, threading.Thread]:
    w = Watcher(cfg)
    t = threading.Thread(target=w.run, daemon=True)
    t.start()
    return w, t


def _wait_lines(w: Watcher, n: int) -> None:
    deadline = time.monotonic() + 120
    while w.lines < n and time.monotonic() < deadline:
        time.sleep(0.02)
    assert w.lines >= n


def test_copy_truncate_is_read_from_the_start(model: dict[str, Path], tmp_path: Path) -> None:
    lines = model["test"].read_text().splitlines(keepends=True)[:3000]
    log = tmp_path / "t.log"
    log.write_text("".join(lines[:2000]))
    w, t = _follow_in_thread(WatchConfig([str(log)], model["model"], tmp_path / "st"))
    try:
        _wait_lines(w, 2000)
        with open(log, "r+") as fh:  # copy-truncate: the file restarts empty
            fh.truncate(0)
        _wait_for(lambda: w.sources[0].state.truncations == 1)
        with open(log, "a") as fh:
            fh.writelines(lines[2000:])
        _wait_lines(w, 3000)
    finally:
        w.stop = True
        t.join(timeout=60)
    status = json.loads((tmp_path / "st" / "status.json").read_text())
    assert status["lines_processed"] == 3000
    assert status["sources"][0]["truncations"] == 1


def _wait_for(cond) -> None:
    deadline = time.monotonic() + 60
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert cond()


def test_stdin_gives_the_same_alerts(model: dict[str, Path], tmp_path: Path) -> None:
    data = model["test"].read_bytes()[:1_000_000]
    (tmp_path / "f.log").write_bytes(data)
    base = [sys.executable, "-m", "logsieve", "watch", "-m", str(model["model"]), "--no-follow",
            "-q"]  # fmt: skip
    subprocess.run([*base, "-", "--state-dir", str(tmp_path / "s1"), "--alerts",
                    str(tmp_path / "a1.jsonl")], input=data, env=_env(), check=True,
                   timeout=300)  # fmt: skip
    subprocess.run([*base, str(tmp_path / "f.log"), "--state-dir", str(tmp_path / "s2"),
                    "--alerts", str(tmp_path / "a2.jsonl")], env=_env(), check=True,
                   timeout=300)  # fmt: skip
    a1, a2 = _alerts(tmp_path / "a1.jsonl"), _alerts(tmp_path / "a2.jsonl")
    assert a1 and [a["window_id"] for a in a1] == [a["window_id"] for a in a2]
    assert a1[0]["lines"][0]["source"] == "<stdin>"


def test_model_reload_after_feedback(model: dict[str, Path], tmp_path: Path) -> None:
    import shutil

    mdir = tmp_path / "model"
    shutil.copytree(model["model"], mdir)
    lines = model["test"].read_text().splitlines(keepends=True)[:20_000]
    log = tmp_path / "r.log"
    log.write_text("".join(lines[:10_000]))
    w, t = _follow_in_thread(WatchConfig([str(log)], mdir, tmp_path / "st",
                                         alerts=tmp_path / "a.jsonl"))  # fmt: skip
    try:
        _wait_lines(w, 10_000)
        open_before = len(w.grouper.open)
        # feedback: a new model version swapped into the directory
        from logsieve.pipeline import Pipeline

        Pipeline.load(mdir).save(mdir)
        desc = json.loads((mdir / "pipeline.json").read_text())
        desc["model_version"] = 2
        (mdir / "pipeline.json").write_text(json.dumps(desc))
        _wait_for(lambda: w.version == 2)
        assert len(w.grouper.open) >= open_before * 0.5  # open windows kept
        with open(log, "a") as fh:
            fh.writelines(lines[10_000:])
        _wait_lines(w, 20_000)
        time.sleep(0.3)
    finally:
        w.stop = True
        t.join(timeout=60)
    got = _alerts(tmp_path / "a.jsonl")
    assert {a["model_version"] for a in got} == {1, 2}
    assert w.lines == 20_000


def test_bad_lines_are_counted_never_fatal(model: dict[str, Path], tmp_path: Path) -> None:
    good = model["test"].read_bytes()[:200_000]
    bad = b"garbage without format\n\xff\xfe broken utf8 blk_1\n\n" + b"x" * 50 + b"\n"
    (tmp_path / "b.log").write_bytes(bad + good + bad)
    out = ok("watch", tmp_path / "b.log", "-m", model["model"], "--state-dir", tmp_path / "st",
             "--no-follow", "--json")  # fmt: skip
    status = json.loads(out.strip().splitlines()[-1])
    assert status["malformed_lines"] >= 4
    assert status["invalid_utf8_lines"] == 2
    assert status["lines_processed"] == (bad + good + bad).count(b"\n")


def test_missing_input_is_one_line_exit_2(model: dict[str, Path], tmp_path: Path) -> None:
    res = runner.invoke(app, ["watch", str(tmp_path / "nope.gz"), "-m", str(model["model"]),
                              "--state-dir", str(tmp_path / "st"), "--no-follow"])  # fmt: skip
    assert res.exit_code == 2
    assert "nope.gz" in res.output and "Traceback" not in res.output


def test_webhook_on_loopback(model: dict[str, Path], tmp_path: Path) -> None:
    got: list[dict] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *a: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    th = threading.Thread(target=server.serve_forever, daemon=True)
    th.start()
    try:
        log = tmp_path / "w.log"
        log.write_bytes(model["test"].read_bytes()[:1_000_000])
        url = f"http://127.0.0.1:{server.server_address[1]}/alert"
        Watcher(WatchConfig([str(log)], model["model"], tmp_path / "st", follow=False,
                            alerts=tmp_path / "a.jsonl", webhook=url)).run()  # fmt: skip
    finally:
        server.shutdown()
        server.server_close()
    alerts = _alerts(tmp_path / "a.jsonl")
    assert alerts and [g["alert_id"] for g in got] == [a["alert_id"] for a in alerts]


def test_no_follow_equals_detect_after_feedback(
    model: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both feedback scopes (a window marked normal, a pattern taught) reach watch's alerts:
    after each, `watch --no-follow` alerts exactly the windows `detect` flags. No
    fine-tuning rounds: the marks and the taught pairs alone clear the windows."""
    import shutil

    from logsieve.detectors import feedback
    from logsieve.pipeline import Pipeline
    from logsieve.pipeline.feedback import apply_feedback

    mdir = tmp_path / "model"
    shutil.copytree(model["model"], mdir)
    log = tmp_path / "a.log"
    log.write_bytes(model["test"].read_bytes()[: 2_000_000])
    windows, _ = Pipeline.load(mdir).windows_from_log([log], mine=True)
    flagged = _batch_flagged([log], mdir, tmp_path / "s0.parquet").filter(pl.col("is_anomaly"))
    monkeypatch.setattr(feedback, "MAX_ROUNDS", 0)
    counts = [flagged.height]
    for n, scope in enumerate(("window", "pattern"), start=1):
        wid = flagged["window_id"][0]
        report = apply_feedback(mdir, windows.filter(pl.col("window_id") == wid), "normal",
                                scope=scope)  # fmt: skip
        assert report["flagged_before"] == 1 and report["flagged_after"] == 0
        scores = _batch_flagged([log], mdir, tmp_path / f"s{n}.parquet")
        flagged = scores.filter(pl.col("is_anomaly"))
        assert wid not in flagged["window_id"].to_list()
        counts.append(flagged.height)
        Watcher(WatchConfig([str(log)], mdir, tmp_path / f"st{n}", alerts=tmp_path / f"a{n}.jsonl",
                            follow=False)).run()  # fmt: skip
        alerts = _alerts(tmp_path / f"a{n}.jsonl")
        assert sorted(a["window_id"] for a in alerts) == sorted(flagged["window_id"])
        by_id = dict(zip(scores["window_id"], scores["score"], strict=True))
        for a in alerts:
            assert any(x["line_no"] == a["trigger"]["line_no"] for x in a["lines"])
            if a["trigger"]["kind"] == "window_end":
                assert a["score"] == pytest.approx(by_id[a["window_id"]])
    assert Pipeline.load(mdir).detector.taught_pairs_  # the pattern step taught pairs
    # the marked window's repeats, then the windows with a taught pair, are cleared
    assert counts[0] > counts[1] > counts[2] > 0, counts


def test_line_alert_held_while_a_window_may_be_a_marked_one(
    model: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A window marked normal: an exact copy of it is never alerted; a copy that goes on
    past it is alerted when it leaves it, at the line that broke the pattern."""
    import shutil

    from logsieve.detectors import feedback
    from logsieve.pipeline import Pipeline
    from logsieve.pipeline.feedback import apply_feedback

    mdir = tmp_path / "model"
    shutil.copytree(model["model"], mdir)
    log = tmp_path / "a.log"
    data = model["test"].read_bytes()[: 2_000_000]
    log.write_bytes(data[: data.rindex(b"\n") + 1])  # whole lines
    windows, _ = Pipeline.load(mdir).windows_from_log([log], mine=True)
    flagged = _batch_flagged([log], mdir, tmp_path / "s0.parquet").filter(pl.col("is_anomaly"))
    monkeypatch.setattr(feedback, "MAX_ROUNDS", 0)
    wid = flagged["window_id"][0]
    marked = windows.filter(pl.col("window_id") == wid)
    apply_feedback(mdir, marked, "normal")
    lines = log.read_text().splitlines(keepends=True)
    own = [lines[i - 1] for i in marked["line_ids"][0]]
    other = next(x for x in lines if wid not in x and "blk_" in x)
    extra = other.replace(other[other.index("blk_"):].split()[0], "blk_777002")
    with open(log, "a") as fh:
        fh.writelines([x.replace(wid, "blk_777001") for x in own])  # the marked one again
        fh.writelines([x.replace(wid, "blk_777002") for x in own] + [extra])  # and one more
    scores = _batch_flagged([log], mdir, tmp_path / "s1.parquet")
    got = set(scores.filter(pl.col("is_anomaly"))["window_id"])
    assert "blk_777001" not in got and "blk_777002" in got
    Watcher(WatchConfig([str(log)], mdir, tmp_path / "st", alerts=tmp_path / "a.jsonl",
                        follow=False, batch_bytes=2048)).run()  # the copies over batches
    alerts = _alerts(tmp_path / "a.jsonl")
    assert {a["window_id"] for a in alerts} == got
    (a,) = [a for a in alerts if a["window_id"] == "blk_777002"]
    start = len(lines) + len(own) + 1  # the copy's first line
    assert a["trigger"]["kind"] == "line"
    assert start <= a["trigger"]["line_no"] < start + len(own)  # not the line it left at
    assert any(x["line_no"] == a["trigger"]["line_no"] for x in a["lines"])


def test_reload_walks_held_windows_through_the_new_marks(
    model: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A window held as a marked-normal one is alerted at its trigger line as soon as a
    reloaded model no longer has the mark (here: a rollback)."""
    import shutil

    from logsieve.detectors import feedback
    from logsieve.pipeline import Pipeline
    from logsieve.pipeline.feedback import apply_feedback, rollback

    mdir = tmp_path / "model"
    shutil.copytree(model["model"], mdir)
    src = tmp_path / "src.log"
    data = model["test"].read_bytes()[:1_000_000]
    src.write_bytes(data[: data.rindex(b"\n") + 1])
    windows, _ = Pipeline.load(mdir).windows_from_log([src], mine=True)
    flagged = _batch_flagged([src], mdir, tmp_path / "s0.parquet").filter(pl.col("is_anomaly"))
    wid = flagged["window_id"][0]
    marked = windows.filter(pl.col("window_id") == wid)
    monkeypatch.setattr(feedback, "MAX_ROUNDS", 0)
    apply_feedback(mdir, marked, "normal")
    lines = src.read_text().splitlines(keepends=True)
    log = tmp_path / "live.log"
    log.write_text("".join(lines[i - 1].replace(wid, "blk_777003") for i in marked["line_ids"][0]))
    w, t = _follow_in_thread(WatchConfig([str(log)], mdir, tmp_path / "st",
                                         alerts=tmp_path / "a.jsonl"))  # fmt: skip
    try:
        _wait_lines(w, marked["line_ids"][0].len())
        _wait_for(lambda: "blk_777003" in w.held)  # may still be the marked one (w.lines
        assert w.alerts_emitted == 0  # counts the batch before it is scored)
        rollback(mdir)  # the version without the mark
        _wait_for(lambda: w.alerts_emitted == 1)
        assert not w.held and w.known is None
    finally:
        w.stop = True
        t.join(timeout=60)
    (a,) = _alerts(tmp_path / "a.jsonl")
    assert a["window_id"] == "blk_777003" and a["trigger"]["kind"] == "line"
    assert a["model_version"] == 3
