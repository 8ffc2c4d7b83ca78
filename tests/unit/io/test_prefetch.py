"""The read-ahead thread hands over every item in order, raises the reader's errors where
they happened, and stops when the consumer stops."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from logsieve.io.reader import prefetch


def test_items_in_order() -> None:
    assert list(prefetch(iter(range(1000)), depth=2)) == list(range(1000))


def test_reader_error_is_raised_after_the_items_before_it() -> None:
    def items() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("damaged input at item 3")

    got: list[int] = []
    with pytest.raises(ValueError, match="item 3"):
        for x in prefetch(items()):
            got.append(x)
    assert got == [1, 2]


def test_closing_early_stops_the_reader() -> None:
    produced: list[int] = []

    def items() -> Iterator[int]:
        for i in range(10_000):
            produced.append(i)
            yield i

    gen = prefetch(items())
    assert next(gen) == 0
    gen.close()
    assert len(produced) <= 3  # the item handed over, one queued, at most one more read
    assert not any(t.name == "logsieve-prefetch" for t in threading.enumerate())
