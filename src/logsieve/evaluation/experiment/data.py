"""The data cache of a run: each dataset parsed, grouped and perturbed once.

Windows tables are Parquet files under ``RUN_DIR/data/<dataset>-<data_id>/``, so
changed inputs never reuse old data; a small in-memory LRU keeps the last few.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from logsieve.errors import LogsieveError
from logsieve.evaluation.experiment.plan import _seed_for
from logsieve.evaluation.experiment.readers import parse_grouping
from logsieve.evaluation.experiment.specs import DatasetSpec, ExperimentConfig
from logsieve.io.atomic import write_json, write_parquet
from logsieve.schema import EVENT_ID, EVENT_IDS, LABEL, TEMPLATE, WINDOW_ID

logger = logging.getLogger(__name__)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-") or "x"


@dataclass
class Prepared:
    """The windows a cell reads, their templates and provenance."""

    windows: pl.DataFrame
    templates: dict[str, str]
    events_path: Path | None
    windows_checksum: str
    info: dict[str, Any]


def windows_checksum(windows: pl.DataFrame) -> str:
    """sha256 of the windows' ids, event ids and labels (order-sensitive), first 16 hex digits."""
    if windows.height == 0:
        return hashlib.sha256(b"").hexdigest()[:16]
    text = windows.select(
        pl.concat_str(
            [
                pl.col(WINDOW_ID).cast(pl.String).fill_null(""),
                pl.col(EVENT_IDS).list.join(" "),
                pl.col(LABEL).cast(pl.String).fill_null("?"),
            ],
            separator="\t",
        ).str.join("\n")
    ).item()
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _templates_from_events(events: pl.DataFrame) -> dict[str, str]:
    t = events.select(EVENT_ID, TEMPLATE).unique(EVENT_ID, keep="first", maintain_order=True)
    return dict(
        zip(t.get_column(EVENT_ID).to_list(), t.get_column(TEMPLATE).to_list(), strict=True)
    )


class DataStore:
    """Parses, groups and perturbs each dataset once; Parquet cache under ``RUN_DIR/data``.

    Files live in ``data/<dataset>-<data_id>/`` so changed inputs never reuse old data.
    A small in-memory LRU keeps the last few windows tables.
    """

    def __init__(self, config: ExperimentConfig, run_dir: Path, memory: int = 4) -> None:
        self.config = config
        self.root = Path(run_dir) / "data"
        self._lru: OrderedDict[tuple[Any, ...], Prepared] = OrderedDict()
        self._memory = memory

    def _dir(self, ds: DatasetSpec) -> Path:
        return self.root / f"{_slug(ds.name)}-{ds.data_id}"

    def _parser(self, ds: DatasetSpec) -> Any:
        from logsieve.parsing.parser import LogParser

        return LogParser(ds.format, **dict(ds.parser))

    def events_path(self, ds: DatasetSpec, noise: str = "none", seed: int | None = None) -> Path:
        """Parquet events table of a raw-log dataset (re-parsed with token noise when asked)."""
        from logsieve.evaluation.noise import ParsingNoise, reparse_with_token_noise

        spec = ParsingNoise.parse(noise)
        clean = self._dir(ds) / "events.parquet"
        if not clean.exists():
            t = time.perf_counter()
            events, _ = self._parser(ds).parse_files(list(ds.log))
            assert events is not None
            write_parquet(events, clean)
            logger.info(
                "%s: parsed %d lines in %.1f s", ds.name, events.height, time.perf_counter() - t
            )
        if spec.level != "events":
            return clean
        noisy = self._dir(ds) / f"events__{_slug(noise)}__s{seed}.parquet"
        if not noisy.exists():
            events = pl.read_parquet(clean)
            protect = ds.session if ds.session else None
            out, info = reparse_with_token_noise(
                list(ds.log),
                events,
                lambda: self._parser(ds),
                spec.rate,
                _seed_for(seed or 0, "tokens"),
                workdir=self._dir(ds),
                protect=protect,
            )
            write_parquet(out, noisy)
            write_json(noisy.with_suffix(".json"), info)
        return noisy

    def _group(self, ds: DatasetSpec, events_path: Path, grouping: str) -> pl.DataFrame:
        from logsieve.grouping.labels import read_labels
        from logsieve.grouping.windows import Sessions, group

        spec = parse_grouping(grouping)
        if isinstance(spec, Sessions):
            spec = Sessions(pattern=ds.session)
        labels = read_labels(ds.labels) if ds.labels is not None else None
        result = group(events_path, spec, labels=labels, key_pattern=ds.key_pattern)
        if result.windows.height == 0:
            raise LogsieveError(f"dataset {ds.name!r}: grouping {grouping!r} gives no windows")
        return result.windows

    def _sequences(self, ds: DatasetSpec) -> tuple[pl.DataFrame, dict[str, str]]:
        from logsieve.grouping.sequences import concat_windows, read_sequences, read_templates

        windows = concat_windows(*[read_sequences(p, label=lab) for p, lab in ds.sequences])
        if ds.order == "window_id":
            windows = windows.sort(WINDOW_ID, maintain_order=True)
        templates: dict[str, str] = {}
        if ds.templates is not None:
            t = read_templates(ds.templates)
            templates = dict(
                zip(
                    t.get_column("event_id").to_list(),
                    t.get_column(TEMPLATE).to_list(),
                    strict=True,
                )
            )
        return windows, templates

    def get(
        self, dataset: str, grouping: str, noise: str = "none", seed: int | None = None
    ) -> Prepared:
        """The windows (after parsing noise) for a cell's data key; built once, then cached."""
        from logsieve.evaluation.noise import ParsingNoise, noisy_templates

        key = (dataset, grouping, noise, seed)
        if key in self._lru:
            self._lru.move_to_end(key)
            return self._lru[key]
        ds = self.config.datasets[dataset]
        spec = ParsingNoise.parse(noise)
        base = self._dir(ds) / f"windows__{_slug(grouping)}"
        name = base.name + ("" if spec.kind == "none" else f"__{_slug(noise)}__s{seed}")
        path = base.with_name(name + ".parquet")
        meta_path = path.with_suffix(".json")
        events_path: Path | None = None
        if ds.kind == "log":
            events_path = self.events_path(ds, noise, seed)
        if path.exists() and meta_path.exists():
            windows = pl.read_parquet(path)
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            templates = meta.pop("templates")
        else:
            t = time.perf_counter()
            info: dict[str, Any] = {}
            if spec.level == "windows":  # merge / split: from the clean windows
                clean = self.get(dataset, grouping)
                windows, info = spec.apply_to_windows(
                    clean.windows, _seed_for(seed or 0, spec.kind)
                )
                templates = noisy_templates(clean.templates, info)
            elif ds.kind == "log":
                assert events_path is not None
                windows = self._group(ds, events_path, grouping)
                templates = _templates_from_events(
                    pl.read_parquet(events_path, columns=[EVENT_ID, TEMPLATE])
                )
                if spec.level == "events":
                    info = json.loads(events_path.with_suffix(".json").read_text(encoding="utf-8"))
            else:
                windows, templates = self._sequences(ds)
            lab = windows.get_column(LABEL)
            meta = {
                "dataset": ds.describe(),
                "grouping": grouping,
                "parsing_noise": noise,
                "seed": seed,
                "windows": windows.height,
                "anomalous": int((lab == 1).sum()),
                "unlabelled": int(lab.null_count()),
                "windows_checksum": windows_checksum(windows),
                "noise_info": info,
                "seconds": time.perf_counter() - t,
            }
            write_parquet(windows, path)
            write_json(meta_path, {**meta, "templates": templates})
            logger.info(
                "%s %s %s: %d windows (%d anomalous) in %.1f s",
                dataset,
                grouping,
                noise,
                windows.height,
                meta["anomalous"],
                meta["seconds"],
            )
        prepared = Prepared(
            windows=windows,
            templates=templates,
            events_path=events_path,
            windows_checksum=meta["windows_checksum"],
            info={k: meta[k] for k in ("windows", "anomalous", "unlabelled", "noise_info")},
        )
        self._lru[key] = prepared
        while len(self._lru) > self._memory:
            self._lru.popitem(last=False)
        return prepared
