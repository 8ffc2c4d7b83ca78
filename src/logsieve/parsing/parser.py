"""From raw lines to the events table: header split, masking, template mining, mapping back.

The repeated work is done once. Header fields are split and variables masked for a whole
chunk of lines at a time by Polars (Rust regex, parallel streaming engine); templates are
mined only for each *distinct* masked message, in order of first appearance, and the
resulting ids are joined back onto every line. A cache of masked message -> template id
carries across chunks and files, so a message seen before costs one hash lookup.

The parser state (masks, Drain tree, ids) saves to JSON and loads back, so logs parsed later
get the same event ids; ``match_only`` never creates templates.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from logsieve._version import __version__
from logsieve.errors import InputError, LogsieveError
from logsieve.formats import CONTENT_FIELD, LogFormat, get_format
from logsieve.formats.base import SplitPlan, split_plan
from logsieve.io.atomic import (
    atomic_path,
    check_output_not_input,
    prepare_output,
    temp_dir,
    write_json,
)
from logsieve.io.reader import (
    DEFAULT_CHUNK_BYTES,
    DEFAULT_MAX_LINE_BYTES,
    MAX_REPORTED,
    ReadStats,
    display_name,
    is_stdin,
    iter_line_chunks,
    prefetch,
)
from logsieve.io.tables import encode_meta, state_hash
from logsieve.parsing.drain import Drain
from logsieve.parsing.masks import DEFAULT_MASKS, Mask, mask_expr, validate_masks
from logsieve.parsing.presets import get_preset
from logsieve.schema import (
    CONTENT,
    EVENT_ID,
    LABEL,
    LINE_ID,
    SOURCE,
    TEMPLATE,
    TIMESTAMP,
    TS_DTYPE,
    UNSEEN_EVENT_ID,
    UNSEEN_TEMPLATE,
)

log = logging.getLogger(__name__)

STATE_VERSION = 1
_MATCHED = "__matched"

Progress = Callable[[int, int], None]  # (bytes read so far, total bytes or 0)


@dataclass
class ParseStats:
    """Counts from one parse run; problems are counted, never fatal."""

    files: list[str] = field(default_factory=list)
    lines: int = 0
    blank_lines: int = 0
    skipped_lines: int = 0
    malformed_lines: int = 0
    malformed_examples: list[int] = field(default_factory=list)
    invalid_utf8_lines: int = 0
    invalid_utf8_examples: list[int] = field(default_factory=list)
    truncated_lines: int = 0  # lines longer than max_line_bytes, cut to it
    truncated_examples: list[int] = field(default_factory=list)
    missing_timestamps: int = 0
    unseen_lines: int = 0
    templates: int = 0
    new_templates: int = 0
    distinct_messages: int = 0
    seconds: float = 0.0

    @property
    def lines_per_second(self) -> float:
        return self.lines / self.seconds if self.seconds > 0 else float("nan")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["lines_per_second"] = round(self.lines_per_second, 1)
        return d


class LogParser:
    """Parse raw log lines of one format into events with stable template ids.

    Parameters
    ----------
    format:
        A built-in format name (``"hdfs"``), a Loghub-notation format string, or a
        :class:`~logsieve.formats.LogFormat`. ``None`` reads each whole line as content.
    masks:
        The masks to apply, in order. ``None`` takes the format's preset (its own masks
        plus the general default set).
    extra_masks:
        Masks applied before the others (``--mask NAME=REGEX`` on the command line).
    depth, sim_th, max_children:
        Drain settings; ``None`` takes the preset's.
    match_only:
        Never create or change templates: lines whose message matches no known template get
        event id ``E0`` and template ``<unseen>``.
    mine_templates:
        False skips masking and template mining: every line keeps its raw message and gets a
        null event id (for the raw-text models, which need no parser).
    values:
        Also record each line's parameter values (``values``, list[str]: the tokens its
        template masks, in order; see :mod:`logsieve.parsing.values`).
    """

    def __init__(
        self,
        format: str | LogFormat | None = "hdfs",
        masks: Sequence[Mask] | None = None,
        extra_masks: Sequence[Mask] = (),
        depth: int | None = None,
        sim_th: float | None = None,
        max_children: int | None = None,
        match_only: bool = False,
        mine_templates: bool = True,
        values: bool = False,
    ) -> None:
        self.values = values
        self.format = format
        self.masks = masks
        self.extra_masks = extra_masks
        self.depth = depth
        self.sim_th = sim_th
        self.max_children = max_children
        self.match_only = match_only
        self.mine_templates = mine_templates
        self.format_: LogFormat | None = None
        self.masks_: tuple[Mask, ...] = ()
        self.drain_: Drain | None = None
        self._cache: dict[str, int | None] = {}
        self._prepare()

    # ------------------------------------------------------------------ setup
    def _prepare(self) -> None:
        self.format_ = None if self.format is None else get_format(self.format)
        preset_name = None
        if self.format_ is not None:
            preset_name = self.format_.preset or self.format_.name
        preset = get_preset(preset_name)
        if self.masks is not None:
            base = tuple(self.masks)
        else:
            base = tuple(preset.masks) + (DEFAULT_MASKS if preset.use_default_masks else ())
        self.masks_ = tuple(self.extra_masks) + base
        validate_masks(self.masks_)
        if self.drain_ is None:
            self.drain_ = Drain(
                depth=self.depth if self.depth is not None else preset.depth,
                sim_th=self.sim_th if self.sim_th is not None else preset.sim_th,
                max_children=self.max_children
                if self.max_children is not None
                else preset.max_children,
            )

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue parsing later with the same ids (plain JSON)."""
        assert self.drain_ is not None
        fmt = self.format_
        return {
            "state_version": STATE_VERSION,
            "logsieve_version": __version__,
            "format": None if fmt is None else (fmt.name if fmt.name != "custom" else fmt.pattern),
            "masks": [m.to_dict() for m in self.masks_],
            "drain": self.drain_.to_dict(),
        }

    def save_state(self, path: str | Path) -> None:
        """Write the parser state to ``path`` (JSON, atomically)."""
        write_json(path, self.state_dict())

    @classmethod
    def load_state(
        cls, path: str | Path, format: str | LogFormat | None = None, match_only: bool = False
    ) -> LogParser:
        """A parser that continues from a saved state; ``format`` overrides the saved one."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(path, f"cannot read parser state: {exc}") from exc
        except json.JSONDecodeError as exc:
            raise InputError(
                path, f"parser state is not valid JSON: {exc.msg}", line=exc.lineno
            ) from exc
        if not isinstance(data, dict) or data.get("state_version") != STATE_VERSION:
            raise InputError(
                path, f"not a logsieve parser state (state_version {STATE_VERSION} expected)"
            )
        try:
            masks = [Mask.from_dict(m) for m in data["masks"]]
            drain = Drain.from_dict(data["drain"])
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(path, f"parser state is damaged: {exc}") from exc
        parser = cls.__new__(cls)
        parser.format = format if format is not None else data.get("format")
        parser.masks = masks
        parser.extra_masks = ()
        parser.depth = drain.depth
        parser.sim_th = drain.sim_th
        parser.max_children = drain.max_children
        parser.match_only = match_only
        parser.mine_templates = True
        parser.values = False
        parser.drain_ = drain
        parser._cache = {}
        parser._prepare()
        return parser

    # ------------------------------------------------------------------ parsing
    def templates(self) -> pl.DataFrame:
        """``event_id, template`` of every template known so far."""
        assert self.drain_ is not None
        items = sorted(self.drain_.clusters.items())
        return pl.DataFrame(
            {
                EVENT_ID: [f"E{cid}" for cid, _ in items],
                TEMPLATE: [tpl for _, (tpl, _size) in items],
            },
            schema={EVENT_ID: pl.String, TEMPLATE: pl.String},
        )

    def provenance(self) -> dict[str, Any]:
        """What an events table records about how it was parsed (see :mod:`logsieve.io.tables`)."""
        state = self.state_dict() if self.mine_templates else None
        tpl = self.templates() if self.mine_templates else None
        fmt = self.format_
        return {
            "table": "events",
            "logsieve_version": __version__,
            "format": None if fmt is None else (fmt.name if fmt.name != "custom" else fmt.pattern),
            "masks": [m.to_dict() for m in self.masks_],
            "templates_mined": self.mine_templates,
            "parser_state": state,
            "parser_state_sha256": state_hash(state),
            "templates": {}
            if tpl is None
            else dict(zip(tpl[EVENT_ID], tpl[TEMPLATE], strict=True)),
        }

    def _structure(self, lines: pl.DataFrame) -> pl.DataFrame:
        """Header split, timestamp and label for a chunk (before masking).

        Formats made of plain separators are split with string splitting on the lines a
        capture-free check accepts (see :class:`~logsieve.formats.base.SplitPlan`); the rest
        go through the fast (backtracking-free) regex and, failing that, the general one.
        Every path yields the same fields for a given line.
        """
        fmt = self.format_
        if fmt is None:
            return lines.with_columns(
                pl.col("line").alias(CONTENT),
                pl.lit(True).alias(_MATCHED),
                pl.lit(None, dtype=TS_DTYPE).alias(TIMESTAMP),
                pl.lit(None, dtype=pl.Int8).alias(LABEL),
            )
        fields = list(fmt.fields)
        plan = split_plan(fmt)
        if plan is not None:
            lf = lines.lazy().with_columns(
                pl.col("line").str.contains(plan.check).alias("__ok"),
                pl.col("line").alias("__rest"),
            )
            # Runs of fields with the same separator are cut in one splitn (n fields + rest):
            # the same as cutting one at a time, since no field holds its separator.
            for names, sep in _separator_runs(plan):
                split = pl.col("__rest").str.splitn(sep, len(names) + 1).alias("__sp")
                lf = (
                    lf.with_columns(split)
                    .with_columns(
                        *(
                            pl.col("__sp").struct.field(f"field_{k}").alias(name)
                            for k, name in enumerate(names)
                        ),
                        pl.col("__sp").struct.field(f"field_{len(names)}").alias("__rest"),
                    )
                    .drop("__sp")
                )
            parts = lf.rename({"__rest": CONTENT_FIELD}).collect(engine="streaming")
            ok = parts["__ok"]
            parts = parts.drop("__ok")
        else:
            parts = (
                lines.lazy()
                .select(
                    LINE_ID,
                    "line",
                    pl.col("line").str.extract_groups(fmt.regex(fast=True)).alias("__p"),
                )
                .collect(engine="streaming")
                .unnest("__p")
            )
            ok = parts[CONTENT_FIELD].is_not_null()
        if not ok.all():
            rest = parts.filter(~ok).select(LINE_ID, "line")
            redo = rest.select(
                LINE_ID, pl.col("line").str.extract_groups(fmt.regex(fast=True)).alias("__p")
            ).unnest("__p")
            bad = redo[CONTENT_FIELD].is_null()
            if bad.any():
                slow = (
                    rest.filter(bad)
                    .select(
                        LINE_ID,
                        pl.col("line").str.extract_groups(fmt.regex(fast=False)).alias("__p"),
                    )
                    .unnest("__p")
                )
                redo = pl.concat([redo.filter(~bad), slow]).select(LINE_ID, *fields)
            parts = pl.concat(
                [
                    parts.filter(ok),
                    parts.filter(~ok).select(LINE_ID, "line").join(redo, on=LINE_ID, how="left"),
                ],
                how="diagonal_relaxed",
            ).sort(LINE_ID)
        content = pl.col(CONTENT_FIELD)
        lf = (
            parts.lazy()
            .with_columns(
                content.is_not_null().alias(_MATCHED),
                content.fill_null(pl.col("line")).alias(CONTENT),
            )
            .drop(CONTENT_FIELD)
        )
        ts = fmt.timestamp.expr() if fmt.timestamp is not None else pl.lit(None, dtype=TS_DTYPE)
        label = pl.lit(None, dtype=pl.Int8)
        if fmt.label_field is not None:
            field_ = pl.col(fmt.label_field)
            label = pl.when(field_.is_null()).then(None).otherwise((field_ != "-").cast(pl.Int8))
        return lf.with_columns(ts.alias(TIMESTAMP), label.alias(LABEL)).collect(engine="streaming")

    def _mask(self, content: pl.Series) -> tuple[pl.Series, pl.Series]:
        """Masked text of each distinct message, and each line's index into it.

        Masks run in order over a shrinking set of strings. A sample of the chunk tells how
        many masks it takes before the messages collapse into few distinct ones (an HDFS
        line is unique until its block id and addresses are masked; after that a few
        thousand messages remain out of hundreds of thousands): those first masks run over
        every line in one parallel pass, the set is deduplicated, and the remaining masks
        only see distinct strings. The choice affects speed only: masks are pure
        functions of the text, so the result is the same either way.
        """
        masks = self.masks_
        head = _first_collapse(content.head(_SAMPLE), masks) if len(content) > 2 * _SAMPLE else 0
        table = content
        if head:
            table = (
                content.to_frame("s")
                .lazy()
                .select(mask_expr(pl.col("s"), masks[:head]))
                .collect(engine="streaming")
                .to_series()
            )
        table, codes = _dedupe(table, None)
        for m in masks[head:]:
            table = table.to_frame("s").select(mask_expr(pl.col("s"), [m])).to_series()
            table, codes = _dedupe(table, codes, sampled=True)
        table, codes = _dedupe(table.str.strip_chars(), codes, force=True)
        if codes is None:
            codes = pl.Series("k", range(len(table)), dtype=pl.UInt32)
        return table, codes

    def _assign(self, messages: pl.Series, counts: list[int]) -> list[str]:
        """Event ids for distinct masked messages, visited in order of first appearance."""
        assert self.drain_ is not None
        cache = self._cache
        ids: list[str] = []
        for msg, cnt in zip(messages.to_list(), counts, strict=True):
            cid = cache.get(msg, -1)
            if cid == -1:
                cid = self.drain_.match(msg) if self.match_only else self.drain_.add(msg, cnt)
                cache[msg] = cid
            elif cid is not None and not self.match_only:
                self.drain_.count(cid, cnt)  # sizes sum every line, whatever the chunking
            ids.append(UNSEEN_EVENT_ID if cid is None else f"E{cid}")
        return ids

    def assign(self, messages: pl.Series, counts: list[int]) -> list[str]:
        """Event ids for distinct masked messages in order of first appearance (mines them
        unless ``match_only``); a message seen before keeps its id."""
        return self._assign(messages, counts)

    def parse_lines(
        self,
        lines: pl.Series,
        first_line: int = 1,
        source: str = "",
        stats: ParseStats | None = None,
    ) -> pl.DataFrame:
        """Parse one chunk of lines; returns the events table without the ``template`` column.

        Templates can still be generalised by later chunks, so the final template text of
        each event id is attached once at the end (:meth:`attach_templates`).
        """
        stats = stats if stats is not None else ParseStats()
        events = self.structure_lines(lines, first_line, stats)
        if self.mine_templates:
            messages, codes = self._mask(events[CONTENT])
            counts = codes.to_numpy().astype("int64", copy=False)
            counts = np.bincount(counts, minlength=len(messages)).tolist()
            stats.distinct_messages += len(messages)
            ids = pl.Series(EVENT_ID, self._assign(messages, counts), dtype=pl.String)
            events = events.with_columns(ids.gather(codes).alias(EVENT_ID))
            stats.unseen_lines += int((events[EVENT_ID] == UNSEEN_EVENT_ID).sum())
        else:
            events = events.with_columns(pl.lit(None, dtype=pl.String).alias(EVENT_ID))
        return self.select_event_columns(events, source)

    def select_event_columns(self, events: pl.DataFrame, source: str) -> pl.DataFrame:
        """The events table's columns, in order, without ``template``."""
        header = [] if self.format_ is None else list(self.format_.header_fields)
        return events.select(
            LINE_ID,
            TIMESTAMP,
            *header,
            CONTENT,
            EVENT_ID,
            LABEL,
            pl.lit(source, dtype=pl.String).alias(SOURCE),
        )

    def mask_messages(self, content: pl.Series) -> tuple[pl.Series, pl.Series]:
        """Distinct masked messages in order of first appearance, and each line's index
        into them (what template mining sees; a pure function of the text)."""
        return self._mask(content)

    def structure_lines(
        self, lines: pl.Series, first_line: int, stats: ParseStats
    ) -> pl.DataFrame:
        """Number, filter and split one chunk of lines (everything before template mining)."""
        frame = pl.DataFrame({"line": lines}).with_row_index(LINE_ID, offset=first_line)
        frame = frame.with_columns(pl.col(LINE_ID).cast(pl.Int64))
        blank = pl.col("line").str.strip_chars() == ""
        skip = pl.lit(False)
        if self.format_ is not None and self.format_.skip_pattern:
            skip = pl.col("line").str.contains(self.format_.skip_pattern) & ~blank
        n_blank, n_skip = frame.select(blank.sum().alias("blank"), skip.sum().alias("skip")).row(0)
        stats.blank_lines += int(n_blank)
        stats.skipped_lines += int(n_skip)
        if n_blank or n_skip:
            frame = frame.filter(~blank & ~skip)
        events = self._structure(frame)
        self._note_malformed(events, stats)
        stats.missing_timestamps += int(events[TIMESTAMP].null_count())
        return events

    def _note_malformed(self, events: pl.DataFrame, stats: ParseStats) -> None:
        bad = events.filter(~pl.col(_MATCHED))
        if bad.height:
            stats.malformed_lines += bad.height
            room = MAX_REPORTED - len(stats.malformed_examples)
            if room > 0:
                stats.malformed_examples.extend(bad[LINE_ID].head(room).to_list())
            log.warning(
                "%d line(s) do not match format %r (first: line %s); "
                "kept with the whole line as content",
                bad.height,
                self.format_.name if self.format_ else None,
                bad[LINE_ID][0],
            )

    def attach_templates(self, frame: pl.DataFrame | pl.LazyFrame) -> pl.LazyFrame:
        """Add the final ``template`` text for each ``event_id`` (unseen -> ``<unseen>``)."""
        if not self.mine_templates:
            lf = frame.lazy()
            names = lf.collect_schema().names()
            at = names.index(EVENT_ID) + 1
            ordered = [*names[:at], TEMPLATE, *names[at:]]
            return lf.with_columns(pl.lit(None, dtype=pl.String).alias(TEMPLATE)).select(ordered)
        tpl = self.templates()
        mapping = dict(zip(tpl[EVENT_ID].to_list(), tpl[TEMPLATE].to_list(), strict=True))
        mapping[UNSEEN_EVENT_ID] = UNSEEN_TEMPLATE
        lf = frame.lazy()
        names = lf.collect_schema().names()
        at = names.index(EVENT_ID) + 1
        template = pl.col(EVENT_ID).replace_strict(
            mapping, default=UNSEEN_TEMPLATE, return_dtype=pl.String
        )
        ordered = [*names[:at], TEMPLATE, *names[at:]]
        lf = lf.with_columns(template.alias(TEMPLATE)).select(ordered)
        if self.values:
            from logsieve.parsing.values import values_expr

            lf = values_expr(lf, mapping)
        return lf

    def parse_files(
        self,
        paths: str | Path | Sequence[str | Path],
        output: str | Path | None = None,
        chunk_bytes: int = DEFAULT_CHUNK_BYTES,
        progress: Progress | None = None,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    ) -> tuple[pl.DataFrame | None, ParseStats]:
        """Parse files in order, as one stream of lines numbered from 1.

        With ``output`` the events go to a Parquet file chunk by chunk, so memory stays
        bounded whatever the input size, and ``None`` is returned in place of the table;
        without it the whole events table is returned.

        A path may be ``"-"`` (standard input), a FIFO or ``/dev/stdin``. Lines longer than
        ``max_line_bytes`` are truncated and counted (``truncated_lines``). An ``output``
        that is one of the inputs, or exists and is not a regular file, is refused.
        """
        files = _input_files(paths)
        if output is not None:
            prepare_output(output)
            check_output_not_input(output, files)
        stats = ParseStats(files=[str(p) for p in files])
        before = len(self.drain_.clusters) if self.drain_ else 0
        start = time.perf_counter()
        sizes = [None if is_stdin(p) or not p.is_file() else p.stat().st_size for p in files]
        total_bytes = sum(s or 0 for s in sizes) if None not in sizes else 0  # 0: unknown
        done_bytes = 0
        cleanup = contextlib.ExitStack()
        tmpdir = cleanup.enter_context(temp_dir(Path(output).parent if output else None, "parse"))
        parts: list[pl.DataFrame | Path] = []  # events chunks, in memory or spilled to disk
        held = 0  # bytes of the chunks in memory (output only)
        try:
            first = 1
            for path in files:
                rstats = ReadStats()
                source = display_name(path)
                chunks = iter_line_chunks(path, chunk_bytes, first, rstats, max_line_bytes)
                for chunk in prefetch(chunks):
                    events = self.parse_lines(chunk.lines, chunk.first_line, source, stats)
                    parts.append(events)
                    if output is not None:
                        # the events keep views into the chunk's text, so what they hold
                        # is counted in input bytes (their own estimate is far lower)
                        held += int(chunk.lines.estimated_size())
                        if held > SPILL_BYTES:
                            _spill(parts, tmpdir)
                            held = 0
                    if progress is not None:
                        done = done_bytes + rstats.source_bytes
                        progress(min(done, total_bytes) if total_bytes else done, total_bytes)
                first += rstats.lines
                stats.lines += rstats.lines
                stats.invalid_utf8_lines += rstats.invalid_utf8_lines
                room = MAX_REPORTED - len(stats.invalid_utf8_examples)
                stats.invalid_utf8_examples.extend(rstats.invalid_utf8_examples[: max(room, 0)])
                stats.truncated_lines += rstats.truncated_lines
                room = MAX_REPORTED - len(stats.truncated_examples)
                stats.truncated_examples.extend(rstats.truncated_examples[: max(room, 0)])
                done_bytes += rstats.source_bytes
                if rstats.lines == 0:
                    log.warning("%s: empty file", path)
            if progress is not None:
                progress(total_bytes or done_bytes, total_bytes)
            result: pl.DataFrame | None
            if output is None:
                frames = [p for p in parts if isinstance(p, pl.DataFrame)]
                table = pl.concat(frames) if frames else self._empty_events()
                result = self.attach_templates(table).collect()
            else:
                with atomic_path(output, suffix=".parquet") as tmp:
                    self._write_final(parts, tmp)
                result = None
        finally:
            cleanup.close()
        stats.templates = len(self.drain_.clusters) if self.drain_ else 0
        stats.new_templates = stats.templates - before
        stats.seconds = time.perf_counter() - start
        log.info(
            "parsed %d lines (%d templates, %d malformed) in %.2fs",
            stats.lines,
            stats.templates,
            stats.malformed_lines,
            stats.seconds,
        )
        return result, stats

    def _write_final(self, parts: list[pl.DataFrame | Path], target: Path) -> None:
        """Write the parsed chunks, in memory or spilled, as one Parquet file.

        Spilled ones are read back one by one, so peak memory does not grow with the
        input. (A streaming sink over all chunks did: about 1 GB more per 5M lines.)
        """
        frames = (pl.read_parquet(p) if isinstance(p, Path) else p for p in parts)
        self.write_events(frames, target)

    def write_events(
        self,
        frames: Iterable[pl.DataFrame],
        target: str | Path,
        meta: Mapping[str, str] | None = None,
    ) -> None:
        """Attach the final templates to each events chunk and append it to one Parquet
        file, one chunk in memory at a time (no chunks: an empty table).

        ``meta``: the file's key-value metadata (default: this parser's provenance).
        """
        import pyarrow.parquet as pq

        meta = encode_meta(self.provenance()) if meta is None else meta
        writer: pq.ParquetWriter | None = None

        def append(frame: pl.DataFrame) -> None:
            nonlocal writer
            table = self.attach_templates(frame).collect().to_arrow()
            if writer is None:
                schema = table.schema.with_metadata(dict(meta))
                writer = pq.ParquetWriter(target, schema, compression="zstd")
            writer.write_table(table.cast(writer.schema))

        try:
            for frame in frames:
                append(frame)
            if writer is None:
                append(self._empty_events())
        finally:
            if writer is not None:
                writer.close()

    def _empty_events(self) -> pl.DataFrame:
        header = [] if self.format_ is None else list(self.format_.header_fields)
        schema: dict[str, Any] = {LINE_ID: pl.Int64, TIMESTAMP: TS_DTYPE}
        schema.update({h: pl.String for h in header})
        schema.update({CONTENT: pl.String, EVENT_ID: pl.String, LABEL: pl.Int8, SOURCE: pl.String})
        return pl.DataFrame(schema=schema)


def _input_files(paths: str | Path | Sequence[str | Path]) -> list[Path]:
    """The input paths, checked to exist and not to be directories (``-`` is stdin)."""
    items = [paths] if isinstance(paths, (str, Path)) else list(paths)
    files = [Path(p) for p in items]
    for p in files:
        if is_stdin(p):
            continue
        if not p.exists():
            raise InputError(p, "no such file")
        if p.is_dir():
            raise InputError(p, "is a directory, not a log file")
    return files


def _separator_runs(plan: SplitPlan) -> list[tuple[list[str], str]]:
    """The plan's fields before Content, grouped into runs that share one separator."""
    runs: list[tuple[list[str], str]] = []
    for name, sep in zip(plan.fields[:-1], plan.separators, strict=True):
        if runs and runs[-1][1] == sep:
            runs[-1][0].append(name)
        else:
            runs.append(([name], sep))
    return runs


SPILL_BYTES = 128 * 1024 * 1024
"""Parsed chunks are kept in memory up to this much input text, then spilled to disk."""


def _spill(parts: list[pl.DataFrame | Path], tmpdir: Path) -> None:
    """Write the in-memory chunks of ``parts`` to ``tmpdir`` (fast codec) and drop them."""
    for k, part in enumerate(parts):
        if isinstance(part, pl.DataFrame):
            path = tmpdir / f"part-{k:06d}.parquet"
            part.write_parquet(path, compression="lz4", statistics=False)
            parts[k] = path


_SAMPLE = 4096


def _first_collapse(sample: pl.Series, masks: Sequence[Mask]) -> int:
    """How many leading masks it takes for ``sample`` to become mostly duplicates (0: none)."""
    frame = sample.to_frame("s")
    for k, m in enumerate(masks, start=1):
        frame = frame.select(mask_expr(pl.col("s"), [m]))
        if frame.to_series().n_unique() <= 0.5 * len(sample):
            return k
    return 0


def _dedupe(
    table: pl.Series, codes: pl.Series | None, sampled: bool = False, force: bool = False
) -> tuple[pl.Series, pl.Series | None]:
    """Replace ``table`` by its distinct values when that saves work, composing the line codes.

    ``codes`` maps each line to a row of ``table`` (None: the identity). With ``sampled``
    a head sample decides first, since a full unique() costs about as much as a mask.
    ``force`` always deduplicates (the final step needs distinct messages).
    """
    if sampled and len(table) > 2 * _SAMPLE and table.head(_SAMPLE).n_unique() > 0.5 * _SAMPLE:
        return table, codes
    uniq = table.unique(maintain_order=True)
    if not force and len(uniq) > 0.5 * len(table):
        return table, codes
    if len(uniq) == len(table):
        return table, codes
    keyed = uniq.to_frame("s").with_row_index("k")
    inverse = table.to_frame("s").join(keyed, on="s", how="left", maintain_order="left")["k"]
    return uniq, inverse if codes is None else inverse.gather(codes)


def template_counts(events: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """``event_id, template, count`` over an events table, most frequent first."""
    return (
        events.lazy()
        .group_by(EVENT_ID, TEMPLATE)
        .len(name="count")
        .sort(["count", EVENT_ID], descending=[True, False])
        .collect()
    )


def parse_file(
    paths: str | Path | Iterable[str | Path],
    format: str | LogFormat | None = "hdfs",
    output: str | Path | None = None,
    state: str | Path | None = None,
    match_only: bool = False,
    extra_masks: Sequence[Mask] = (),
    progress: Progress | None = None,
    values: bool = False,
    **parser_params: Any,
) -> tuple[pl.DataFrame | None, ParseStats, LogParser]:
    """Parse one or more log files into the events table (the API behind ``logsieve parse``).

    With ``state`` pointing at an existing file the parser continues from it; the updated
    state is written back there (unless ``match_only``).
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    paths = list(paths)
    if state is not None and Path(state).exists():
        if extra_masks or parser_params:
            raise LogsieveError(
                "masks and Drain settings come from the saved state; "
                "do not pass them with an existing --state"
            )
        parser = LogParser.load_state(state, format=format, match_only=match_only)
    else:
        if match_only:
            raise LogsieveError("--match-only needs an existing parser state (--state FILE)")
        parser = LogParser(
            format=format, extra_masks=extra_masks, match_only=match_only, **parser_params
        )
    parser.values = values
    table, stats = parser.parse_files(paths, output=output, progress=progress)
    if state is not None and not match_only and parser.mine_templates:
        parser.save_state(state)
    return table, stats, parser
