"""Incremental checkpoints: a base and deltas restore exactly the open windows, in LRU order."""

from __future__ import annotations

from pathlib import Path

import pytest

from logsieve.streaming.state import Background, CheckpointWriter, load_checkpoint
from logsieve.streaming.windows import LineMap, OpenWindow

LINES = LineMap()
LINES.add(1, "f", 0)  # line id n is line n of "f"


def _win(wid: str, n: int, touch: int) -> OpenWindow:
    w = OpenWindow(wid, wid)
    for i in range(n):
        w.append(i + 1, 1_000_000 * i, f"E{i % 3}", 0, f"line {i}", 20)
    w.touch = touch
    return w


def test_base_and_deltas_restore_the_open_windows(tmp_path: Path) -> None:
    ck = CheckpointWriter(tmp_path, max_chain=4)
    open_: dict[str, OpenWindow] = {f"k{i}": _win(f"k{i}", 3, i) for i in range(1500)}
    kinds = [ck.write(1, {"state_version": 2}, [], [], lambda: list(open_.values()), None, LINES)]
    for seq in range(2, 8):  # each interval: some updated, some closed, some new
        upd = [open_[k] for k in list(open_)[:50]]
        for w in upd:
            w.append(99, None, "E9", 1, "x", 20)
            w.touch = 10_000 * seq
        gone = list(open_)[-20:]
        for k in gone:
            del open_[k]
        new = {f"n{seq}_{i}": _win(f"n{seq}_{i}", 1, 10_000 * seq + 1 + i) for i in range(30)}
        open_.update(new)
        kinds.append(ck.write(seq, {"state_version": 2}, upd + list(new.values()), gone,
                              lambda: list(open_.values()), None, LINES))  # fmt: skip
        got = load_checkpoint(tmp_path)
        assert got is not None
        rows = {r["wid"]: r for r in got[1]}
        assert set(rows) == set(open_)
        for wid, w in open_.items():
            assert rows[wid]["eids"] == w.eids and rows[wid]["touch"] == w.touch
            assert rows[wid]["label"] == w.label
            assert rows[wid]["refs"] == [("f", n, t) for n, t in
                                         zip(w.line_ids[-len(w.refs):], w.refs, strict=True)]
    assert kinds[0] == "base" and "delta" in kinds and kinds.count("base") >= 2  # chain capped
    assert len(list(tmp_path.glob("win-*.parquet"))) <= 5  # files outside the chain removed


def test_a_snapshot_is_what_the_windows_held_when_taken(tmp_path: Path) -> None:
    """Written in the background while the loop goes on appending: the checkpoint holds
    the windows as they were at the snapshot, not what came after."""
    ck = CheckpointWriter(tmp_path)
    bg = Background(ck)
    wins = [_win(f"k{i}", 3, i) for i in range(200)]
    before = {w.wid: (list(w.eids), [("f", n, t) for n, t in zip(w.line_ids, w.refs, strict=True)],
                      w.touch) for w in wins}  # fmt: skip
    snap = ck.snapshot(1, {"state_version": 2}, [], [], lambda: wins, None, LINES)
    for w in wins:  # the next batch
        w.append(50, None, "E7", 0, "later", 20)
        w.touch += 1000
    bg.start(snap)
    bg.wait()
    got = load_checkpoint(tmp_path)
    assert got is not None and got[0]["windows"] == ["win-00000001-base.parquet"]
    rows = {r["wid"]: r for r in got[1]}
    assert {k: (r["eids"], r["refs"], r["touch"]) for k, r in rows.items()} \
        == before  # fmt: skip
    # the next checkpoint is a delta with just the appended event
    snap = ck.snapshot(2, {"state_version": 2}, wins[:5], [], lambda: wins, None, LINES)
    assert snap.kind == "delta"
    ck.write_snapshot(snap)
    rows = {r["wid"]: r for r in load_checkpoint(tmp_path)[1]}  # type: ignore[index]
    assert rows["k0"]["eids"] == wins[0].eids and rows["k9"]["eids"] == before["k9"][0]


def test_a_failed_background_write_is_raised_and_the_next_is_a_base(tmp_path: Path) -> None:
    ck = CheckpointWriter(tmp_path)
    bg = Background(ck)
    wins = [_win(f"k{i}", 2, i) for i in range(10)]
    ck.write(1, {"state_version": 2}, [], [], lambda: wins, None, LINES)
    snap = ck.snapshot(2, {"state_version": 2}, wins[:2], [], lambda: wins, None, LINES)
    assert snap.kind == "delta"

    def disk_full() -> None:
        raise OSError(28, "No space left on device")

    snap.sync = disk_full
    bg.start(snap)
    with pytest.raises(OSError, match="No space"):
        bg.wait()
    got = load_checkpoint(tmp_path)  # the checkpoint before is still whole
    assert got is not None and got[0]["windows"] == ["win-00000001-base.parquet"]
    assert ck.snapshot(3, {"state_version": 2}, [], [], lambda: wins, None, LINES).kind == "base"
