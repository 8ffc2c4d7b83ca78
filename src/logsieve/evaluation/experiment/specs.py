"""The validated config objects: datasets, aspects and the experiment as a whole."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

HDFS_BLOCK_PATTERN = r"blk_-?\d+"
SPLITS = ("chronological", "random")
EARLY_METHODS = ("auto", "positions", "prefix")
SCOPES = ("train", "all")
ORDERS = ("file", "window_id")


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset: a raw log to parse and group, or pre-parsed sequences.

    ``data_id`` hashes the content of every input file and the settings that shape the
    data (format, patterns, Drain settings, order), never the paths: moving the data
    keeps finished cells valid, changing a byte recomputes them.
    """

    name: str
    kind: Literal["log", "sequences"]
    log: tuple[Path, ...] = ()
    format: str | None = None
    labels: Path | None = None
    session: str = HDFS_BLOCK_PATTERN
    key_pattern: str = HDFS_BLOCK_PATTERN
    parser: tuple[tuple[str, Any], ...] = ()
    sequences: tuple[tuple[Path, int | None], ...] = ()
    templates: Path | None = None
    order: str = "file"
    family: str = ""
    description: str = ""
    params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    data_id: str = ""

    def inputs(self) -> list[Path]:
        files = list(self.log) + [p for p, _ in self.sequences]
        files += [p for p in (self.labels, self.templates) if p is not None]
        return files

    def settings(self) -> dict[str, Any]:
        """What shapes the data, without paths (part of every cell key)."""
        return {
            "kind": self.kind,
            "format": self.format,
            "session": self.session if self.kind == "log" else None,
            "key_pattern": self.key_pattern if self.kind == "log" and self.labels else None,
            "parser": dict(self.parser),
            "sequence_labels": [lab for _, lab in self.sequences],
            "order": self.order,
        }

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "family": self.family,
            "files": [str(p) for p in self.inputs()],
            "data_id": self.data_id,
            **self.settings(),
        }


@dataclass(frozen=True)
class AspectSpec:
    """One aspect of the study: a grid over its knobs (every list is a grid axis)."""

    name: str
    datasets: tuple[str, ...]
    grouping: Mapping[str, tuple[str, ...]]
    models: tuple[str, ...]
    split: tuple[str, ...] = ("chronological",)
    train: tuple[float, ...] = (0.6,)
    valid: float = 0.1
    test: float | None = None
    class_ratio: tuple[float | None, ...] = (None,)
    class_ratio_scope: str = "train"
    label_noise: tuple[float, ...] = (0.0,)
    robust: tuple[str, ...] = ("none",)
    parsing_noise: tuple[str, ...] = ("none",)
    early: bool = False
    early_method: str = "auto"
    early_max_prefix: int = 0
    seeds: tuple[int, ...] = (0,)
    params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    description: str = ""
    #: (model, dataset) pairs of the grid that cannot run, skipped (a raw-text model on
    #: pre-parsed sequences, ...)
    incompatible: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ExperimentConfig:
    """A validated experiment config (see :func:`load_config`)."""

    path: Path
    name: str
    datasets: Mapping[str, DatasetSpec]
    aspects: Mapping[str, AspectSpec]
    seeds: tuple[int, ...] = (0,)
    valid: float = 0.1
    jobs: int = 1
    description: str = ""
    params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    text: str = ""
