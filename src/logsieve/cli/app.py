"""The ``logsieve`` command line: a thin layer over the public API.

One module per command (``logsieve.cli.parse``, ``.group``, ``.train``, ...): each parses
its options, calls library functions and renders the result, registering itself on the
shared :data:`~logsieve.cli._common.app` when imported. Library errors become one line on
stderr and exit code 2 (:mod:`logsieve.cli._common`).
"""

from __future__ import annotations

import sys

from logsieve.cli._common import app

# Registration order is the order of `logsieve --help`: keep these imports unsorted.
# isort: off
from logsieve.cli import formats, parse, group, synth, datasets  # noqa: F401
from logsieve.cli import models, train, detect, evaluate, compare  # noqa: F401
from logsieve.cli import experiment, bench, demo  # noqa: F401
from logsieve.cli import watch, serve, feedback, workflow  # noqa: F401

# isort: on

__all__ = ["app", "main"]


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        sys.stderr.write("logsieve: interrupted\n")
        raise SystemExit(130) from None
