"""Atomic outputs: nothing under the final name unless the write completed."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from logsieve.io.atomic import atomic_open, write_json


def test_failed_write_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError):
        with atomic_open(target) as fh:
            fh.write("half")
            raise RuntimeError("crash")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    write_json(target, {"v": 1})
    with pytest.raises(RuntimeError):
        with atomic_open(target) as fh:
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
