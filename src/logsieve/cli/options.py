"""The one parser of ``--set`` values, shared by every command that takes them:
``key=value`` (train) and ``MODEL.key=value`` (compare)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Annotated, Any

import typer

from logsieve.errors import LogsieveError

__all__ = ["Engine", "Scheduler", "Workers", "parse_model_params", "parse_sets", "parse_value"]

Engine = Annotated[
    str,
    typer.Option(
        "--engine",
        help="local, or dask: run on a Dask cluster and write a partitioned dataset (a directory).",
    ),
]
Scheduler = Annotated[
    str | None,
    typer.Option("--scheduler", help="Existing Dask scheduler, tcp://HOST:PORT (--engine dask)."),
]
Workers = Annotated[
    int | None,
    typer.Option(
        "--workers", help="Worker processes of a LocalCluster (--engine dask; default 2)."
    ),
]


def parse_value(text: str) -> Any:
    """A ``--set`` value: JSON when it parses (``5``, ``0.1``, ``true``, ``null``, ``[3,4]``,
    ``"x"``), the plain string otherwise (``semantic``). ``None`` is a string: write ``null``."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_sets(items: Sequence[str] | None) -> dict[str, Any]:
    """``["epochs=5", "embedding=semantic"]`` -> ``{"epochs": 5, "embedding": "semantic"}``."""
    params: dict[str, Any] = {}
    for item in items or ():
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise LogsieveError(f"--set takes key=value, not {item!r}")
        params[key.strip()] = parse_value(raw)
    return params


def parse_model_params(items: Sequence[str] | None) -> dict[str, dict[str, Any]]:
    """``["ae.epochs=20", "lstm_ae.reduce=max"]`` -> ``{"ae": {"epochs": 20}, ...}``."""
    out: dict[str, dict[str, Any]] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        model, dot, param = key.strip().partition(".")
        if not sep or not dot or not model or not param:
            raise LogsieveError(
                f"bad --set {item!r}: expected MODEL.PARAM=VALUE, e.g. ae.epochs=20"
            )
        out.setdefault(model.lower(), {})[param] = parse_value(value)
    return out
