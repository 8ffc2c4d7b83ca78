"""logsieve.datasets: the Loghub registry, download/resume/verify/extract against a local
HTTP server on 127.0.0.1 (no other traffic), and the CLI wrappers."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import random
import socket
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from logsieve.datasets import (
    DEFAULT_BASE_URL,
    LOGHUB,
    REGISTRY,
    DatasetInfo,
    cache_status,
    dataset_files,
    extract_dataset,
    fetch,
    get_dataset,
    list_datasets,
    logsieve_home,
)
from logsieve.errors import LogsieveError

network = pytest.mark.network


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    """Keep every request on loopback even where a proxy is configured."""
    for var in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.delenv("LOGSIEVE_DATASETS_URL", raising=False)


# --------------------------------------------------------------------------- local server


class FileServer:
    """Serves ``files`` under ``/files/<name>`` with Range support; records every request."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[dict] = []
        self.ignore_range = False
        self.truncate_at: int | None = None  # send only this many body bytes, then hang up
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server API
                path = unquote(urlsplit(self.path).path)
                rng = self.headers.get("Range")
                server.requests.append({"path": path, "range": rng})
                name = path.removeprefix("/files/")
                data = server.files.get(name)
                if data is None:
                    self.send_error(404, "Not Found")
                    return
                start, status = 0, 200
                if rng and not server.ignore_range:
                    start = int(rng.removeprefix("bytes=").split("-")[0])
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    status = 206
                body = data[start:]
                self.send_response(status)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.end_headers()
                if server.truncate_at is not None:
                    body = body[: server.truncate_at]
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/files"
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)

    def ranges(self) -> list[str | None]:
        return [r["range"] for r in self.requests]


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


def _zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0)), data)
    return buf.getvalue()


def _tar_bytes(members: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in members.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
        for name, target in (links or {}).items():
            ti = tarfile.TarInfo(name)
            ti.type = tarfile.SYMTYPE
            ti.linkname = target
            tf.addfile(ti)
    return buf.getvalue()


LOG = random.Random(0).randbytes(150_000)
LABELS = b"BlockId,Label\nblk_1,Normal\nblk_2,Anomaly\n"


def _info(data: bytes, file: str = "tiny.zip", **changes: object) -> DatasetInfo:
    info = DatasetInfo(
        "tiny", file, len(data), "hdfs", ("HDFS.log",),
        label_kind="file", label_file="preprocessed/anomaly_label.csv",
        md5=hashlib.md5(data).hexdigest(), sha256=hashlib.sha256(data).hexdigest(),
        system="Tiny", description="test archive",
    )
    return dataclasses.replace(info, **changes)


@pytest.fixture
def tiny(server: FileServer) -> tuple[DatasetInfo, bytes]:
    data = _zip_bytes({"HDFS.log": LOG, "preprocessed/anomaly_label.csv": LABELS})
    server.files["tiny.zip"] = data
    return _info(data), data


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- download


@network
def test_fetch_downloads_verifies_and_extracts(tmp_path, server, tiny):
    info, data = tiny
    calls: list[tuple[int, int | None]] = []
    folder = fetch(info, home=tmp_path, base_url=server.url,
                   progress=lambda d, t: calls.append((d, t)))

    assert folder == tmp_path / "datasets" / "tiny"
    assert (folder / "tiny.zip").read_bytes() == data
    assert not (folder / "tiny.zip.part").exists()
    sidecar = f"{hashlib.sha256(data).hexdigest()}  tiny.zip\n"
    assert (folder / "tiny.zip.sha256").read_text() == sidecar
    assert (folder / "HDFS.log").read_bytes() == LOG
    assert (folder / "preprocessed" / "anomaly_label.csv").read_bytes() == LABELS
    assert not list(folder.glob(".extract-*"))
    assert server.requests == [{"path": "/files/tiny.zip", "range": None}]
    assert calls[-1] == (len(data), len(data))
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    assert cache_status(info, tmp_path) == "ready"
    files = dataset_files(info, tmp_path)
    assert files.logs == (folder / "HDFS.log",)
    assert files.labels == folder / "preprocessed" / "anomaly_label.csv"


@network
def test_resume_sends_range_and_appends(tmp_path, server, tiny):
    info, data = tiny
    part = tmp_path / "datasets" / "tiny" / "tiny.zip.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(data[:40_000])
    assert cache_status(info, tmp_path) == "partial"
    calls: list[tuple[int, int | None]] = []

    fetch(info, home=tmp_path, base_url=server.url, progress=lambda d, t: calls.append((d, t)))

    assert server.ranges() == ["bytes=40000-"]
    assert (part.parent / "tiny.zip").read_bytes() == data
    assert calls[0] == (40_000, len(data)) and calls[-1] == (len(data), len(data))
    assert (part.parent / "HDFS.log").read_bytes() == LOG


@network
def test_server_ignoring_range_restarts_from_zero(tmp_path, server, tiny):
    info, data = tiny
    server.ignore_range = True
    part = tmp_path / "datasets" / "tiny" / "tiny.zip.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"\xff" * 30_000)  # wrong bytes: appending to them would corrupt the file

    fetch(info, home=tmp_path, base_url=server.url)

    assert server.ranges() == ["bytes=30000-"]
    assert (part.parent / "tiny.zip").read_bytes() == data
    assert not part.exists()


@network
def test_interrupted_download_keeps_part_and_resumes(tmp_path, server, tiny):
    info, data = tiny
    server.truncate_at = 25_000
    with pytest.raises(LogsieveError, match="stopped after 25,000 of .* again to resume"):
        fetch(info, home=tmp_path, base_url=server.url)
    folder = tmp_path / "datasets" / "tiny"
    assert (folder / "tiny.zip.part").stat().st_size == 25_000
    assert not (folder / "tiny.zip").exists()

    server.truncate_at = None
    fetch(info, home=tmp_path, base_url=server.url)
    assert server.ranges() == [None, "bytes=25000-"]
    assert (folder / "tiny.zip").read_bytes() == data


@network
def test_range_past_the_end_starts_over(tmp_path, server, tiny):
    info, data = tiny
    info = dataclasses.replace(info, size=None)  # size unknown: the server decides
    part = tmp_path / "datasets" / "tiny" / "tiny.zip.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"x" * (len(data) + 10))

    fetch(info, home=tmp_path, base_url=server.url)

    assert server.ranges() == [f"bytes={len(data) + 10}-", None]
    assert (part.parent / "tiny.zip").read_bytes() == data


@network
@pytest.mark.parametrize("field, algo", [("sha256", "SHA-256"), ("md5", "MD5")])
def test_checksum_mismatch_deletes_the_file(tmp_path, server, tiny, field, algo):
    info, _ = tiny
    bad = dataclasses.replace(info, **{field: "0" * (64 if field == "sha256" else 32)})
    with pytest.raises(LogsieveError, match=f"checksum mismatch for tiny.zip .*{algo} ") as exc:
        fetch(bad, home=tmp_path, base_url=server.url)
    assert "\n" not in str(exc.value)
    folder = tmp_path / "datasets" / "tiny"
    assert not (folder / "tiny.zip").exists()
    assert not (folder / "tiny.zip.part").exists()
    assert not (folder / "tiny.zip.sha256").exists()
    assert cache_status(bad, tmp_path) == "missing"


@network
def test_size_mismatch_is_reported(tmp_path, server, tiny):
    info, data = tiny
    server.files["tiny.zip"] = data + b"extra"
    with pytest.raises(LogsieveError, match="larger than the expected"):
        fetch(info, home=tmp_path, base_url=server.url)
    assert not (tmp_path / "datasets" / "tiny" / "tiny.zip.part").exists()


@network
def test_md5_only_dataset_records_the_computed_sha256(tmp_path, server, tiny):
    info, data = tiny
    info = dataclasses.replace(info, sha256=None)
    folder = fetch(info, home=tmp_path, base_url=server.url)
    expected = [hashlib.sha256(data).hexdigest(), "tiny.zip"]
    assert (folder / "tiny.zip.sha256").read_text().split() == expected


def test_offline_gives_one_clear_line(tmp_path, tiny):
    info, _ = tiny
    url = f"http://127.0.0.1:{_free_port()}/files"
    with pytest.raises(LogsieveError) as exc:
        fetch(info, home=tmp_path, base_url=url, timeout=5)
    message = str(exc.value)
    archive = tmp_path / "datasets" / "tiny" / "tiny.zip"
    assert message.startswith(f"cannot download tiny.zip from {url}/tiny.zip?download=1: ")
    assert "are you offline?" in message
    assert f"You can also place the file at {archive} by hand" in message
    assert "\n" not in message
    assert exc.value.__cause__ is None and exc.value.__suppress_context__


def test_base_url_must_be_http(tmp_path, tiny):
    info, _ = tiny
    with pytest.raises(LogsieveError, match="must start with http:// or https://"):
        fetch(info, home=tmp_path, base_url="ftp://127.0.0.1/files")


@network
def test_http_error_names_the_status(tmp_path, server, tiny):
    info, _ = tiny
    missing = dataclasses.replace(info, file="absent.zip")
    with pytest.raises(LogsieveError, match=r"cannot download absent.zip .*: HTTP 404 .*by hand"):
        fetch(missing, home=tmp_path, base_url=server.url)


@network
def test_second_fetch_does_nothing(tmp_path, server, tiny):
    info, _ = tiny
    folder = fetch(info, home=tmp_path, base_url=server.url)
    log = folder / "HDFS.log"
    stamp = log.stat().st_mtime_ns
    assert fetch(info, home=tmp_path, base_url=server.url) == folder
    assert fetch(info, home=tmp_path, base_url=server.url, verify=True) == folder
    assert len(server.requests) == 1
    assert log.stat().st_mtime_ns == stamp  # not unpacked again


@network
def test_deleted_member_is_unpacked_again_without_download(tmp_path, server, tiny):
    info, _ = tiny
    folder = fetch(info, home=tmp_path, base_url=server.url)
    (folder / "HDFS.log").unlink()
    assert cache_status(info, tmp_path) == "downloaded"
    fetch(info, home=tmp_path, base_url=server.url)
    assert (folder / "HDFS.log").read_bytes() == LOG
    assert len(server.requests) == 1


def test_archive_placed_by_hand_is_verified_without_network(tmp_path, tiny):
    info, data = tiny
    folder = tmp_path / "datasets" / "tiny"
    folder.mkdir(parents=True)
    (folder / "tiny.zip").write_bytes(data)
    assert cache_status(info, tmp_path) == "unverified"
    offline = f"http://127.0.0.1:{_free_port()}/files"
    fetch(info, home=tmp_path, base_url=offline)
    assert (folder / "tiny.zip.sha256").exists()
    assert (folder / "HDFS.log").read_bytes() == LOG

    (folder / "tiny.zip").write_bytes(data[:-1] + b"!")  # corrupt copy, no matching record
    (folder / "tiny.zip.sha256").unlink()
    with pytest.raises(LogsieveError, match="checksum mismatch"):
        fetch(info, home=tmp_path, base_url=offline)
    assert not (folder / "tiny.zip").exists()


@network
def test_base_url_from_environment(tmp_path, server, tiny, monkeypatch):
    info, data = tiny
    monkeypatch.setenv("LOGSIEVE_DATASETS_URL", server.url)
    monkeypatch.setenv("LOGSIEVE_HOME", str(tmp_path / "home"))
    assert logsieve_home() == tmp_path / "home"
    folder = fetch(info)
    assert folder == tmp_path / "home" / "datasets" / "tiny"
    assert (folder / "tiny.zip").read_bytes() == data


def test_default_home(monkeypatch):
    monkeypatch.delenv("LOGSIEVE_HOME", raising=False)
    assert logsieve_home() == Path.home() / ".cache" / "logsieve"


# --------------------------------------------------------------------------- extraction


@network
@pytest.mark.parametrize("member",
                         ["../evil.txt", "/tmp/evil.txt", "ok/../../evil.txt", "C:/evil.txt"])
def test_zip_member_escaping_the_folder_is_rejected(tmp_path, server, member):
    data = _zip_bytes({"HDFS.log": b"fine\n", member: b"owned\n"})
    server.files["tiny.zip"] = data
    info = _info(data)
    home = tmp_path / "home"
    with pytest.raises(LogsieveError, match="refusing unsafe archive member"):
        fetch(info, home=home, base_url=server.url)
    folder = home / "datasets" / "tiny"
    assert not list(tmp_path.rglob("evil.txt"))
    assert sorted(p.name for p in folder.iterdir()) == [".lock", "tiny.zip", "tiny.zip.sha256"]
    assert cache_status(info, home) == "downloaded"


@network
@pytest.mark.parametrize("kind", ["traversal", "symlink"])
def test_tar_member_escaping_the_folder_is_rejected(tmp_path, server, kind):
    if kind == "traversal":
        data = _tar_bytes({"Foo.log": b"fine\n", "../evil.txt": b"owned\n"})
    else:
        data = _tar_bytes({"Foo.log": b"fine\n"}, links={"link": "/etc/passwd"})
    server.files["tiny.tar.gz"] = data
    info = _info(data, file="tiny.tar.gz", log_files=("Foo.log",))
    home = tmp_path / "home"
    with pytest.raises(LogsieveError, match="refusing"):
        fetch(info, home=home, base_url=server.url)
    folder = home / "datasets" / "tiny"
    assert not list(tmp_path.rglob("evil.txt"))
    assert not (folder / "Foo.log").exists() and not (folder / "link").exists()


@network
def test_tar_gz_in_a_wrapping_folder(tmp_path, server):
    data = _tar_bytes({"Wrapped/Foo.log": b"a\nb\n", "Wrapped/labels.txt": b"x\n"})
    server.files["tiny.tar.gz"] = data
    info = _info(data, file="tiny.tar.gz", log_files=("Foo.log",), label_file="labels.txt")
    folder = fetch(info, home=tmp_path, base_url=server.url)
    files = dataset_files(info, tmp_path)
    assert files.logs == (folder / "Wrapped" / "Foo.log",)
    assert files.labels == folder / "Wrapped" / "labels.txt"
    assert json.loads((folder / ".extracted.json").read_text())["files"] == 2


@network
def test_fetch_without_extract_then_extract_dataset(tmp_path, server, tiny):
    info, _ = tiny
    folder = fetch(info, home=tmp_path, base_url=server.url, extract=False)
    assert not (folder / "HDFS.log").exists()
    assert cache_status(info, tmp_path) == "downloaded"
    extract_dataset(info, tmp_path)
    assert (folder / "HDFS.log").read_bytes() == LOG


def test_extract_before_download_is_an_error(tmp_path, tiny):
    info, _ = tiny
    with pytest.raises(LogsieveError, match="not downloaded and verified yet"):
        extract_dataset(info, tmp_path)


# --------------------------------------------------------------------------- registry


def test_unknown_name_lists_the_known_ones(tmp_path):
    with pytest.raises(LogsieveError,
                       match=r"unknown dataset 'nope'; known datasets: hdfs, hdfs_v2, .*bgl"):
        fetch("nope", home=tmp_path)
    assert not (tmp_path / "datasets").exists()


@pytest.mark.parametrize("spelling, name", [
    ("HDFS_v1", "hdfs"), ("hdfs", "hdfs"), ("BGL.zip", "bgl"), ("SSH.tar.gz", "openssh"),
    ("OpenSSH", "openssh"), ("Android_v1", "android"), ("HDFS_v3_TraceBench.zip", "hdfs_v3"),
    ("Thunderbird", "thunderbird"),
])
def test_loghub_spellings_resolve(spelling, name):
    assert get_dataset(spelling).name == name


def test_registry_covers_the_whole_zenodo_record():
    files = {info.file for info in LOGHUB}
    assert files == {
        "Android_v1.zip", "Android_v2.zip", "Apache.tar.gz", "BGL.zip", "HDFS_v1.zip",
        "HDFS_v2.zip", "HDFS_v3_TraceBench.zip", "HPC.zip", "Hadoop.zip", "HealthApp.tar.gz",
        "Linux.tar.gz", "Mac.tar.gz", "OpenStack.tar.gz", "Proxifier.tar.gz", "SSH.tar.gz",
        "Spark.tar.gz", "Thunderbird.tar.gz", "Windows.tar.gz", "Zookeeper.tar.gz",
    }
    assert len(REGISTRY) == len(LOGHUB) == 19
    assert list_datasets() == list(LOGHUB)
    for info in LOGHUB:
        assert info.size and info.md5, info.name  # every archive has Zenodo's size and MD5
        assert info.archive_kind in ("zip", "tar")
        assert info.lines and info.raw_bytes and info.system and info.description
        assert (info.label_kind == "file") == (info.label_file is not None)
    assert get_dataset("hdfs").url(DEFAULT_BASE_URL) == \
        "https://zenodo.org/records/8196385/files/HDFS_v1.zip?download=1"
    labelled = {i.name for i in LOGHUB if i.label_kind != "none"}
    assert labelled == {"hdfs", "hdfs_v3", "hadoop", "openstack", "bgl", "thunderbird"}


def test_registry_formats_exist_in_logsieve_formats():
    from logsieve.formats import get_format

    for info in LOGHUB:
        if info.format is not None:
            assert get_format(info.format).name == info.format


def test_dataset_info_rejects_unsafe_values():
    with pytest.raises(ValueError, match="plain file name"):
        DatasetInfo("x", "../x.zip", 1, None, ("a",))
    with pytest.raises(ValueError, match="lowercase"):
        DatasetInfo("X", "x.zip", 1, None, ("a",))
    with pytest.raises(ValueError, match="hex"):
        DatasetInfo("x", "x.zip", 1, None, ("a",), md5="xyz")


@network
def test_concurrent_fetch_of_the_same_dataset_is_refused(tmp_path, server, tiny):
    fcntl = pytest.importorskip("fcntl")
    info, _ = tiny
    folder = tmp_path / "datasets" / "tiny"
    folder.mkdir(parents=True)
    with open(folder / ".lock", "a+b") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(LogsieveError, match="another logsieve process is fetching tiny"):
            fetch(info, home=tmp_path, base_url=server.url)
        fcntl.flock(held.fileno(), fcntl.LOCK_UN)
    assert server.requests == []
    fetch(info, home=tmp_path, base_url=server.url)
    assert (folder / "HDFS.log").read_bytes() == LOG


@network
def test_unreadable_archive_without_checksum_is_a_clear_error(tmp_path, server):
    data = b"PK\x03\x04 this is not really a zip file"
    server.files["tiny.zip"] = data
    info = _info(data, md5=None, sha256=None)
    with pytest.raises(LogsieveError, match="is not a readable zip archive"):
        fetch(info, home=tmp_path, base_url=server.url)
    assert cache_status(info, tmp_path) == "downloaded"  # the bytes are what the server sent
