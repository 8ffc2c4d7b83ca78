"""Log formats in Loghub's notation: ``<Date> <Time> <Level> <Component>: <Content>``.

A format declares its header fields (each ``<Name>`` placeholder), how to read its timestamp,
which parser preset (masks, Drain settings) suits it, where its labels are, and which lines
to skip (a CSV header, say). Text between placeholders is a regular expression fragment in
which runs of spaces match any run of whitespace, exactly as the logpai/logparser benchmark
reads these strings. A field matches anything up to the next separator unless the format
gives it a pattern of its own (``field_patterns``), which lines must fit or be counted as
malformed.

Limits, checked when a format is made (:class:`~logsieve.errors.LogsieveError`, one line):

* at most :data:`MAX_FORMAT_FIELDS` (64) fields: the line regex gets slower with every
  field, steeply past about a hundred;
* no field named like one of logsieve's own columns (:data:`RESERVED_NAMES`: ``line_id``,
  ``timestamp``, ``content``, ``event_id``, ``template``, ``label``, ``source``, the window
  columns...) nor ``line`` or anything starting with ``__`` (internal columns);
* no group syntax that captures (``(?P<x>...)``); fields are written ``<Name>``.

:meth:`LogFormat.validate` (run by :func:`~logsieve.formats.get_format`, so before any
input is read) compiles every regex the format produces with Polars' Rust engine, the one
that runs them: ``[``, ``\\1``, ``(?=``, unbalanced brackets or quantifiers are refused.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Literal

import polars as pl

from logsieve.errors import LogsieveError
from logsieve.schema import (
    CONTENT,
    ELAPSED,
    END,
    EVENT_ID,
    EVENT_IDS,
    LABEL,
    LINE_ID,
    LINE_IDS,
    MESSAGES,
    PART,
    SOURCE,
    START,
    TEMPLATE,
    TIMESTAMP,
    TS_DTYPE,
    VALUES,
    WINDOW_ID,
)

_PLACEHOLDER = re.compile(r"(<[A-Za-z_][A-Za-z0-9_]*>)")
CONTENT_FIELD = "Content"
MAX_FORMAT_FIELDS = 64
"""Most fields (placeholders, Content included) a format may have."""
RESERVED_NAMES = frozenset(
    {CONTENT, END, EVENT_ID, EVENT_IDS, LABEL, LINE_ID, LINE_IDS, SOURCE, START, TEMPLATE}
    | {TIMESTAMP, WINDOW_ID, VALUES, ELAPSED, MESSAGES, PART, "line"}
)
"""Field names refused because logsieve's own tables (or its internals) use them."""


def _short(text: str, limit: int = 80) -> str:
    """``repr`` of ``text``, cut to about ``limit`` characters (one line in any case)."""
    r = repr(text)
    return r if len(r) <= limit else r[: limit - 5] + "...'"


def regex_error(pattern: str) -> str | None:
    """Why Polars' Rust regex engine refuses ``pattern`` (one line), or None if it compiles."""
    try:
        pl.Series("probe", [""], dtype=pl.String).str.contains(pattern)
    except Exception as exc:  # polars raises ComputeError for bad regexes
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        for ln in lines:
            if ln.startswith("error:"):
                return ln[len("error:") :].strip()
        return lines[-1] if lines else type(exc).__name__
    return None


@dataclass(frozen=True)
class Timestamp:
    """How to build a UTC timestamp from header fields.

    ``fields`` are joined with single spaces (after an optional ``year`` prefix for logs whose
    lines carry no year) and parsed with the chrono/strftime ``format``; the special formats
    ``"epoch"`` and ``"epoch_ms"`` read a number of seconds / milliseconds since 1970.
    """

    fields: tuple[str, ...]
    format: str
    year: int | None = None

    def expr(self) -> pl.Expr:
        if self.format.startswith("regex:"):
            return self._regex_expr(self.format.removeprefix("regex:"))
        if self.format in ("epoch", "epoch_ms"):
            unit: Literal["s", "ms"] = "s" if self.format == "epoch" else "ms"
            num = pl.col(self.fields[0]).str.strip_chars().cast(pl.Int64, strict=False)
            return (
                pl.from_epoch(num, time_unit=unit)
                .cast(pl.Datetime("us"))
                .dt.replace_time_zone("UTC")
            )
        parts: list[pl.Expr] = [pl.col(f).str.strip_chars() for f in self.fields]
        fmt = self.format
        if self.year is not None:
            parts.insert(0, pl.lit(str(self.year)))
            fmt = "%Y " + fmt
        text = pl.concat_str(parts, separator=" ") if len(parts) > 1 else parts[0]
        return (
            text.str.to_datetime(fmt, strict=False, time_unit="us")
            .dt.replace_time_zone("UTC")
            .cast(TS_DTYPE)
        )

    def _regex_expr(self, pattern: str) -> pl.Expr:
        """Timestamps too irregular for strptime (unpadded fields): a regex with named groups
        ``Y m d H M S`` and optionally ``ms`` (milliseconds, unpadded) builds the datetime."""
        parts = pl.col(self.fields[0]).str.strip_chars().str.extract_groups(pattern)

        def num(name: str) -> pl.Expr:
            return parts.struct.field(name).cast(pl.Int32, strict=False)

        ms = num("ms") if "(?P<ms>" in pattern else pl.lit(0)
        return pl.datetime(
            num("Y"),
            num("m"),
            num("d"),
            num("H"),
            num("M"),
            num("S"),
            ms * 1000,
            time_unit="us",
            time_zone="UTC",
        )


@dataclass(frozen=True)
class LogFormat:
    """A log line layout plus what logsieve needs to know to parse it."""

    name: str
    pattern: str
    description: str = ""
    timestamp: Timestamp | None = None
    preset: str | None = (
        None  # parsing preset (masks, Drain depth/similarity); defaults to ``name``
    )
    label_field: str | None = None  # field holding "-" for normal lines and an alert tag otherwise
    session_pattern: str | None = None  # default session key for ``logsieve group``
    skip_pattern: str | None = None  # lines matching this regex are not log lines (CSV header)
    example: str = ""
    # (field, regex) pairs: what such a field must look like; other lines are malformed
    field_patterns: tuple[tuple[str, str], ...] = ()
    fields: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        if not isinstance(self.pattern, str):
            raise LogsieveError(f"format must be a string, not {type(self.pattern).__name__}")
        where = f"bad format {_short(self.pattern)}"
        count = 0
        for count, _ in enumerate(_PLACEHOLDER.finditer(self.pattern), start=1):
            if count > MAX_FORMAT_FIELDS:
                raise LogsieveError(
                    f"{where}: it has more than {MAX_FORMAT_FIELDS} <Field> placeholders "
                    f"(at most {MAX_FORMAT_FIELDS} are allowed)"
                )
        names = [p[1:-1] for p in _PLACEHOLDER.findall(self.pattern)]
        if not names:
            raise LogsieveError(f"{where}: it has no <Field> placeholder")
        if CONTENT_FIELD not in names:
            raise LogsieveError(f"{where}: it must contain a <Content> field")
        if len(set(names)) != len(names):
            dup = next(n for n in names if names.count(n) > 1)
            raise LogsieveError(f"{where}: it repeats the field <{dup}>")
        reserved = [n for n in names if n in RESERVED_NAMES or n.startswith("__")]
        if reserved:
            raise LogsieveError(
                f"{where}: field name <{reserved[0]}> is one of logsieve's own column names "
                f"({', '.join(sorted(RESERVED_NAMES))}, or starts with __); rename the field"
            )
        literals = _PLACEHOLDER.split(self.pattern)[::2]
        for lit in literals[:-1]:
            if re.search(r"\(\?P?$|\\k$", lit):
                raise LogsieveError(
                    f"{where}: named groups are not allowed in a format; write fields as <Name>"
                )
        for name, _ in self.field_patterns:
            if name not in names:
                raise LogsieveError(f"{where}: field pattern for unknown field <{name}>")
        object.__setattr__(self, "fields", tuple(names))

    def validate(self) -> LogFormat:
        """Compile every regex this format produces with Polars' Rust regex engine (the one
        that runs them); raise :class:`LogsieveError` (one line) naming the bad one."""
        _validate(self)
        return self

    @property
    def header_fields(self) -> tuple[str, ...]:
        """The fields other than Content, in order."""
        return tuple(f for f in self.fields if f != CONTENT_FIELD)

    def regex(self, fast: bool = False) -> str:
        """The full-line regex with one named group per field.

        The general form makes every field lazy (``.*?``), as Loghub's tools do. The fast form
        replaces a field that is followed by a simple separator with a negated class (``[^\\s]*``,
        ``[^:]*``), which the regex engine can run without backtracking. Where the fast form
        matches a line it captures exactly what the general form does (a lazy field ends at the
        first place its separator matches); lines it fails on are retried with the general form.
        """
        parts = _PLACEHOLDER.split(self.pattern)
        out: list[str] = []
        for i, part in enumerate(parts):
            if i % 2 == 0:  # literal text between placeholders
                literal = _literal(part)
                ends_in_content = (
                    i == len(parts) - 3 and parts[i + 1] == f"<{CONTENT_FIELD}>" and not parts[-1]
                )
                if ends_in_content and literal == r"\s+" and i > 0:
                    # A line may stop right after its header (BGL "... KERNEL FATAL"):
                    # then Content is empty rather than the line malformed.
                    literal = r"(?:\s+|$)"
                out.append(literal)
                continue
            name = part[1:-1]
            following = _literal(parts[i + 1]) if i + 1 < len(parts) else ""
            own = dict(self.field_patterns).get(name)
            if own is not None:
                body = f"(?:{own})"
            elif following == "":
                body = ".*"
            elif fast:
                body = _fast_field(following)
            else:
                body = ".*?"
            out.append(f"(?P<{name}>{body})")
        return "^" + "".join(out) + "$"


@dataclass(frozen=True)
class SplitPlan:
    """Split a line by plain string separators instead of a capturing regex.

    ``check`` is a regex without capture groups (the engine runs it as a DFA) that accepts
    exactly the lines on which splitting at the first occurrence of each separator gives
    the fields the format's regex would capture: single spaces where the format has space
    runs, and no field that would start with whitespace. Other lines take the regex path.
    """

    fields: tuple[str, ...]  # every field, Content last
    separators: tuple[str, ...]  # the separator after each field but the last
    check: str


@functools.lru_cache(maxsize=256)
def _validate(fmt: LogFormat) -> None:
    where = f"bad format {_short(fmt.pattern)}"
    checks: list[tuple[str, str]] = [
        ("the line regex it makes", fmt.regex(fast=False)),
        ("the fast line regex it makes", fmt.regex(fast=True)),
    ]
    plan = split_plan(fmt)
    if plan is not None:
        checks.append(("its split check", plan.check))
    checks += [(f"the pattern of field <{n}>", p) for n, p in fmt.field_patterns]
    if fmt.skip_pattern:
        checks.append(("its skip pattern", fmt.skip_pattern))
    if fmt.session_pattern:
        checks.append(("its session pattern", fmt.session_pattern))
    if fmt.timestamp is not None and fmt.timestamp.format.startswith("regex:"):
        checks.append(("its timestamp regex", fmt.timestamp.format.removeprefix("regex:")))
    for what, pattern in checks:
        why = regex_error(pattern)
        if why is not None:
            raise LogsieveError(f"{where}: {what} is not a valid (Rust) regex: {why}")


def split_plan(fmt: LogFormat) -> SplitPlan | None:
    """A :class:`SplitPlan` for formats made of plain separators ending in Content, else None."""
    parts = _PLACEHOLDER.split(fmt.pattern)
    if fmt.field_patterns or parts[0] or parts[-1] or parts[-2] != f"<{CONTENT_FIELD}>":
        return None
    names = tuple(p[1:-1] for p in parts[1::2])
    seps: list[str] = []
    for lit in parts[2:-2:2]:
        text = _plain(lit)
        if not text:
            return None
        seps.append(re.sub(" +", " ", text))
    check = "^"
    after_space = False
    for sep in seps:
        end = sep[0]
        if end == " ":
            field = r"[^\s]+"
        elif after_space:
            field = f"[^\\s{re.escape(end)}][^{re.escape(end)}]*"
        else:
            field = f"[^{re.escape(end)}]*"
        check += field + re.escape(sep)
        after_space = sep.endswith(" ")
    check += r"(?:[^\s].*)?$" if after_space else ".*$"
    return SplitPlan(names, tuple(seps), check)


def _plain(text: str) -> str | None:
    """Literal text with regex escapes removed, or None if it holds regex syntax."""
    out = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            if i + 1 >= len(text) or text[i + 1].isalnum():
                return None
            out.append(text[i + 1])
            i += 2
            continue
        if ch in ".^$*+?()[]{}|":
            return None
        out.append(ch)
        i += 1
    return "".join(out)


def _literal(text: str) -> str:
    """Literal format text as regex: space runs match whitespace runs, groups do not capture."""
    text = re.sub(r"(?<!\\)\((?!\?)", "(?:", text)
    return re.sub(" +", r"\\s+", text)


def _fast_field(following: str) -> str:
    """A backtracking-free field body given the regex text that follows it."""
    # The separator must be mandatory: an optional one (``"?``) lets a lazy field run past it.
    if following.startswith(r"\s+") or (
        following.startswith(r"\s") and not _quantified(following, 2)
    ):
        return r"[^\s]*"
    if following.startswith("\\") and len(following) > 1 and not following[1].isalnum():
        if not _quantified(following, 2):
            return f"[^{re.escape(following[1])}]*"
        return ".*?"
    first = following[0]
    if (first.isalnum() or first in ":,;-=@/#%&'\"~!_ ") and not _quantified(following, 1):
        return f"[^{re.escape(first)}]*"
    return ".*?"


def _quantified(text: str, pos: int) -> bool:
    """Whether the atom ending before ``pos`` is followed by a quantifier that makes it optional."""
    return pos < len(text) and text[pos] in "?*{"
