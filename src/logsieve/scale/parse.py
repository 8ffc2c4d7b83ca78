"""``parse --engine dask``: raw logs -> a partitioned events dataset, equal to the local path.

1. **Blocks.** Each plain input is cut into byte ranges of about :data:`BLOCK_BYTES` at line
   boundaries; a gzip file is one block.
2. **Scan (workers).** Each block is read, split and masked by the very
   :class:`~logsieve.parsing.parser.LogParser` methods the local path runs; the worker keeps
   its rows in a temporary part (with each line's index into the block's distinct masked
   messages) and returns those messages, in order of first appearance, with their counts
   and the block's line count.
3. **Mine (client).** The client concatenates the blocks' messages in input order, keeps
   the first occurrence of each, and mines them with :meth:`LogParser.assign`: the same
   messages in the same order as the local path's chunks present them, so every template
   and event id is the same. Line numbers become global from the blocks' line counts.
4. **Write (workers).** Each block's rows get their event ids and final templates
   (:meth:`LogParser.attach_templates`) and become one part of the dataset, with the same
   provenance metadata. The dataset is renamed into place only when every part is written;
   a failed task is retried by Dask.

The parser state records each template's size (the lines it stands for); both paths sum
every line (a message met again in a later chunk adds its count), so the state, and the
whole provenance, is the same too.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from logsieve.errors import InputError, LogsieveError
from logsieve.io.reader import (
    DEFAULT_CHUNK_BYTES,
    DEFAULT_MAX_LINE_BYTES,
    MAX_REPORTED,
    ReadStats,
    display_name,
    is_stdin,
    iter_line_chunks,
)
from logsieve.io.tables import encode_meta
from logsieve.parsing.parser import LogParser, ParseStats
from logsieve.scale.dataset import atomic_dataset, check_dataset_output, part_name
from logsieve.schema import CONTENT, EVENT_ID, LINE_ID, UNSEEN_EVENT_ID

log = logging.getLogger(__name__)

BLOCK_BYTES = 128 * 1024 * 1024
_CODE = "__code"

__all__ = ["BLOCK_BYTES", "Block", "dask_parse", "plan_blocks"]


@dataclass(frozen=True)
class Block:
    """One unit of parallel parsing: a byte range of a plain file, or a whole gzip file."""

    path: str
    byte_range: tuple[int, int] | None  # None: the whole file (gzip)
    index: int


def plan_blocks(paths: list[Path], block_bytes: int = BLOCK_BYTES) -> list[Block]:
    """Byte-range blocks of about ``block_bytes``, each starting and ending at a line start."""
    blocks: list[Block] = []
    for path in paths:
        if is_stdin(path):
            raise LogsieveError("--engine dask reads files; standard input needs --engine local")
        if not path.is_file():
            raise InputError(path, "no such file" if not path.exists() else "not a regular file")
        size = path.stat().st_size
        with open(path, "rb") as fh:
            if fh.read(2) == b"\x1f\x8b":
                blocks.append(Block(str(path), None, len(blocks)))
                continue
            start = 0
            while True:
                end = start + block_bytes
                if end >= size:
                    blocks.append(Block(str(path), (start, size), len(blocks)))
                    break
                fh.seek(end - 1)
                end += len(fh.readline()) - 1  # just after the newline at or after end - 1
                if end >= size:
                    blocks.append(Block(str(path), (start, size), len(blocks)))
                    break
                blocks.append(Block(str(path), (start, end), len(blocks)))
                start = end
    return blocks


@dataclass
class _Scan:
    """What a worker returns for one block."""

    messages: list[str]
    counts: list[int]
    lines: int
    parts: list[str]
    stats: ParseStats
    read: ReadStats = field(default_factory=ReadStats)


def _scan_block(
    parser: LogParser, block: Block, workdir: str, chunk_bytes: int, max_line_bytes: int
) -> _Scan:
    """Split and mask one block; rows go to temporary parts, distinct messages come back."""
    stats = ParseStats()
    rstats = ReadStats()
    index: dict[str, int] = {}
    counts: list[int] = []
    parts: list[str] = []
    chunks = iter_line_chunks(
        block.path, chunk_bytes, 1, rstats, max_line_bytes, byte_range=block.byte_range
    )
    for k, chunk in enumerate(chunks):
        events = parser.structure_lines(chunk.lines, chunk.first_line, stats)
        if parser.mine_templates:
            messages, codes = parser.mask_messages(events[CONTENT])
            local = np.empty(len(messages), dtype=np.uint32)
            for i, msg in enumerate(messages.to_list()):
                j = index.setdefault(msg, len(index))
                if j == len(counts):
                    counts.append(0)
                local[i] = j
            per = np.bincount(codes.to_numpy(), minlength=len(messages))
            for i, n in enumerate(per.tolist()):
                counts[int(local[i])] += n
            events = events.with_columns(pl.Series(_CODE, local).gather(codes).alias(_CODE))
        part = Path(workdir) / f"scan-{block.index:06d}-{k:05d}.parquet"
        events.write_parquet(part, compression="lz4")
        parts.append(str(part))
    return _Scan(list(index), counts, rstats.lines, parts, stats, rstats)


def _write_block(
    parser: LogParser,
    scan_parts: list[str],
    ids: list[str],
    offset: int,
    source: str,
    target: str,
    meta: dict[str, str],
) -> int:
    """Event ids, global line numbers and final templates for one block; one dataset part.

    Returns the number of lines whose message matched no template (``match_only``).
    """
    id_table = pl.Series(EVENT_ID, ids, dtype=pl.String)
    unseen = 0

    def frames() -> Iterator[pl.DataFrame]:
        nonlocal unseen
        for part in scan_parts:
            frame = pl.read_parquet(part).with_columns(pl.col(LINE_ID) + offset)
            if _CODE in frame.columns:
                frame = frame.with_columns(id_table.gather(frame[_CODE]).alias(EVENT_ID))
                unseen += int((frame[EVENT_ID] == UNSEEN_EVENT_ID).sum())
            else:
                frame = frame.with_columns(pl.lit(None, dtype=pl.String).alias(EVENT_ID))
            yield parser.select_event_columns(frame, source)

    parser.write_events(frames(), target, meta)
    for p in scan_parts:
        Path(p).unlink(missing_ok=True)
    return unseen


def _examples(into: list[int], more: list[int], offset: int) -> None:
    room = MAX_REPORTED - len(into)
    if room > 0:
        into.extend(x + offset for x in more[:room])


def dask_parse(
    client: Any,
    parser: LogParser,
    paths: list[Path],
    output: str | Path,
    *,
    block_bytes: int = BLOCK_BYTES,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> ParseStats:
    """Parse ``paths`` on the Dask ``client`` into the dataset directory ``output``.

    ``parser`` is the client's parser (new, or loaded from a state); it is left holding the
    mined templates, as after :meth:`LogParser.parse_files`.
    """
    start = time.perf_counter()
    target = check_dataset_output(output, paths)
    blocks = plan_blocks(paths, block_bytes)
    assert parser.drain_ is not None
    before = len(parser.drain_.clusters)
    light = copy.copy(parser)  # workers split and mask; the Drain tree stays here
    light.drain_ = None
    light._cache = {}
    stats = ParseStats(files=[str(p) for p in paths])
    with atomic_dataset(target) as tmp:
        scans = client.gather(
            client.map(
                _scan_block, [light] * len(blocks), blocks, workdir=str(tmp),
                chunk_bytes=chunk_bytes, max_line_bytes=max_line_bytes,
                key=[f"logsieve-scan-{b.index}-{id(stats)}" for b in blocks],
            )
        )  # fmt: skip
        # mine once, in input order: the union of the blocks' messages, first occurrences
        order: dict[str, int] = {}
        totals: list[int] = []
        for scan in scans:
            for msg, n in zip(scan.messages, scan.counts, strict=True):
                j = order.setdefault(msg, len(order))
                if j == len(totals):
                    totals.append(0)
                totals[j] += n
        if parser.mine_templates:
            ids = parser.assign(pl.Series(list(order), dtype=pl.String), totals)
        else:
            ids = []
        stats.distinct_messages = len(order)
        final = copy.copy(parser)
        final._cache = {}
        meta = encode_meta(parser.provenance())
        futures = []
        offset = 0
        for block, scan in zip(blocks, scans, strict=True):
            block_ids = [ids[order[m]] for m in scan.messages]
            futures.append(
                client.submit(
                    _write_block, final, scan.parts, block_ids, offset,
                    display_name(Path(block.path)), str(tmp / part_name(block.index)), meta,
                    key=f"logsieve-write-{block.index}-{id(stats)}",
                )
            )  # fmt: skip
            _merge(stats, scan, offset)
            offset += scan.lines
        unseen = client.gather(futures)
        stats.unseen_lines = int(sum(unseen))
    stats.templates = len(parser.drain_.clusters)
    stats.new_templates = stats.templates - before
    stats.seconds = time.perf_counter() - start
    log.info(
        "dask: parsed %d lines in %d blocks (%d templates) in %.2fs",
        stats.lines, len(blocks), stats.templates, stats.seconds,
    )  # fmt: skip
    return stats


def _merge(stats: ParseStats, scan: _Scan, offset: int) -> None:
    """Add one block's counts to the run's, with its line numbers made global."""
    s, r = scan.stats, scan.read
    stats.lines += scan.lines
    stats.blank_lines += s.blank_lines
    stats.skipped_lines += s.skipped_lines
    stats.malformed_lines += s.malformed_lines
    _examples(stats.malformed_examples, s.malformed_examples, offset)
    stats.missing_timestamps += s.missing_timestamps
    stats.invalid_utf8_lines += r.invalid_utf8_lines
    _examples(stats.invalid_utf8_examples, r.invalid_utf8_examples, offset)
    stats.truncated_lines += r.truncated_lines
    _examples(stats.truncated_examples, r.truncated_examples, offset)
