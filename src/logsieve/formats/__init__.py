"""Log formats: built-in systems and custom Loghub-notation format strings."""

from __future__ import annotations

from logsieve.errors import LogsieveError
from logsieve.formats.base import (
    CONTENT_FIELD,
    MAX_FORMAT_FIELDS,
    RESERVED_NAMES,
    LogFormat,
    Timestamp,
    regex_error,
)
from logsieve.formats.builtin import BUILTIN_FORMATS

__all__ = [
    "CONTENT_FIELD",
    "MAX_FORMAT_FIELDS",
    "RESERVED_NAMES",
    "LogFormat",
    "Timestamp",
    "get_format",
    "list_formats",
    "regex_error",
]


def list_formats() -> list[LogFormat]:
    """The built-in formats, in a stable order."""
    return list(BUILTIN_FORMATS.values())


def get_format(spec: str | LogFormat) -> LogFormat:
    """A built-in format by (case-insensitive) name, or a custom one from a format string.

    A string containing ``<`` is read as a custom format in Loghub's notation, e.g.
    ``"<Date> <Time> <Level> <Component>: <Content>"``. Every regex the format makes is
    checked with the engine that will run it (:meth:`LogFormat.validate`), so a bad format
    fails here, before any input is read.
    """
    if isinstance(spec, LogFormat):
        return spec.validate()
    if not isinstance(spec, str):
        raise LogsieveError(f"format must be a name or a format string, not {type(spec).__name__}")
    key = spec.strip().lower()
    if key in BUILTIN_FORMATS:
        return BUILTIN_FORMATS[key].validate()
    if "<" in spec and ">" in spec:
        return LogFormat(name="custom", pattern=spec, description="custom format string").validate()
    known = ", ".join(BUILTIN_FORMATS)
    raise LogsieveError(
        f"unknown format {spec[:80]!r}; built-in formats are: {known}; "
        "or pass a format string such as '<Date> <Time> <Level>: <Content>'"
    )
