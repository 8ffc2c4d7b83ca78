"""Typed readers of TOML values that raise one-line errors naming the file and section.

Also the grouping strings of the config (``session``, ``count:N[,STEP]``,
``time:DUR[,STEP]``, ``sequence``) and regular expressions.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from logsieve.errors import LogsieveError


class _Where:
    def __init__(self, path: Path, section: str) -> None:
        self.path, self.section = path, section

    def error(self, message: str) -> LogsieveError:
        return LogsieveError(f"{self.path}: [{self.section}] {message}")

    def sub(self, name: str) -> _Where:
        return _Where(self.path, f"{self.section}.{name}" if self.section else name)


def _keys(table: Any, allowed: Iterable[str], where: _Where) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise where.error(f"must be a table, not {type(table).__name__}")
    allowed = list(allowed)
    for key in table:
        if key not in allowed:
            raise where.error(f"unknown key {key!r} (allowed: {', '.join(allowed)})")
    return table


def _type_name(value: Any) -> str:
    return {
        bool: "boolean",
        int: "integer",
        float: "number",
        str: "string",
        list: "list",
        dict: "table",
    }.get(type(value), type(value).__name__)


def _str(value: Any, key: str, where: _Where) -> str:
    if not isinstance(value, str):
        raise where.error(f"{key} must be a string, not {_type_name(value)} {value!r}")
    return value


def _bool(value: Any, key: str, where: _Where) -> bool:
    if not isinstance(value, bool):
        raise where.error(f"{key} must be true or false, not {_type_name(value)} {value!r}")
    return value


def _int(value: Any, key: str, where: _Where, low: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise where.error(f"{key} must be an integer, not {_type_name(value)} {value!r}")
    if low is not None and value < low:
        raise where.error(f"{key} must be at least {low}, not {value}")
    return value


def _num(
    value: Any,
    key: str,
    where: _Where,
    low: float,
    high: float,
    *,
    high_open: bool = False,
    low_open: bool = False,
) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise where.error(f"{key} must be a number, not {_type_name(value)} {value!r}")
    v = float(value)
    if v < low or v > high or (high_open and v == high) or (low_open and v == low):
        lo = "(" if low_open else "["
        hi = ")" if high_open else "]"
        raise where.error(f"{key} must be in {lo}{low:g}, {high:g}{hi}, not {value!r}")
    return v


def _list(
    value: Any, key: str, where: _Where, item: Callable[[Any, str, _Where], Any]
) -> tuple[Any, ...]:
    """A list of items (a single item is accepted as a one-element list); never empty."""
    items = value if isinstance(value, list) else [value]
    if not items:
        raise where.error(f"{key} must not be empty")
    out = tuple(item(v, key, where) for v in items)
    if len(set(map(repr, out))) != len(out):
        raise where.error(f"{key} lists a value twice: {value!r}")
    return out


def _path(value: Any, key: str, where: _Where) -> Path:
    text = _str(value, key, where)
    path = Path(os.path.expandvars(text)).expanduser()
    if not path.is_absolute():
        path = (where.path.parent / path).resolve()
    if not path.exists():
        raise where.error(f"{key}: no such file {text!r} (paths are relative to the config file)")
    return path


def _paths(value: Any, key: str, where: _Where) -> tuple[Path, ...]:
    return _list(value, key, where, _path)


def parse_grouping(text: str) -> Any:
    """``"session"``, ``"count:N[,STEP]"``, ``"time:DUR[,STEP]"`` -> a grouping spec.

    ``"sequence"`` (pre-grouped sequences) returns None. Sessions use the HDFS block
    pattern here; datasets may set their own (``session`` key).
    """
    from logsieve.grouping.windows import CountWindows, Sessions, TimeWindows

    kind, _, arg = str(text).partition(":")
    kind = kind.strip()
    parts = [p.strip() for p in arg.split(",")] if arg else []
    if kind == "sequence" and not parts:
        return None
    if kind == "session" and not parts:
        return Sessions()
    if kind == "count" and 1 <= len(parts) <= 2 and all(p.isdigit() for p in parts):
        return CountWindows(int(parts[0]), int(parts[1]) if len(parts) == 2 else None)
    if kind == "time" and 1 <= len(parts) <= 2 and all(parts):
        return TimeWindows(parts[0], parts[1] if len(parts) == 2 else None)
    raise LogsieveError(
        f"bad grouping {text!r}: expected session, count:N, count:N,STEP, time:DUR "
        "or time:DUR,STEP (e.g. count:20, count:100,20, time:30m, time:1h,10m), "
        "or sequence for pre-parsed sequences"
    )


def _grouping_str(value: Any, key: str, where: _Where) -> str:
    text = _str(value, key, where).strip()
    try:
        parse_grouping(text)
    except LogsieveError as exc:
        raise where.error(f"{key}: {exc}") from None
    return text


def _regex(value: Any, key: str, where: _Where) -> str:
    text = _str(value, key, where)
    try:
        re.compile(text)
    except re.error as exc:
        raise where.error(f"{key}: bad regular expression {text!r} ({exc})") from None
    return text
