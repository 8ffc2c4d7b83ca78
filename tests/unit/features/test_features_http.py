"""HTTP window features: exact values on a hand-written access log, the scaler, the dense
autoencoders reading them (``features="http"``) and the CLI path parse -> group -> train."""

from __future__ import annotations

import json
import logging
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from logsieve.cli.app import app
from logsieve.errors import LogsieveError
from logsieve.features.http import (
    HTTP,
    HTTP_FEATURES,
    MIN_STD,
    HttpScaler,
    attach_http,
    http_matrix,
    is_http,
)
from logsieve.grouping.fields import client_sessions
from logsieve.parsing.parser import LogParser

T0 = datetime(2017, 11, 29, 6, 0, 0, tzinfo=UTC)
F = {name: i for i, name in enumerate(HTTP_FEATURES)}


def events_table(rows: list[tuple[str, int, str, str]]) -> pl.DataFrame:
    """(ip, seconds after T0, request line, status) -> a weblog-like events table."""
    return pl.DataFrame(
        {
            "line_id": list(range(1, len(rows) + 1)),
            "timestamp": [T0 + timedelta(seconds=s) for _, s, _, _ in rows],
            "IP": [ip for ip, _, _, _ in rows],
            "Status": [st for _, _, _, st in rows],
            "content": [req for _, _, req, _ in rows],
            "event_id": [f"E{len(req)}" for _, _, req, _ in rows],
        },
        schema_overrides={"timestamp": pl.Datetime("us", "UTC")},
    )


def one_window(line_ids: list[int]) -> pl.DataFrame:
    return pl.DataFrame(
        {"window_id": ["w0"], "event_ids": [["E1"] * len(line_ids)], "line_ids": [line_ids]},
        schema={
            "window_id": pl.String,
            "event_ids": pl.List(pl.String),
            "line_ids": pl.List(pl.Int64),
        },
    )


def test_exact_features_of_a_hand_written_window() -> None:
    ev = events_table([
        ("10.0.0.1", 0, "GET /robots.txt HTTP/1.1", "404"),
        ("10.0.0.1", 0, "GET /robots.txt HTTP/1.1", "404"),
        ("10.0.0.1", 2, "POST /process.php HTTP/1.1", "302"),
        ("10.0.0.1", 6, "GET /js/a.min.js?v=2 HTTP/1.1", "200"),
    ])  # fmt: skip
    assert is_http(ev)
    w = attach_http(one_window([4, 1, 2, 3]), ev)  # line order does not matter for the gaps
    x = dict(zip(HTTP_FEATURES, http_matrix(w)[0].tolist(), strict=True))
    expected = {
        "log_requests": math.log(5), "log_distinct_urls": math.log(4), "distinct_url_share": 0.75,
        "share_2xx": 0.25, "share_3xx": 0.25, "share_4xx": 0.5, "share_5xx": 0.0,
        "log_4xx": math.log(3), "log_5xx": 0.0,
        "share_get": 0.75, "share_post": 0.25, "share_head": 0.0, "share_other_method": 0.0,
        "depth_mean": 1.25, "depth_max": 2.0,
        "share_static": 0.75,  # robots.txt twice and the .js file
        "share_query": 0.25, "share_crawler": 0.5, "log_crawler": math.log(3),
        "log_rate": math.log(1 + 4 / 6),
        "log_gap_mean": math.log(3), "log_gap_median": math.log(3), "log_gap_max": math.log(5),
        "share_same_second": 1 / 3,
    }  # fmt: skip
    for name, value in expected.items():
        assert x[name] == pytest.approx(value), name
    # the weblog format has no response size: undefined, not zero
    assert all(math.isnan(x[n]) for n in ("log_size_mean", "log_size_max", "share_size_zero"))


def test_one_request_window_has_no_pace_and_unknown_lines_are_an_error() -> None:
    ev = events_table([("10.0.0.1", 0, "HEAD / HTTP/1.1", "500")])
    x = http_matrix(attach_http(one_window([1]), ev))[0]
    assert x[F["share_head"]] == 1.0 and x[F["share_5xx"]] == 1.0 and x[F["depth_max"]] == 0.0
    assert all(math.isnan(x[F[n]]) for n in ("log_rate", "log_gap_mean", "share_same_second"))
    with pytest.raises(LogsieveError, match="not in the events table"):
        attach_http(one_window([1, 99]), ev)
    with pytest.raises(LogsieveError, match="status field"):
        attach_http(one_window([1]), ev.drop("Status"))
    assert not is_http(ev.drop("Status"))
    with pytest.raises(LogsieveError, match="no HTTP features"):
        http_matrix(one_window([1]))


CLF = """\
1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET /index.html HTTP/1.0" 200 1000
1.2.3.4 - - [10/Oct/2000:13:55:37 -0700] "GET /img/a.png HTTP/1.0" 304 -
1.2.3.4 - - [10/Oct/2000:13:55:39 -0700] "GET /sitemap.xml HTTP/1.0" 404 99
"""


def test_clf_sizes_are_read(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text(CLF, encoding="utf-8")
    events, _ = LogParser("clf").parse_files(log)
    assert is_http(events)
    x = http_matrix(attach_http(one_window([1, 2, 3]), events))[0]
    assert x[F["log_size_mean"]] == pytest.approx(math.log(1 + 1099 / 3))
    assert x[F["log_size_max"]] == pytest.approx(math.log(1001))
    assert x[F["share_size_zero"]] == pytest.approx(1 / 3)  # "-" is 0 bytes
    assert x[F["share_crawler"]] == pytest.approx(1 / 3)
    assert x[F["share_static"]] == pytest.approx(1 / 3)  # a.png; .html and .xml are pages


def test_scaler_standardises_and_maps_undefined_to_zero() -> None:
    w = pl.DataFrame({HTTP: [[1.0, 5.0, float("nan")], [3.0, 5.0, 2.0]]})
    w = w.with_columns(pl.col(HTTP).list.concat([0.0] * (len(HTTP_FEATURES) - 3)))
    s = HttpScaler().fit(w)
    z = s.transform(w)
    assert z.dtype == np.float32 and z.shape == (2, len(HTTP_FEATURES))
    np.testing.assert_allclose(z[:, 0], [-1.0, 1.0])  # mean 2, std 1
    np.testing.assert_allclose(z[:, 1], [0.0, 0.0])  # constant
    np.testing.assert_allclose(z[:, 2], [0.0, 0.0])  # NaN -> the mean
    new = pl.DataFrame({HTTP: [[2.0, 5.5, float("nan")] + [0.0] * (len(HTTP_FEATURES) - 3)]})
    # a column constant in training: std floored at MIN_STD, so 0.5 off is 10 stds
    assert s.transform(new)[0, 1] == pytest.approx(0.5 / MIN_STD)
    back = HttpScaler.from_arrays(s.to_arrays())
    np.testing.assert_array_equal(back.transform(w), z)


# ----------------------------------------------------------------------------- a small site
def site_log() -> list[str]:
    """60 visits (login, then pages seconds apart) and one crawler: 8 robots.txt 404s in 2 s."""
    pages = ["/home.php", "/contest.php", "/archive.php?page=2", "/js/vendor/moment.min.js",
             "/css/bootstrap.min.css", "/profile.php?user=a", "/img/ruet.png"]  # fmt: skip
    lines = []

    def add(ip: str, t: datetime, req: str, status: int) -> None:
        lines.append(f"{ip},[{t:%d/%b/%Y:%H:%M:%S},{req} HTTP/1.1,{status}")

    for s in range(60):
        ip, t = f"10.0.{s % 6}.1", T0 + timedelta(hours=s)
        add(ip, t, "GET /login.php", 200)
        add(ip, t + timedelta(seconds=7), "POST /process.php", 302)
        for k in range(6):
            t += timedelta(seconds=5 + 7 * ((s + k) % 5))
            add(ip, t, f"GET {pages[(s + 2 * k) % len(pages)]}", 304 if (s + k) % 4 == 0 else 200)
        if s == 30:  # the crawler, between two visits
            for k in range(8):
                add("10.9.9.9", t + timedelta(minutes=5, seconds=k // 3), "GET /robots.txt", 404)
    return lines


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("site") / "weblog.csv"
    path.write_text("\n".join(site_log()) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("model", ["ae", "iforest_ae", "farzad"])
def test_dense_models_put_the_crawler_burst_first(site: Path, model: str, tmp_path: Path) -> None:
    from logsieve.detectors.registry import create_detector, load_detector

    events, _ = LogParser("weblog").parse_files(site)
    windows = attach_http(client_sessions(events, "IP", "30m"), events)
    burst = windows.get_column("window_id").to_list().index("10.9.9.9#1")
    params = {"hidden_size": 16, "latent_dim": 4, "epochs": 60, "batch_size": 16, "lr": 1e-2,
              "patience": 1000, "valid_fraction": 0.0, "threshold": 0.5}  # fmt: skip
    det = create_detector(model, features="http", **params)
    det.fit(windows.filter(pl.col("window_id") != "10.9.9.9#1"))  # trained on the visits
    scores = det.decision_function(windows)
    assert int(np.argmax(scores)) == burst
    top = det.explain(windows[burst : burst + 1], top=3)[0]["features"]
    assert {f["feature"] for f in top} & {"http:log_crawler", "http:log_4xx", "http:share_4xx",
                                          "http:share_crawler", "http:share_same_second"}  # fmt: skip
    det.save(tmp_path / "m")
    np.testing.assert_array_equal(load_detector(tmp_path / "m").decision_function(windows), scores)


def test_same_requests_other_statuses_score_differently(site: Path) -> None:
    from logsieve.detectors.registry import create_detector

    events, _ = LogParser("weblog").parse_files(site)
    windows = attach_http(client_sessions(events, "IP", "30m"), events)
    det = create_detector("ae", features="events+http", epochs=5, valid_fraction=0.0, threshold=1.0)
    det.fit(windows, np.zeros(windows.height, dtype=np.int8))
    burst = windows.filter(pl.col("window_id") == "10.9.9.9#1")
    # the same request lines, answered 200 and slowly: same event ids, other HTTP vector
    calm = events.with_columns(pl.lit("200").alias("Status"))
    calm = calm.with_columns(pl.col("timestamp") + pl.duration(seconds=pl.col("line_id") * 60))
    calm_burst = attach_http(burst.drop(HTTP), calm)
    both = pl.concat([burst, calm_burst])
    s = det.decision_function(both)
    assert s[0] > s[1]


# ----------------------------------------------------------------------------- the CLI path
@pytest.fixture
def keep_log_level():
    """``-q`` lowers the logsieve logger's level for the process: restore it afterwards."""
    logger = logging.getLogger("logsieve")
    level = logger.level
    yield
    logger.setLevel(level)


@pytest.mark.usefixtures("keep_log_level")
def test_cli_parse_group_train_detect_with_http_features(site: Path, tmp_path: Path) -> None:
    runner = CliRunner()

    def invoke(*args: str | Path):
        return runner.invoke(app, [str(a) for a in args])

    ev, win, model, scores = (tmp_path / n for n in ("ev.parquet", "w.parquet", "m", "s.parquet"))
    assert invoke("parse", site, "--format", "weblog", "-o", ev, "-q").exit_code == 0
    res = invoke("group", ev, "--session-field", "IP", "-o", win, "-q")
    assert res.exit_code == 0, res.output
    assert pl.read_parquet(win).schema[HTTP] == pl.List(pl.Float64)
    res = invoke("train", win, "--model", "ae", "--set", "features=http", "--set", "epochs=30",
                 "-o", model, "--json")  # fmt: skip
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout.strip().splitlines()[-1])["params"]["features"] == "http"
    res = invoke("detect", site, "-m", model, "-o", scores, "-q")  # from the raw log
    assert res.exit_code == 0, res.output
    top = pl.read_parquet(scores).sort("score", descending=True)
    assert top["window_id"][0] == "10.9.9.9#1"
    # the online watcher does not build HTTP features: it says so at once, exit 2
    res = invoke("watch", site, "-m", model, "--state-dir", tmp_path / "st")
    assert res.exit_code == 2 and "logsieve detect" in res.output
    # windows without the HTTP column (grouped elsewhere): one line, exit 2; --events fixes it
    bare = tmp_path / "bare.parquet"
    pl.read_parquet(win).drop(HTTP).write_parquet(bare)
    res = invoke("train", bare, "--model", "ae", "--set", "features=http", "-o", tmp_path / "m2")
    assert res.exit_code == 2 and "--events" in res.output and "Traceback" not in res.output
    res = invoke("train", bare, "--model", "ae", "--set", "features=http", "--set", "epochs=2",
                 "--events", ev, "-o", tmp_path / "m3", "-q")  # fmt: skip
    assert res.exit_code == 0, res.output
