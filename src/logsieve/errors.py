"""Exceptions that reach users. The CLI turns each into one line and exit code 2."""

from __future__ import annotations

from pathlib import Path


class LogsieveError(Exception):
    """A problem the user can fix (bad input, bad option); shown as one line."""

    exit_code = 2


class InputError(LogsieveError):
    """Bad input data, pointing at the file and, where known, the line."""

    def __init__(self, path: str | Path, message: str, line: int | None = None):
        self.path = str(path)
        self.line = line
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")


class NotFittedError(LogsieveError, ValueError):
    """A model or parser was used before it was fitted."""
