"""Download, verify and unpack dataset archives into the logsieve cache.

Layout under ``logsieve_home()`` (``$LOGSIEVE_HOME``, default ``~/.cache/logsieve``)::

    datasets/<name>/<archive>            the verified archive, e.g. HDFS_v1.zip
    datasets/<name>/<archive>.sha256     its SHA-256 (``sha256sum`` format), written once verified
    datasets/<name>/<archive>.part       an interrupted download, resumed with an HTTP Range request
    datasets/<name>/.extracted.json      what was unpacked from which archive
    datasets/<name>/...                  the unpacked files (HDFS.log, preprocessed/...)

Only the standard library talks to the network (``urllib``). The library never prints:
progress goes to an optional ``progress(bytes_done, bytes_total)`` callback and messages to
``logging``. Every user-facing failure is a one-line :class:`~logsieve.errors.LogsieveError`.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.client
import json
import logging
import os
import re
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Literal

from logsieve._version import __version__
from logsieve.datasets.registry import DEFAULT_BASE_URL, DatasetInfo, get_dataset
from logsieve.errors import LogsieveError
from logsieve.io.atomic import atomic_open, write_json

logger = logging.getLogger(__name__)

HOME_ENV = "LOGSIEVE_HOME"
URL_ENV = "LOGSIEVE_DATASETS_URL"
CHUNK = 1 << 20
MARKER = ".extracted.json"
_LOCK = ".lock"
_USER_AGENT = f"logsieve/{__version__} (dataset fetcher; python-urllib)"

ProgressCallback = Callable[[int, "int | None"], None]
"""``progress(bytes_done, bytes_total)``; ``bytes_total`` is None when unknown."""

Registry = Mapping[str, DatasetInfo] | Iterable[DatasetInfo] | None
CacheStatus = Literal["missing", "partial", "unverified", "downloaded", "ready"]


def logsieve_home() -> Path:
    """The logsieve cache folder: ``$LOGSIEVE_HOME`` or ``~/.cache/logsieve``.

    This is the one place the environment variable is read.
    """
    value = os.environ.get(HOME_ENV, "").strip()
    return Path(value).expanduser() if value else Path.home() / ".cache" / "logsieve"


def default_base_url() -> str:
    """``$LOGSIEVE_DATASETS_URL`` when set, else the Zenodo record."""
    return os.environ.get(URL_ENV, "").strip() or DEFAULT_BASE_URL


def dataset_dir(name: str | DatasetInfo, home: str | Path | None = None,
                registry: Registry = None) -> Path:
    """``<home>/datasets/<name>``; nothing is created."""
    return _root(home) / "datasets" / get_dataset(name, registry).name


def _root(home: str | Path | None) -> Path:
    return Path(home).expanduser() if home is not None else logsieve_home()


# --------------------------------------------------------------------------- status


def cache_status(name: str | DatasetInfo, home: str | Path | None = None,
                 registry: Registry = None) -> CacheStatus:
    """Where a dataset stands in the cache.

    ``"ready"``: verified and unpacked; ``"downloaded"``: verified archive, not unpacked;
    ``"unverified"``: an archive is there (placed by hand?) but not checked yet;
    ``"partial"``: an interrupted download; ``"missing"``: nothing.
    """
    info = get_dataset(name, registry)
    folder = dataset_dir(info, home)
    archive = folder / info.file
    if archive.is_file():
        digest = _read_sidecar(archive)
        if digest is None or (info.size is not None and archive.stat().st_size != info.size):
            return "unverified"
        if info.archive_kind == "file" or _marker_matches(folder, info, digest):
            return "ready"
        return "downloaded"
    if _part(archive).is_file():
        return "partial"
    return "missing"


@dataclass(frozen=True)
class DatasetFiles:
    """Paths of a fetched dataset's files (see :func:`dataset_files`)."""

    root: Path
    logs: tuple[Path, ...]
    labels: Path | None


def dataset_files(name: str | DatasetInfo, home: str | Path | None = None,
                  registry: Registry = None) -> DatasetFiles:
    """Resolve the registry's ``log_files`` / ``label_file`` patterns in the cache.

    A pattern that matches nothing at the top of the dataset folder is also tried one
    level down, for archives that wrap their content in a folder.

    Raises
    ------
    LogsieveError
        The dataset is not unpacked, or none of its log files is there.
    """
    info = get_dataset(name, registry)
    folder = dataset_dir(info, home)
    if not folder.is_dir():
        raise LogsieveError(
            f"dataset {info.name} is not in {folder}; run: logsieve datasets fetch {info.name}")
    logs: list[Path] = []
    for pattern in info.log_files:
        logs.extend(_glob(folder, pattern))
    if not logs:
        raise LogsieveError(
            f"dataset {info.name}: no file matching {', '.join(info.log_files)} in {folder}; "
            f"run: logsieve datasets fetch {info.name}")
    labels = None
    if info.label_file:
        found = _glob(folder, info.label_file)
        labels = found[0] if found else None
    return DatasetFiles(folder, tuple(dict.fromkeys(logs)), labels)


def _glob(folder: Path, pattern: str) -> list[Path]:
    hits = sorted(p for p in folder.glob(pattern) if p.is_file() and not _is_ours(folder, p))
    if not hits:
        hits = sorted(p for p in folder.glob(f"*/{pattern}")
                      if p.is_file() and not _is_ours(folder, p))
    return hits


def _is_ours(folder: Path, path: Path) -> bool:
    rel = path.relative_to(folder)
    return rel.parts[0].startswith(".extract-") or rel.name in {MARKER, _LOCK}


# --------------------------------------------------------------------------- fetch


def fetch(
    name: str | DatasetInfo,
    home: str | Path | None = None,
    base_url: str | None = None,
    progress: ProgressCallback | None = None,
    extract: bool = True,
    *,
    registry: Registry = None,
    verify: bool = False,
    timeout: float = 60.0,
) -> Path:
    """Download a dataset archive into the cache, verify it and unpack it.

    Parameters
    ----------
    name : str or DatasetInfo
        A registry name (``"hdfs"``, ``"bgl"``; see :func:`list_datasets`) or a
        :class:`DatasetInfo` of your own.
    home : path, optional
        Cache root; default :func:`logsieve_home`.
    base_url : str, optional
        Server folder holding the archives; default ``$LOGSIEVE_DATASETS_URL`` or the
        Zenodo record. The archive is fetched from ``<base_url>/<file>?download=1``.
    progress : callable, optional
        Called as ``progress(bytes_done, bytes_total)`` while downloading.
    extract : bool
        Unpack the archive into the dataset folder (default True).
    registry : mapping or iterable of DatasetInfo, optional
        Where to look ``name`` up; default the built-in Loghub table.
    verify : bool
        Re-hash an archive that is already in the cache instead of trusting its
        ``.sha256`` record.
    timeout : float
        Socket timeout in seconds for connecting and for each read.

    Returns
    -------
    Path
        The dataset folder, ``<home>/datasets/<name>``.

    Notes
    -----
    An interrupted download stays as ``<archive>.part`` and the next call resumes it with
    an HTTP ``Range`` request (a server that ignores Range makes it start over). The
    archive must match every known check (size, SHA-256, MD5) before it is renamed into
    place; a mismatching file is deleted. Calling again once everything is in place does
    no network traffic and no work beyond a few ``stat`` calls.
    """
    info = get_dataset(name, registry)
    base = base_url or default_base_url()
    if not re.match(r"^https?://[^/]", base, re.IGNORECASE):
        raise LogsieveError(f"dataset base URL must start with http:// or https://, got {base!r}")
    url = info.url(base)
    folder = dataset_dir(info, home)
    folder.mkdir(parents=True, exist_ok=True)
    archive = folder / info.file
    with _locked(folder, info):
        digest = _ensure_archive(info, archive, url, progress, verify, timeout)
        if extract and info.archive_kind != "file" and not _marker_matches(folder, info, digest):
            _extract(info, archive, folder, digest)
    return folder


def extract_dataset(name: str | DatasetInfo, home: str | Path | None = None,
                    registry: Registry = None) -> Path:
    """Unpack an already downloaded and verified archive (no network); returns the folder."""
    info = get_dataset(name, registry)
    folder = dataset_dir(info, home)
    archive = folder / info.file
    digest = _read_sidecar(archive) if archive.is_file() else None
    if digest is None:
        raise LogsieveError(
            f"{archive} is not downloaded and verified yet; "
            f"run: logsieve datasets fetch {info.name}")
    if info.archive_kind != "file" and not _marker_matches(folder, info, digest):
        with _locked(folder, info):
            _extract(info, archive, folder, digest)
    return folder


def _ensure_archive(info: DatasetInfo, archive: Path, url: str,
                    progress: ProgressCallback | None, verify: bool, timeout: float) -> str:
    """Make ``archive`` present and verified; return its SHA-256."""
    if archive.is_file():
        recorded = _read_sidecar(archive)
        size_ok = info.size is None or archive.stat().st_size == info.size
        if recorded and size_ok and not verify and (info.sha256 is None or recorded == info.sha256):
            logger.debug("%s already downloaded and verified", archive)
            return recorded
        logger.info("checking %s", archive)
        hashes = _Hashes()
        with open(archive, "rb") as fh:
            for block in iter(lambda: fh.read(CHUNK), b""):
                hashes.update(block)
        digest = _check(info, archive, archive.stat().st_size, hashes, what=str(archive))
        _write_sidecar(archive, digest)
        return digest
    part = _part(archive)
    hashes, size = _download(info, url, archive, part, progress, timeout)
    digest = _check(info, part, size, hashes, what=f"{info.file} downloaded from {url}")
    os.replace(part, archive)
    _write_sidecar(archive, digest)
    if info.sha256 is None and info.md5 is None:
        logger.warning("%s has no published checksum; its SHA-256 %s is recorded in %s",
                       info.file, digest, _sidecar(archive).name)
    return digest


def _download(info: DatasetInfo, url: str, archive: Path, part: Path,
              progress: ProgressCallback | None, timeout: float) -> tuple[_Hashes, int]:
    """Stream ``url`` into ``part`` (resuming it when possible); return its hashes and size."""
    offset = part.stat().st_size if part.is_file() else 0
    if info.size is not None and offset > info.size:
        logger.info("%s is larger than %s should be; starting over", part.name, info.file)
        part.unlink()
        offset = 0
    hashes = _Hashes()
    if offset:
        with open(part, "rb") as fh:  # hash what we already have, once
            for block in iter(lambda: fh.read(CHUNK), b""):
                hashes.update(block)
    if info.size is not None and offset == info.size:
        logger.info("%s is complete; verifying", part.name)
        if progress is not None:
            progress(offset, info.size)
        return hashes, offset

    response = _open(info, url, archive, offset, timeout)
    if offset and (isinstance(response, urllib.error.HTTPError)
                   or (response.status == 206 and _range_start(response) != offset)):
        # 416 (our range is past the end) or a range we did not ask for: start over.
        response.close()
        logger.info("server would not resume %s; starting over", info.file)
        offset, hashes = 0, _Hashes()
        response = _open(info, url, archive, 0, timeout)
    with response:
        if offset and response.status != 206:
            logger.info("server ignored the Range request for %s; starting over", info.file)
            offset, hashes = 0, _Hashes()
        length = response.headers.get("Content-Length")
        total = info.size
        if total is None and length is not None and length.isdigit():
            total = offset + int(length)
        done = offset
        if progress is not None:
            progress(done, total)
        try:
            with open(part, "ab" if offset else "wb") as out:
                while True:
                    block = response.read(CHUNK)
                    if not block:
                        break
                    out.write(block)
                    hashes.update(block)
                    done += len(block)
                    if total is not None and done > total:
                        break
                    if progress is not None:
                        progress(done, total)
        except (OSError, http.client.HTTPException) as exc:
            raise LogsieveError(
                f"download of {info.file} from {url} was interrupted after {done:,} of "
                f"{_bytes(total)} bytes: {_reason(exc)}; run the command again to resume") from None
    if total is not None and done > total:
        part.unlink(missing_ok=True)
        raise LogsieveError(
            f"{info.file} from {url} is larger than the expected {total:,} bytes; "
            "the partial file was deleted")
    if total is not None and done < total:
        raise LogsieveError(
            f"download of {info.file} from {url} stopped after {done:,} of {total:,} bytes; "
            "run the command again to resume")
    return hashes, done


def _open(info: DatasetInfo, url: str, archive: Path, offset: int,
          timeout: float) -> http.client.HTTPResponse:
    """Send the GET; a 416 answer to a resume is returned, every other failure raised."""
    headers = {"User-Agent": _USER_AGENT, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    hint = f"You can also place the file at {archive} by hand"
    try:
        return urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 - checked http(s)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:
            return exc  # type: ignore[return-value]  # HTTPError is a response too
        exc.close()
        raise LogsieveError(
            f"cannot download {info.file} from {url}: HTTP {exc.code} {exc.reason}; {hint}"
        ) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
        raise LogsieveError(
            f"cannot download {info.file} from {url}: {_reason(exc)}; are you offline? {hint}"
        ) from None


_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(\d+)-\d+/(?:\d+|\*)\s*$", re.IGNORECASE)


def _range_start(response: http.client.HTTPResponse) -> int | None:
    match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
    return int(match.group(1)) if match else None


def _reason(exc: BaseException) -> str:
    """A short, one-line reason for a network or file error."""
    if isinstance(exc, urllib.error.URLError) and not isinstance(exc, urllib.error.HTTPError):
        if not isinstance(exc.reason, BaseException):
            return " ".join(str(exc.reason).split())
        exc = exc.reason
    if isinstance(exc, TimeoutError):  # socket.timeout is TimeoutError since 3.10
        return "timed out"
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return " ".join(str(text).split())


def _bytes(total: int | None) -> str:
    return f"{total:,}" if total is not None else "an unknown number of"


# --------------------------------------------------------------------------- checks


class _Hashes:
    """SHA-256 and MD5 of one byte stream, fed once."""

    def __init__(self) -> None:
        self.sha256 = hashlib.sha256()
        self.md5 = hashlib.md5(usedforsecurity=False)

    def update(self, block: bytes) -> None:
        self.sha256.update(block)
        self.md5.update(block)


def _check(info: DatasetInfo, path: Path, size: int, hashes: _Hashes, what: str) -> str:
    """Compare size and digests with the registry; delete ``path`` on a mismatch."""
    problems = []
    if info.size is not None and size != info.size:
        problems.append(f"{size:,} bytes instead of {info.size:,}")
    sha256 = hashes.sha256.hexdigest()
    if info.sha256 is not None and sha256 != info.sha256:
        problems.append(f"SHA-256 {sha256} instead of {info.sha256}")
    md5 = hashes.md5.hexdigest()
    if info.md5 is not None and md5 != info.md5:
        problems.append(f"MD5 {md5} instead of {info.md5}")
    if problems:
        path.unlink(missing_ok=True)
        raise LogsieveError(
            f"checksum mismatch for {what}: {'; '.join(problems)}; the file was deleted, "
            "run the command again to download it afresh")
    checked = [n for n, v in (("SHA-256", info.sha256), ("MD5", info.md5)) if v is not None]
    logger.info("%s verified (%s)", info.file, ", ".join(checked) or "no published checksum")
    return sha256


def _part(archive: Path) -> Path:
    return archive.with_name(archive.name + ".part")


def _sidecar(archive: Path) -> Path:
    return archive.with_name(archive.name + ".sha256")


def _write_sidecar(archive: Path, digest: str) -> None:
    with atomic_open(_sidecar(archive), "w", encoding="utf-8") as fh:
        fh.write(f"{digest}  {archive.name}\n")


def _read_sidecar(archive: Path) -> str | None:
    try:
        text = _sidecar(archive).read_text(encoding="utf-8")
    except OSError:
        return None
    fields = text.split()
    if (len(fields) >= 2 and re.fullmatch(r"[0-9a-f]{64}", fields[0])
            and fields[1].lstrip("*") == archive.name):
        return fields[0]
    return None


@contextlib.contextmanager
def _locked(folder: Path, info: DatasetInfo) -> Iterator[None]:
    """Keep two processes from writing the same dataset at once (POSIX only)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no locking
        yield
        return
    with open(folder / _LOCK, "a+b") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise LogsieveError(
                f"another logsieve process is fetching {info.name} into {folder}; "
                "wait for it to finish") from None
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


# --------------------------------------------------------------------------- extraction


def _marker_matches(folder: Path, info: DatasetInfo, digest: str) -> bool:
    try:
        marker = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if (not isinstance(marker, dict) or marker.get("archive") != info.file
            or marker.get("sha256") != digest):
        return False
    return all((folder / entry).exists() for entry in marker.get("entries", []))


def _member_path(name: str, archive: Path) -> PurePosixPath | None:
    """The safe relative path of an archive member, None for the archive root entry.

    Raises
    ------
    LogsieveError
        The member is absolute, has a drive, or climbs out with ``..``.
    """
    clean = name.replace("\\", "/")
    parts = [p for p in clean.split("/") if p not in ("", ".")]
    if clean.startswith("/") or re.match(r"^[A-Za-z]:", clean) or ".." in parts:
        raise LogsieveError(
            f"{archive}: refusing unsafe archive member {name!r} (absolute path or '..')")
    return PurePosixPath(*parts) if parts else None


def _extract(info: DatasetInfo, archive: Path, folder: Path, digest: str) -> None:
    """Unpack into a scratch folder inside ``folder``, then move the entries into place."""
    reserved = {info.file, _part(archive).name, _sidecar(archive).name, MARKER, _LOCK}
    scratch = Path(tempfile.mkdtemp(prefix=".extract-", dir=folder))
    logger.info("unpacking %s into %s", archive.name, folder)
    try:
        count = 0
        for rel, opener in _members(info, archive):
            if rel.parts[0] in reserved or rel.parts[0].startswith(".extract-"):
                raise LogsieveError(
                    f"{archive}: member {str(rel)!r} would overwrite logsieve's own files")
            target = scratch.joinpath(*rel.parts)
            if opener is None:
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with opener() as source, open(target, "wb") as out:
                shutil.copyfileobj(source, out, CHUNK)
            count += 1
        entries = sorted(p.name for p in scratch.iterdir())
        (folder / MARKER).unlink(missing_ok=True)
        for entry in entries:
            destination = folder / entry
            if destination.is_dir() and not destination.is_symlink():
                shutil.rmtree(destination)
            elif destination.exists() or destination.is_symlink():
                destination.unlink()
            os.replace(scratch / entry, destination)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error) as exc:
        raise LogsieveError(
            f"{archive} is not a readable {info.archive_kind} archive: {exc}") from None
    except OSError as exc:
        raise LogsieveError(f"cannot unpack {archive} into {folder}: {_reason(exc)}") from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    write_json(folder / MARKER, {"archive": info.file, "sha256": digest, "files": count,
                                 "entries": entries})
    logger.info("unpacked %d files from %s", count, archive.name)


def _members(info: DatasetInfo, archive: Path
             ) -> Iterator[tuple[PurePosixPath, Callable[[], IO[bytes]] | None]]:
    """Yield ``(relative path, opener of the member or None for a directory)``, each path
    checked before anything is written."""
    if info.archive_kind == "zip":
        with zipfile.ZipFile(archive) as zf:
            for zinfo in zf.infolist():
                rel = _member_path(zinfo.filename, archive)
                if rel is None:
                    continue
                yield rel, None if zinfo.is_dir() else functools.partial(zf.open, zinfo)
        return
    with tarfile.open(archive, "r:*") as tf:
        for member in tf:
            rel = _member_path(member.name, archive)
            if rel is None:
                continue
            if member.isdir():
                yield rel, None
            elif member.isfile():
                yield rel, functools.partial(_tar_open, tf, member)
            elif member.issym() or member.islnk():
                raise LogsieveError(f"{archive}: refusing link member {member.name!r}")
            else:
                logger.warning("%s: skipping special member %s", archive.name, member.name)


def _tar_open(tf: tarfile.TarFile, member: tarfile.TarInfo) -> IO[bytes]:
    handle = tf.extractfile(member)
    if handle is None:  # pragma: no cover - isfile() members always have data
        raise LogsieveError(f"cannot read member {member.name!r}")
    return handle
