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
* :func:`mask_text` masks one message with Python's :mod:`re` (online use). A pattern that
  Python cannot compile (Rust-only syntax) falls back to Polars for that mask.
"""

from __future__ import annotations

import functools
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


@functools.lru_cache(maxsize=512)
def _compile_py(pattern: str) -> re.Pattern[str] | None:
    """Python compilation of a Rust-syntax pattern, or None when Python may read it
    differently: it fails to compile, or compiles with a warning (Rust class syntax such
    as ``[[:digit:]]`` or ``[a-z&&[^x]]`` is a FutureWarning, not an error, in Python)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            return re.compile(pattern)
    except (re.error, ValueError, Warning):
        log.debug("pattern %r is not Python-compatible; masking it through Polars", pattern)
        return None


def _python_replacement(text: str) -> str:
    # re.sub templates interpret backslashes; make the replacement literal.
    return text.replace("\\", "\\\\")


def mask_text(text: str, masks: Sequence[Mask]) -> str:
    """Mask one message; same result as :func:`mask_expr` on that message.

    Parameters
    ----------
    text : str
        One log message (content column).
    masks : sequence of Mask
        Applied in order.
    """
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
