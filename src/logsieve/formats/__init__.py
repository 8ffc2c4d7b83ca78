"""Log formats: built-in systems and custom Loghub-notation format strings."""

from __future__ import annotations

from logsieve.errors import LogsieveError
from logsieve.formats.base import CONTENT_FIELD, LogFormat, Timestamp
from logsieve.formats.builtin import BUILTIN_FORMATS

__all__ = ["CONTENT_FIELD", "LogFormat", "Timestamp", "get_format", "list_formats"]


def list_formats() -> list[LogFormat]:
    """The built-in formats, in a stable order."""
    return list(BUILTIN_FORMATS.values())


def get_format(spec: str | LogFormat) -> LogFormat:
    """A built-in format by (case-insensitive) name, or a custom one from a format string.

    A string containing ``<`` is read as a custom format in Loghub's notation, e.g.
    ``"<Date> <Time> <Level> <Component>: <Content>"``.
    """
    if isinstance(spec, LogFormat):
        return spec
    key = spec.strip().lower()
    if key in BUILTIN_FORMATS:
        return BUILTIN_FORMATS[key]
    if "<" in spec and ">" in spec:
        return LogFormat(name="custom", pattern=spec, description="custom format string")
    known = ", ".join(BUILTIN_FORMATS)
    raise LogsieveError(f"unknown format {spec!r}; built-in formats are: {known}; or pass a format string such as '<Date> <Time> <Level>: <Content>'")
