"""Masks: regular expressions that replace variable fields (IPs, ids, numbers...) by a
wildcard before template mining.

A mask is data: a name, a regex and a replacement. The regex uses the syntax of Rust's
``regex`` crate because the batch path runs it through Polars (``str.replace_all``); that
syntax has no look-around and no back-references. Masks are applied one after the other,
in the order given, each to the output of the previous one, so specific masks must come
before general ones (a block id ``blk_-42`` must be masked whole before the number mask
sees ``42``).

Two code paths give the same result:

* :func:`mask_expr` builds a Polars expression (vectorized; used on whole files);
* :func:`mask_text` masks one message (online use). Rust's engine runs in linear time
  whatever the pattern; Python's :mod:`re` backtracks, so ``(a+)+$`` takes exponential
  time there. Python is used (it is much cheaper per call) only for a pattern whose parse
  tree shows it cannot backtrack exponentially (:func:`python_safe`: every repetition of
  more than one step repeats a fixed-width piece, or one marked off by a delimiter that
  nothing else in it can match, and no alternation) and for texts up to
  :data:`PY_MAX_CHARS` characters; everything else, and any pattern Python cannot compile
  exactly as Rust does, runs through Polars.
"""

from __future__ import annotations

import functools
import importlib
import logging
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from logsieve.errors import LogsieveError

__all__ = [
    "DEFAULT_MASKS",
    "Mask",
    "mask_expr",
    "mask_text",
    "masks_from_dicts",
    "masks_to_dicts",
    "python_safe",
    "validate_masks",
]

log = logging.getLogger(__name__)

WILDCARD = "<*>"

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")

# Strings probed by validate_masks to reject masks that can match the empty string:
# such a mask would insert a wildcard between every two characters (and Python and
# Rust disagree on where exactly).
_EMPTY_PROBES = ("", "a", "7", "a b", "x-1 /p 0x1F 1.2.3.4 ab:cd", "\t")


@dataclass(frozen=True)
class Mask:
    """One masking rule: every match of ``pattern`` becomes ``replace_with``.

    Parameters
    ----------
    name : str
        Short identifier (``ip``, ``hex``...), used in messages and configs.
    pattern : str
        Regex in Rust-regex syntax (no look-around, no back-references).
    replace_with : str
        Literal replacement text (no group references); ``"<*>"`` by default.
    """

    name: str
    pattern: str
    replace_with: str = WILDCARD

    @classmethod
    def parse(cls, spec: str) -> Mask:
        """Build a mask from ``"NAME=REGEX"`` (the CLI's ``--mask`` syntax).

        Raises
        ------
        LogsieveError
            If the spec has no ``=``, the name is not an identifier, the regex is empty,
            invalid, uses look-around/back-references or can match the empty string.
        """
        if not isinstance(spec, str) or "=" not in spec:
            raise LogsieveError(f"bad mask {spec!r}: expected NAME=REGEX")
        name, pattern = spec.split("=", 1)
        name = name.strip()
        if not _NAME_RE.match(name):
            raise LogsieveError(
                f"bad mask {spec!r}: name {name!r} must start with a letter or _ and use "
                "only letters, digits, _ . -"
            )
        if not pattern:
            raise LogsieveError(f"bad mask {spec!r}: empty regex")
        mask = cls(name, pattern)
        validate_masks([mask])
        return mask

    def to_dict(self) -> dict[str, str]:
        """Plain JSON-able form."""
        return {"name": self.name, "pattern": self.pattern, "replace_with": self.replace_with}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Mask:
        """Inverse of :meth:`to_dict` (``replace_with`` may be omitted)."""
        try:
            name, pattern = d["name"], d["pattern"]
        except (KeyError, TypeError) as exc:
            raise LogsieveError(f"bad mask {d!r}: needs 'name' and 'pattern'") from exc
        repl = d.get("replace_with", WILDCARD)
        if not all(isinstance(v, str) for v in (name, pattern, repl)):
            raise LogsieveError(f"bad mask {d!r}: name, pattern and replace_with must be strings")
        return cls(name, pattern, repl)


def masks_to_dicts(masks: Sequence[Mask]) -> list[dict[str, str]]:
    """``[m.to_dict() for m in masks]``."""
    return [m.to_dict() for m in masks]


def masks_from_dicts(items: Sequence[Mapping[str, Any]]) -> tuple[Mask, ...]:
    """Inverse of :func:`masks_to_dicts`."""
    return tuple(Mask.from_dict(d) for d in items)


# --------------------------------------------------------------------------------------
# Default masks. Order matters: composite identifiers first, then addresses, then the
# number-like leftovers. Each is written for the subset of syntax that Rust's regex and
# Python's re read the same way.
# --------------------------------------------------------------------------------------
_HEX = "[0-9a-fA-F]"

DEFAULT_MASKS: tuple[Mask, ...] = (
    # scheme://anything-up-to-space (http, hdfs, file, jdbc ...)
    Mask("url", r"\b[A-Za-z][A-Za-z0-9+.:\-]*://[^\s\"'<>]+"),
    # 8-4-4-4-12 UUIDs (OpenStack request/instance ids, Windows GUIDs)
    Mask("uuid", rf"\b{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}\b"),
    # IPv4 with optional :port
    Mask("ip", r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?\b"),
    # MAC addresses and other colon-separated hex byte strings
    Mask("mac", rf"\b{_HEX}{{2}}(?::{_HEX}{{2}}){{5,}}\b"),
    # file paths with at least two components (/a/b, C:\x\y)
    Mask("path", r"(?:\b[A-Za-z]:)?(?:[/\\][\w.\-@~+%$]+){2,}[/\\]?"),
    # calendar dates and times of day
    Mask("date", r"\b\d{4}[-/]\d{1,2}[-/]\d{1,2}\b"),
    Mask("time", r"\b\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?\b"),
    # 0x-prefixed hex numbers
    Mask("hex", rf"\b0[xX]{_HEX}+\b"),
    # long hex ids / digests (12+ hex digits: all-letter words that long do not exist)
    Mask("hexid", rf"\b{_HEX}{{12,}}\b"),
    # numbers with a unit: durations and sizes (10ms, 3.5s, 512KB, 2GB)
    Mask(
        "duration_size",
        r"\b\d+(?:\.\d+)?(?:ns|us|ms|s|sec|secs|min|mins|h|KB|MB|GB|TB|kB|KiB|MiB|GiB|B)\b",
    ),
    # integers and decimals that stand alone (not glued to letters, digits or _)
    Mask("number", r"\b\d+(?:\.\d+)?\b"),
)


# --------------------------------------------------------------------------------------
# Application
# --------------------------------------------------------------------------------------
def _polars_replacement(text: str) -> str:
    # Polars (Rust regex) expands $name / ${n} in the replacement; $$ is a literal $.
    return text.replace("$", "$$")


def mask_expr(expr: pl.Expr, masks: Sequence[Mask]) -> pl.Expr:
    """Chain ``str.replace_all`` for each mask, in order (vectorized).

    Parameters
    ----------
    expr : pl.Expr
        A string expression, e.g. ``pl.col("content")``.
    masks : sequence of Mask
        Applied in order.

    Returns
    -------
    pl.Expr
        The masked expression (nulls stay null).
    """
    for m in masks:
        expr = expr.str.replace_all(m.pattern, _polars_replacement(m.replace_with))
    return expr


PY_MAX_CHARS = 1024
"""Longest text :func:`mask_text` masks with Python's ``re``; longer ones go to Polars
(even a pattern without exponential backtracking can be polynomial on a long line)."""


@functools.lru_cache(maxsize=512)
def _compile_py(pattern: str) -> re.Pattern[str] | None:
    """Python compilation of a Rust-syntax pattern, or None when Python may read it
    differently (it fails to compile, or compiles with a warning: Rust class syntax such
    as ``[[:digit:]]`` or ``[a-z&&[^x]]`` is a FutureWarning, not an error, in Python) or
    may backtrack exponentially on it (:func:`python_safe`)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            rx = re.compile(pattern)
    except (re.error, ValueError, Warning, RecursionError):
        log.debug("pattern %r is not Python-compatible; masking it through Polars", pattern)
        return None
    if not python_safe(pattern):
        log.debug("pattern %r may backtrack badly in Python; masking it through Polars", pattern)
        return None
    return rx


# --------------------------------------------------------------------------------------
# Which patterns Python's backtracking engine runs safely. Conservative: False only costs
# speed (the mask then runs through Polars).
# --------------------------------------------------------------------------------------
_sre: Any = importlib.import_module("re._parser")
_C: Any = importlib.import_module("re._constants")
_REPEATS = (_C.MAX_REPEAT, _C.MIN_REPEAT, _C.POSSESSIVE_REPEAT)
_CATEGORY_RX = {
    _C.CATEGORY_DIGIT: re.compile(r"\d"),
    _C.CATEGORY_NOT_DIGIT: re.compile(r"\D"),
    _C.CATEGORY_SPACE: re.compile(r"\s"),
    _C.CATEGORY_NOT_SPACE: re.compile(r"\S"),
    _C.CATEGORY_WORD: re.compile(r"\w"),
    _C.CATEGORY_NOT_WORD: re.compile(r"\W"),
}


@functools.lru_cache(maxsize=512)
def python_safe(pattern: str) -> bool:
    """Whether Python's ``re`` runs ``pattern`` without exponential backtracking.

    True when every repetition of more than one step repeats either a fixed-width piece
    without alternation, or a piece that starts (or ends) with a delimiter character that
    nothing else in the piece can match and holds at most one other variable-width part.
    ``(a+)+``, ``(a|aa)*``, ``(x?x?)+`` are not safe; ``(/[\\w-]+)+``, ``(?::\\d+)+``,
    ``(?:\\.\\d{1,3}){3}`` are. Case-insensitive patterns, back-references and
    look-arounds are reported unsafe.
    """
    try:
        tree = _sre.parse(pattern)
    except Exception:
        return False
    if tree.state.flags & re.IGNORECASE:
        return False
    return _seq_safe(tree)


def _seq_safe(seq: Any) -> bool:
    for op, av in seq:
        if op in _REPEATS:
            _lo, hi, body = av
            if hi > 1 and not _one_way(_unwrap(body)):
                return False
            if not _seq_safe(body):
                return False
        elif op is _C.SUBPATTERN:
            if av[1] & re.IGNORECASE or not _seq_safe(av[3]):
                return False
        elif op is _C.ATOMIC_GROUP:
            if not _seq_safe(av):
                return False
        elif op is _C.BRANCH:
            if not all(_seq_safe(alt) for alt in av[1]):
                return False
        elif op in (_C.GROUPREF, _C.GROUPREF_EXISTS, _C.ASSERT, _C.ASSERT_NOT):
            return False
    return True


def _unwrap(seq: Any) -> Any:
    """A sequence that is one plain group, replaced by the group's contents."""
    while len(seq) == 1 and seq[0][0] is _C.SUBPATTERN:
        seq = seq[0][1][3]
    return seq


def _has_branch(seq: Any) -> bool:
    for op, av in seq:
        if op is _C.BRANCH or op is _C.GROUPREF_EXISTS:
            return True
        if op in _REPEATS and _has_branch(av[2]):
            return True
        if op is _C.SUBPATTERN and _has_branch(av[3]):
            return True
        if op is _C.ATOMIC_GROUP and _has_branch(av):
            return True
    return False


def _variable(seq: Any, item: Any) -> bool:
    lo, hi = _sre.SubPattern(seq.state, [item]).getwidth()
    return bool(lo != hi)


def _one_way(body: Any) -> bool:
    """Whether a text splits into consecutive matches of ``body`` in one way only."""
    if _has_branch(body):
        return False
    lo, hi = body.getwidth()
    if lo == hi:
        return True
    items = list(body)
    for delim, rest in ((items[:1], items[1:]), (items[-1:], items[:-1])):
        chars = _delimiter_chars(delim[0]) if delim else None
        if not chars:
            continue
        if sum(_variable(body, item) for item in rest) > 1:
            continue
        if not any(_can_match(item, ch) for item in rest for ch in chars):
            return True
    return False


def _delimiter_chars(item: Any) -> set[str] | None:
    """The characters a single-character, fixed item matches (a literal or a small class)."""
    op, av = item
    if op is _C.LITERAL:
        return {chr(av)}
    if op is not _C.IN:
        return None
    chars: set[str] = set()
    for sub_op, sub_av in av:
        if sub_op is _C.LITERAL:
            chars.add(chr(sub_av))
        elif sub_op is _C.RANGE and sub_av[1] - sub_av[0] < 256:
            chars.update(chr(c) for c in range(sub_av[0], sub_av[1] + 1))
        else:
            return None
    return chars


def _can_match(item: Any, ch: str) -> bool:
    """Whether ``item`` (anywhere inside it) can consume the character ``ch``; True when unsure."""
    op, av = item
    if op is _C.LITERAL:
        return bool(chr(av) == ch)
    if op is _C.NOT_LITERAL:
        return bool(chr(av) != ch)
    if op is _C.AT:
        return False
    if op is _C.IN:
        negate = False
        hit = False
        for sub_op, sub_av in av:
            if sub_op is _C.NEGATE:
                negate = True
            elif sub_op is _C.LITERAL:
                hit = hit or chr(sub_av) == ch
            elif sub_op is _C.RANGE:
                hit = hit or sub_av[0] <= ord(ch) <= sub_av[1]
            elif sub_op is _C.CATEGORY and sub_av in _CATEGORY_RX:
                hit = hit or _CATEGORY_RX[sub_av].match(ch) is not None
            else:
                return True
        return hit != negate
    if op in _REPEATS:
        return any(_can_match(sub, ch) for sub in av[2])
    if op is _C.SUBPATTERN:
        return any(_can_match(sub, ch) for sub in av[3])
    return True


def _python_replacement(text: str) -> str:
    # re.sub templates interpret backslashes; make the replacement literal.
    return text.replace("\\", "\\\\")


def mask_text(text: str, masks: Sequence[Mask]) -> str:
    """Mask one message; same result as :func:`mask_expr` on that message.

    Runs in time linear in the text whatever the patterns (see the module docstring for
    when Python's ``re`` is used instead of Polars).

    Parameters
    ----------
    text : str
        One log message (content column).
    masks : sequence of Mask
        Applied in order.
    """
    if len(text) > PY_MAX_CHARS:
        return str(pl.select(mask_expr(pl.lit(text, dtype=pl.String), masks)).item())
    for m in masks:
        rx = _compile_py(m.pattern)
        if rx is not None:
            text = rx.sub(_python_replacement(m.replace_with), text)
        else:
            text = (
                pl.Series([text], dtype=pl.String)
                .str.replace_all(m.pattern, _polars_replacement(m.replace_with))
                .item()
            )
    return text


def _first_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    # polars: "regex error: regex parse error:" / "<pattern>" / "^^^" / "error: <what>"
    for ln in lines:
        if ln.startswith("error:"):
            return ln[len("error:") :].strip()
    return lines[0] if lines else type(exc).__name__


def validate_masks(masks: Sequence[Mask]) -> None:
    """Check every mask compiles with Polars and cannot match the empty string.

    Raises
    ------
    LogsieveError
        Naming the first bad mask and the reason.
    """
    probe = pl.Series("probe", _EMPTY_PROBES, dtype=pl.String)
    for m in masks:
        if not isinstance(m, Mask):
            raise LogsieveError(f"not a mask: {m!r}")
        if not m.pattern:
            raise LogsieveError(f"mask {m.name!r}: empty regex")
        try:
            found = probe.str.extract_all(m.pattern)
        except Exception as exc:  # polars raises ComputeError for bad regexes
            raise LogsieveError(
                f"mask {m.name!r}: invalid regex {m.pattern!r} "
                f"(Rust regex syntax: no look-around or back-references): {_first_line(exc)}"
            ) from None
        if any("" in hits for hits in found.to_list() if hits is not None):
            raise LogsieveError(
                f"mask {m.name!r}: regex {m.pattern!r} can match the empty string"
            )
