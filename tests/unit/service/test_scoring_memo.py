"""The score memo's row cutting and its memory bound (no model needed)."""

from __future__ import annotations

import json

import pytest

from logsieve.service.scoring import ResultMemo, row_segments


def _join(segs: tuple[str, ...], wid: str) -> str:
    return json.dumps(wid).join(segs)


def test_a_row_is_cut_where_the_window_id_goes_at_any_depth() -> None:
    exp = {"window_id": "w1", "score": 3.0, "positions": [{"event_id": "w1", "window_id": "w1"}]}
    segs, own = row_segments("w1", 3.0, True, json.dumps(exp))
    assert segs is not None and len(segs) == 4  # the row's id and the explanation's two
    assert json.loads(own) == {"window_id": "w1", "score": 3.0, "is_anomaly": True,
                               "explanation": exp}  # fmt: skip
    other = json.loads(_join(segs, 'x"y'))
    assert other["window_id"] == 'x"y' and other["explanation"]["window_id"] == 'x"y'
    assert other["explanation"]["positions"] == [{"event_id": "w1", "window_id": 'x"y'}]


def test_rows_that_cannot_be_cut_safely_are_not_memoised() -> None:
    # the explanation names another window, or the data holds the cut mark itself
    assert row_segments("w1", 1.0, True, json.dumps({"window_id": "w2"}))[0] is None
    mark = "\x00logsieve:window_id\x00"
    segs, own = row_segments("w1", 1.0, True, json.dumps({"event_id": mark}))
    assert segs is None and json.loads(own)["explanation"] == {"event_id": mark}
    segs, _ = row_segments("w1", 0.5, False, None)
    assert segs is not None and json.loads(_join(segs, "w9"))["explanation"] is None


@pytest.mark.parametrize("budget", [0, 2_000])
def test_the_memo_keeps_within_its_budget_dropping_the_oldest(budget: int) -> None:
    memo = ResultMemo(budget)
    for i in range(100):
        memo.put((f"E{i}",), ('{"window_id":', ',"score":1.0}'))
    assert memo.bytes <= budget
    if budget == 0:
        assert len(memo) == 0
    else:
        assert 0 < len(memo) < 100 and memo.get(("E99",)) is not None
        assert memo.get(("E0",)) is None
