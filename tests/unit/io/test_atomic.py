"""Atomic outputs: nothing under the final name unless the write completed."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from logsieve.errors import InputError
from logsieve.io.atomic import (
    atomic_open,
    atomic_path,
    check_output_not_input,
    check_output_path,
    sweep_stale_temp,
    temp_dir,
    temp_owner,
    write_json,
)


def test_failed_write_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError), atomic_open(target) as fh:
        fh.write("half")
        raise RuntimeError("crash")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    write_json(target, {"v": 1})
    with pytest.raises(RuntimeError), atomic_open(target) as fh:
        fh.write("{broken")
        raise RuntimeError("crash")
    assert target.read_text().strip().startswith("{")
    assert '"v": 1' in target.read_text()


def test_result_has_ordinary_permissions(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    write_json(target, [1])
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~mask


# --- refusing non-regular targets, output == input, parents, temp names, SIGTERM, sweeping --


def test_refuses_to_replace_a_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "out.parquet"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="output path is a FIFO") as info:
        write_json(fifo, {"v": 1})
    assert "\n" not in str(info.value)
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.parquet"]


def test_refuses_a_directory_as_output(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    with pytest.raises(InputError, match="output path is a directory"), atomic_path(folder) as tmp:
        tmp.write_text("x")
    assert folder.is_dir() and list(folder.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_refuses_a_character_device_without_touching_it() -> None:
    # /dev/null itself is never a target here: check_output_path only looks at it.
    with pytest.raises(InputError, match="character device"):
        check_output_path("/dev/null")


def test_a_target_that_turns_into_a_fifo_mid_write_is_not_replaced(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    with pytest.raises(InputError, match="FIFO"), atomic_open(target) as fh:
        fh.write("{}")
        os.mkfifo(target)
    assert stat.S_ISFIFO(target.stat().st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_missing_parent_directories_are_created(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "out.json"
    write_json(target, [1])
    assert target.read_text().strip().startswith("[")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(InputError, match="Not a directory|cannot create the output directory"):
        write_json(blocker / "out.json", [1])


def test_output_must_not_be_an_input(tmp_path: Path) -> None:
    src = tmp_path / "in.log"
    src.write_text("x\n")
    link = tmp_path / "link.log"
    link.symlink_to(src)
    hard = tmp_path / "hard.log"
    os.link(src, hard)
    other = tmp_path / "other.log"
    other.write_text("y\n")
    for out in (src, tmp_path / "." / "in.log", link, hard):
        with pytest.raises(InputError, match="same file as input"):
            check_output_not_input(out, [other, src])
    check_output_not_input(tmp_path / "new.parquet", [src, "-"])
    check_output_not_input(other, [src])


def test_temp_names_are_marked_with_the_pid(tmp_path: Path) -> None:
    with atomic_path(tmp_path / "x.parquet", suffix=".parquet") as tmp:
        assert temp_owner(tmp.name) == os.getpid()
        assert tmp.name.startswith(".x.parquet.logsieve-") and tmp.name.endswith(".parquet.tmp")
        tmp.write_text("x")
    with temp_dir(tmp_path, "parse") as folder:
        assert folder.name.startswith(f".logsieve-parse-{os.getpid()}-")
        assert temp_owner(folder.name) == os.getpid()
        (folder / "part").write_text("x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.parquet"]


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_sweep_removes_only_stale_temps_of_dead_processes(tmp_path: Path) -> None:
    dead, alive = _dead_pid(), os.getppid()
    old = time.time() - 7200
    stale_file = tmp_path / f".out.parquet.logsieve-{dead}-abc123.parquet.tmp"
    stale_dir = tmp_path / f".logsieve-parse-{dead}-xyz"
    live_file = tmp_path / f".out.parquet.logsieve-{alive}-abc123.parquet.tmp"
    young = tmp_path / f".out.json.logsieve-{dead}-young.tmp"
    foreign = tmp_path / ".out.json.abc123.tmp"  # not marked as ours
    user = tmp_path / "logsieve-1-notes.tmp"
    stale_dir.mkdir()
    (stale_dir / "part-000000.parquet").write_text("x")
    for p in (stale_file, live_file, young, foreign, user):
        p.write_text("x")
    for p in (stale_file, stale_dir, live_file, foreign, user):
        os.utime(p, (old, old))
    removed = sweep_stale_temp(tmp_path, older_than_s=3600)
    assert sorted(removed) == sorted([stale_file, stale_dir])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        p.name for p in (live_file, young, foreign, user)
    )
    assert sweep_stale_temp(tmp_path / "missing", 0) == []


_SIGTERM_SCRIPT = """
import os, signal, sys
from pathlib import Path
from logsieve.io.atomic import atomic_path, temp_dir
where = Path(sys.argv[1])
with temp_dir(where, "parse") as folder:
    (folder / "part").write_text("x")
    with atomic_path(where / "out.parquet") as tmp:
        tmp.write_text("half")
        os.kill(os.getpid(), signal.SIGTERM)
        signal.pause()
"""


def test_sigterm_removes_temporary_files(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _SIGTERM_SCRIPT, str(tmp_path)], capture_output=True, timeout=60
    )
    assert proc.returncode == 143, proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_sigterm_handler_is_restored(tmp_path: Path) -> None:
    before = signal.getsignal(signal.SIGTERM)
    with atomic_path(tmp_path / "a"), atomic_path(tmp_path / "b"):
        pass
    assert signal.getsignal(signal.SIGTERM) == before
