"""`logsieve datasets list` and `logsieve datasets fetch`: their rendering functions
against a local HTTP server on 127.0.0.1 (no other traffic).

The list_command/fetch_command tests moved here from tests/unit/datasets/test_datasets.py
(they test CLI functions); the server is a smaller copy of the one there."""

from __future__ import annotations

import hashlib
import io
import json
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

import pytest
from rich.console import Console

from logsieve.cli.datasets import fetch_command, list_command
from logsieve.datasets import DatasetInfo, fetch

network = pytest.mark.network

LOG = b"081109 203518 143 INFO dfs.DataNode$DataXceiver: Receiving block blk_1\n" * 2000
LABELS = b"BlockId,Label\nblk_1,Normal\nblk_2,Anomaly\n"


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    """Keep every request on loopback even where a proxy is configured."""
    for var in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.delenv("LOGSIEVE_DATASETS_URL", raising=False)


class FileServer:
    """Serves ``files`` under ``/files/<name>`` (whole files only)."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        files = self.files

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server API
                data = files.get(unquote(urlsplit(self.path).path).removeprefix("/files/"))
                if data is None:
                    self.send_error(404, "Not Found")
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/files"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )


@pytest.fixture
def server() -> Iterator[FileServer]:
    srv = FileServer()
    srv.thread.start()
    try:
        yield srv
    finally:
        srv.httpd.shutdown()
        srv.httpd.server_close()
        srv.thread.join(timeout=5)


@pytest.fixture
def tiny(server: FileServer) -> tuple[DatasetInfo, bytes]:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, data in {"HDFS.log": LOG, "preprocessed/anomaly_label.csv": LABELS}.items():
            zf.writestr(zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0)), data)
    data = buf.getvalue()
    server.files["tiny.zip"] = data
    info = DatasetInfo(
        "tiny",
        "tiny.zip",
        len(data),
        "hdfs",
        ("HDFS.log",),
        label_kind="file",
        label_file="preprocessed/anomaly_label.csv",
        md5=hashlib.md5(data).hexdigest(),
        sha256=hashlib.sha256(data).hexdigest(),
        system="Tiny",
        description="test archive",
    )
    return info, data


@network
def test_list_command_shows_cached_state(tmp_path, server, tiny):
    info, _ = tiny
    out = io.StringIO()
    console = Console(file=out, width=200)
    rows = list_command(json=True, home=tmp_path, registry=[info], console=console)
    assert [(r["name"], r["status"], r["cached"]) for r in rows] == [("tiny", "missing", False)]
    assert json.loads(out.getvalue())[0]["file"] == "tiny.zip"

    fetch(info, home=tmp_path, base_url=server.url)
    rows = list_command(json=False, home=tmp_path, registry=[info], console=console)
    assert (rows[0]["status"], rows[0]["cached"]) == ("ready", True)
    assert rows[0]["size"] == info.size and rows[0]["format"] == "hdfs"
    assert "tiny.zip" in out.getvalue() and "ready" in out.getvalue()


def test_list_command_builtin_table(tmp_path):
    out = io.StringIO()
    rows = list_command(home=tmp_path, console=Console(file=out, width=200))
    assert len(rows) == 19 and {r["status"] for r in rows} == {"missing"}
    assert "HDFS_v1.zip" in out.getvalue() and "Thunderbird.tar.gz" in out.getvalue()


@network
def test_fetch_command_with_progress_and_quiet(tmp_path, server, tiny, capsys):
    info, data = tiny
    err = io.StringIO()
    folder = fetch_command(
        "tiny",
        tmp_path,
        quiet=False,
        base_url=server.url,
        registry=[info],
        console=Console(file=err, width=120),
    )
    assert (folder / "HDFS.log").read_bytes() == LOG
    assert "tiny: ready" in err.getvalue()
    assert capsys.readouterr().out.strip() == str(folder)

    quiet_home = tmp_path / "q"
    folder = fetch_command("tiny", quiet_home, quiet=True, base_url=server.url, registry=[info])
    assert (folder / "tiny.zip").read_bytes() == data
    assert capsys.readouterr().out == ""


def test_datasets_commands_on_the_command_line(tmp_path) -> None:
    from typer.testing import CliRunner

    from logsieve.cli.app import app

    runner = CliRunner()
    res = runner.invoke(app, ["datasets", "list", "--home", str(tmp_path), "--json"])
    assert res.exit_code == 0, res.output
    assert "hdfs" in {row["name"] for row in json.loads(res.output)}
    res = runner.invoke(app, ["datasets", "fetch", "nosuchdataset", "--home", str(tmp_path)])
    assert res.exit_code == 2 and "nosuchdataset" in res.output
