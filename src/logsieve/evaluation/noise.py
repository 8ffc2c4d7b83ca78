"""Data noise for the evaluation study: parsing noise and label noise.

Parsing noise (the study's RQ4 compares parsers; here parser *errors* are injected
into one parser's output, at a controlled rate). A spec is a string ``KIND:RATE``:

``none``
    No noise.
``merge:R``
    Under-splitting: ``round(R * T)`` of the ``T`` distinct event ids of the windows
    (chosen uniformly among the ids, seeded) are each merged into another id chosen
    uniformly among the ids that are not merged away. Afterwards there are exactly
    ``T - round(R * T)`` distinct ids. Applied to the windows table.
``split:R``
    Over-splitting: ``round(R * T)`` distinct event ids are each split in two: of the
    ``c`` occurrences of a chosen id, exactly ``floor(c / 2)`` (chosen at random)
    become the new id ``<id>~s``; the rest keep the id. Applied to the windows table.
``tokens:R``
    Token perturbation and re-parse: exactly ``round(R * N)`` of the ``N`` lines with
    a non-empty content (chosen at random) get one content token (chosen at random)
    replaced by a random 8-letter word (letters g-z only, so no mask takes it for a
    number or a hex value); then the whole log is parsed again from scratch with the
    same format and Drain settings, so templates may split (a new template) or
    generalise (the token becomes ``<*>``), as a real parser would. Applied to the
    raw log before grouping (log datasets only).

The noise is applied to the whole dataset (train and test alike): the parser is the
same for both. Every function is deterministic for a given ``seed``.

Label noise: :func:`flip_labels` here only delegates to the one implementation in
:mod:`logsieve.detectors.neural.robust` (``flip_labels(windows, rate, seed)``, written with
the robust-training option), so that the noise the study injects is exactly the noise
the robust models are built for.
"""

from __future__ import annotations

import logging
import math
import re
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
import polars as pl
import pyarrow as pa

from logsieve.errors import LogsieveError
from logsieve.schema import CONTENT, EVENT_IDS, LABEL, LINE_ID

logger = logging.getLogger(__name__)

__all__ = [
    "SPLIT_SUFFIX",
    "ParsingNoise",
    "flip_labels",
    "label_noise_available",
    "merge_events",
    "noisy_templates",
    "perturb_lines",
    "reparse_with_token_noise",
    "split_events",
]

NoiseKind = Literal["none", "merge", "split", "tokens"]
SPLIT_SUFFIX = "~s"
_SPEC = re.compile(r"^\s*(none|merge|split|tokens)\s*(?::\s*([0-9]*\.?[0-9]+(?:[eE]-?\d+)?)\s*)?$")
_WORD_LETTERS = np.frombuffer(b"ghijklmnopqrstuvwxyz", dtype=np.uint8)


@dataclass(frozen=True)
class ParsingNoise:
    """A parsing-noise spec: ``kind`` and ``rate`` (see the module docstring)."""

    kind: NoiseKind = "none"
    rate: float = 0.0

    @classmethod
    def parse(cls, text: str) -> ParsingNoise:
        """``"none"``, ``"merge:0.1"``, ``"split:0.05"``, ``"tokens:0.02"`` -> ParsingNoise."""
        m = _SPEC.match(str(text))
        if not m:
            raise LogsieveError(
                f"bad parsing noise {text!r}: expected none, merge:RATE, split:RATE or tokens:RATE"
            )
        kind, rate = m.group(1), m.group(2)
        if kind == "none":
            if rate is not None and float(rate) != 0:
                raise LogsieveError(f"bad parsing noise {text!r}: 'none' takes no rate")
            return cls()
        if rate is None:
            raise LogsieveError(f"bad parsing noise {text!r}: {kind} needs a rate, e.g. {kind}:0.1")
        value = float(rate)
        if not 0.0 <= value <= 1.0:
            raise LogsieveError(f"bad parsing noise {text!r}: the rate must be in [0, 1]")
        if value == 0:
            return cls()
        return cls(cast(NoiseKind, kind), value)  # the pattern only matches these kinds

    def __str__(self) -> str:
        return "none" if self.kind == "none" else f"{self.kind}:{self.rate:g}"

    @property
    def level(self) -> Literal["none", "events", "windows"]:
        """Where the noise applies: the raw log (``events``) or the windows table."""
        if self.kind == "none":
            return "none"
        return "events" if self.kind == "tokens" else "windows"

    def apply_to_windows(
        self, windows: pl.DataFrame, seed: int
    ) -> tuple[pl.DataFrame, dict[str, Any]]:
        """Apply a ``merge``/``split`` spec to a windows table (identity for the others)."""
        if self.kind == "merge":
            out, mapping = merge_events(windows, self.rate, seed)
            return out, {"merged": mapping}
        if self.kind == "split":
            out, chosen = split_events(windows, self.rate, seed)
            return out, {"split": chosen}
        return windows, {}


# ----------------------------------------------------------------------------- helpers
def _flat(windows: pl.DataFrame) -> tuple[pl.Series, np.ndarray]:
    """Flattened event ids of every window (in order) and the list offsets."""
    col = windows.get_column(EVENT_IDS)
    if col.null_count():
        raise LogsieveError("windows with a null event_ids list cannot take parsing noise")
    lengths = col.list.len().to_numpy().astype(np.int64)
    flat = col.explode()
    if flat.len() != int(lengths.sum()):  # pragma: no cover - depends on explode semantics
        flat = col.explode().drop_nulls()
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return flat, offsets


def _implode(flat: pl.Series, offsets: np.ndarray) -> pl.Series:
    arr = pa.LargeListArray.from_arrays(
        pa.array(offsets, type=pa.int64()), flat.cast(pl.String).to_arrow()
    )
    return pl.Series(EVENT_IDS, pl.from_arrow(arr)).cast(pl.List(pl.String))


def _n_of(rate: float, total: int) -> int:
    return int(min(total, max(0, math.floor(rate * total + 0.5))))


# ----------------------------------------------------------------------------- merge / split
def merge_events(
    windows: pl.DataFrame, rate: float, seed: int = 0
) -> tuple[pl.DataFrame, dict[str, str]]:
    """Merge ``round(rate * T)`` event ids into others; returns (windows, {merged id: kept id}).

    Distinct ids are taken in sorted order before sampling, so the result does not
    depend on row order. At least one id always remains.
    """
    flat, offsets = _flat(windows)
    types = sorted(flat.unique().to_list())
    n = min(_n_of(rate, len(types)), max(len(types) - 1, 0))
    if n == 0:
        return windows, {}
    rng = np.random.default_rng(seed)
    src_idx = rng.choice(len(types), size=n, replace=False)
    is_src = np.zeros(len(types), dtype=bool)
    is_src[src_idx] = True
    kept = [t for t, s in zip(types, is_src, strict=True) if not s]
    dst = rng.integers(0, len(kept), size=n)
    mapping = {types[int(i)]: kept[int(j)] for i, j in zip(src_idx, dst, strict=True)}
    new_flat = flat.replace(mapping)
    logger.info("parsing noise merge:%g: %d of %d event ids merged", rate, n, len(types))
    return windows.with_columns(_implode(new_flat, offsets)), dict(sorted(mapping.items()))


def split_events(
    windows: pl.DataFrame, rate: float, seed: int = 0
) -> tuple[pl.DataFrame, list[str]]:
    """Split ``round(rate * T)`` event ids in two; returns (windows, the split ids, sorted).

    Of the ``c`` occurrences of a split id, exactly ``floor(c / 2)`` random ones become
    ``<id>~s``.
    """
    flat, offsets = _flat(windows)
    types = sorted(flat.unique().to_list())
    n = _n_of(rate, len(types))
    if n == 0:
        return windows, []
    rng = np.random.default_rng(seed)
    chosen = sorted(types[int(i)] for i in rng.choice(len(types), size=n, replace=False))
    frame = pl.DataFrame({"id": flat, "r": rng.random(flat.len())})
    frame = frame.with_columns(
        (
            pl.col("id").is_in(pl.Series(chosen, dtype=pl.String).implode())
            & (pl.col("r").rank("ordinal").over("id") <= (pl.len().over("id") // 2))
        ).alias("variant")
    )
    new_flat = frame.select(
        pl.when(pl.col("variant")).then(pl.col("id") + SPLIT_SUFFIX).otherwise(pl.col("id"))
    ).to_series()
    logger.info(
        "parsing noise split:%g: %d of %d event ids split, %d occurrences changed",
        rate,
        n,
        len(types),
        int(frame.get_column("variant").sum()),
    )
    return windows.with_columns(_implode(new_flat, offsets)), chosen


def noisy_templates(templates: dict[str, str], info: dict[str, Any]) -> dict[str, str]:
    """Templates after merge/split noise: split halves share the template; merged ids vanish."""
    out = dict(templates)
    for old in info.get("merged", {}):
        out.pop(old, None)
    for eid in info.get("split", []):
        if eid in out:
            out[eid + SPLIT_SUFFIX] = out[eid]
    return out


# ----------------------------------------------------------------------------- tokens
def _random_words(rng: np.random.Generator, n: int, length: int = 8) -> list[str]:
    letters = _WORD_LETTERS[rng.integers(0, len(_WORD_LETTERS), size=(n, length))]
    return [bytes(row).decode("ascii") for row in letters] if n else []


def perturb_lines(
    events: pl.DataFrame, rate: float, seed: int = 0, protect: str | None = None
) -> pl.DataFrame:
    """Choose the lines to perturb and their new content.

    Returns ``line_id, content, new_content`` for exactly ``round(rate * N)`` of the
    ``N`` events whose content has at least one eligible token; one eligible token
    (chosen uniformly) is replaced by a random word. Tokens are split on whitespace and
    re-joined with single spaces. Tokens matching the regex ``protect`` (e.g. the
    session key ``blk_-?\\d+``) are never replaced, so the noise does not move lines
    between sessions.
    """
    tokens = pl.col(CONTENT).str.split(" ").list.eval(pl.element().filter(pl.element() != ""))
    frame = events.select(LINE_ID, CONTENT, tokens.alias("_tok"))
    if protect:
        positions = pl.int_range(pl.len()).filter(~pl.element().str.contains(protect))
    else:
        positions = pl.int_range(pl.len())
    frame = frame.with_columns(pl.col("_tok").list.eval(positions).alias("_pos"))
    eligible = frame.filter(pl.col("_pos").list.len() > 0)
    n = _n_of(rate, eligible.height)
    rng = np.random.default_rng(seed)
    if n == 0:
        return eligible.head(0).select(LINE_ID, CONTENT, pl.col(CONTENT).alias("new_content"))
    rows = np.sort(rng.choice(eligible.height, size=n, replace=False))
    chosen = eligible[pl.Series(rows)]
    pick = (pl.Series(rng.random(n)) * pl.col("_pos").list.len()).floor().cast(pl.Int64)
    chosen = chosen.with_columns(
        pl.col("_pos").list.get(pick).alias("_i"),
        pl.Series("_w", _random_words(rng, n)),
    )
    new = pl.concat_list(
        pl.col("_tok").list.slice(0, pl.col("_i")),
        pl.col("_w"),
        pl.col("_tok").list.slice(pl.col("_i") + 1),
    ).list.join(" ")
    return chosen.select(LINE_ID, CONTENT, new.alias("new_content"))


def reparse_with_token_noise(
    paths: Sequence[str | Path],
    events: pl.DataFrame,
    make_parser: Callable[[], Any],
    rate: float,
    seed: int = 0,
    workdir: str | Path | None = None,
    protect: str | None = None,
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Perturb content tokens of the raw log and parse it again (the ``tokens:R`` noise).

    Parameters
    ----------
    paths
        The raw log files, in the order they were parsed into ``events``.
    events
        Their events table (``line_id``, ``content``): tells which part of each raw
        line is the content.
    make_parser
        Builds a fresh :class:`logsieve.parsing.parser.LogParser` (same format and
        Drain settings as the clean parse).
    rate, seed, protect
        See :func:`perturb_lines`.
    workdir
        Where the perturbed copy of the log is written (deleted afterwards).

    Returns
    -------
    (events, info)
        The re-parsed events table (same ``line_id`` numbering) and
        ``{"lines_perturbed": n, "lines": N}``.
    """
    from logsieve.io.reader import iter_line_chunks

    plan = perturb_lines(events, rate, seed, protect)
    tmpdir = Path(tempfile.mkdtemp(prefix=".logsieve-noise-", dir=workdir))
    perturbed = 0
    try:
        target = tmpdir / "perturbed.log"
        first = 1
        with target.open("w", encoding="utf-8", newline="\n") as fh:
            for path in paths:
                for chunk in iter_line_chunks(path, first_line=first):
                    frame = pl.DataFrame({"line": chunk.lines}).with_row_index(
                        LINE_ID, offset=chunk.first_line
                    )
                    frame = frame.with_columns(pl.col(LINE_ID).cast(pl.Int64)).join(
                        plan, on=LINE_ID, how="left", maintain_order="left"
                    )
                    hit = pl.col("new_content").is_not_null() & pl.col("line").str.ends_with(
                        pl.col(CONTENT).fill_null("")
                    )
                    head = pl.col("line").str.slice(
                        0, pl.col("line").str.len_chars() - pl.col(CONTENT).str.len_chars()
                    )
                    out = frame.select(
                        pl.when(hit)
                        .then(head + pl.col("new_content"))
                        .otherwise(pl.col("line"))
                        .alias("line"),
                        hit.alias("hit"),
                    )
                    perturbed += int(out.get_column("hit").sum())
                    lines = out.get_column("line")
                    if lines.len():
                        fh.write("\n".join(lines.to_list()))
                        fh.write("\n")
                    first = chunk.first_line + chunk.lines.len()
        parser = make_parser()
        noisy, _ = parser.parse_files(target)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    if noisy is None:  # pragma: no cover - parse_files returns the table without output=
        raise LogsieveError("re-parse returned no events")
    if noisy.height != events.height:
        logger.warning(
            "token noise: re-parse gave %d events, the clean parse %d", noisy.height, events.height
        )
    if (
        LABEL in events.columns and LABEL not in noisy.columns
    ):  # labels came from elsewhere: keep them
        noisy = noisy.join(
            events.select(LINE_ID, LABEL), on=LINE_ID, how="left", maintain_order="left"
        )
    logger.info(
        "parsing noise tokens:%g: %d of %d lines perturbed and re-parsed",
        rate,
        perturbed,
        events.height,
    )
    return noisy, {
        "lines_perturbed": perturbed,
        "lines_planned": plan.height,
        "lines": events.height,
    }


# ----------------------------------------------------------------------------- labels
def label_noise_available() -> bool:
    """Whether :func:`logsieve.detectors.neural.robust.flip_labels` can be imported."""
    try:
        from logsieve.detectors.neural.robust import flip_labels as _flip  # noqa: F401
    except ImportError:
        return False
    return True


def flip_labels(windows: pl.DataFrame, rate: float, seed: int = 0) -> tuple[pl.DataFrame, int]:
    """Label noise through :func:`logsieve.detectors.neural.robust.flip_labels`.

    Returns the noisy table and the number of windows whose label changed.
    """
    if rate == 0:
        return windows, 0
    try:
        from logsieve.detectors.neural.robust import flip_labels as _flip
    except ImportError as exc:
        raise LogsieveError(
            "label noise needs logsieve.detectors.neural.robust.flip_labels, which is not available"
        ) from exc
    out = _flip(windows, rate, seed)
    if isinstance(out, tuple):
        out = out[0]
    if not isinstance(out, pl.DataFrame) or out.height != windows.height:
        raise LogsieveError("flip_labels must return a windows table with the same rows")
    before = windows.get_column(LABEL)
    after = out.get_column(LABEL)
    changed = int((before.fill_null(-1) != after.fill_null(-1)).sum())
    return out, changed
