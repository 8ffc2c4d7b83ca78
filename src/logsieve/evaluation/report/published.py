"""Published numbers of Le & Zhang (ICSE'22) to put beside ours.

The values live in ``published.json`` next to this module (read with
:mod:`importlib.resources`), one row per value set, each with the image of the study it
was transcribed from (``source``); see the file's ``description`` for the tables.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import polars as pl

#: our model names -> the study's
STUDY_MODELS = {
    "deeplog": "DeepLog",
    "loganomaly": "LogAnomaly",
    "plelog": "PLELog",
    "logrobust": "LogRobust",
    "cnn": "CNN",
}


def _load() -> list[dict[str, Any]]:
    text = (
        resources.files("logsieve.evaluation.report")
        .joinpath("published.json")
        .read_text(encoding="utf-8")
    )
    rows: list[dict[str, Any]] = json.loads(text)["rows"]
    return rows


#: The study's published values, one dict per value set (``published.json``).
PUBLISHED: list[dict[str, Any]] = _load()


def published_table() -> pl.DataFrame:
    """:data:`PUBLISHED` as a DataFrame."""
    return pl.DataFrame(PUBLISHED, infer_schema_length=None)
