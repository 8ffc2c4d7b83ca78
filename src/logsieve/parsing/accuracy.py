"""Parsing accuracy against ground truth (Loghub ``*_structured.csv`` files).

Metrics
-------
GA (grouping accuracy; Zhu et al., ICSE-SEIP'19, logpai/logparser's evaluator)
    A line counts as correct when the set of lines that share its predicted id is exactly
    the set of lines that share its true id. GA = correct lines / lines.
PA (parsing accuracy; Dai et al. "Logram", Liu et al. "UniParser")
    Fraction of lines whose predicted template equals the true template after both are
    normalised by :func:`normalize_template`.
F1-GA (group-level F-measure; template-level metrics proposed by Khan et al., ICSE'22
    "Guidelines for assessing the accuracy of log message template identification
    techniques", group-level form as in Loghub-2.0 / Jiang et al., ISSTA'24)
    A predicted group is correct when its line set equals one true group's line set.
    Precision = correct groups / predicted groups, recall = correct groups / true groups,
    F1 their harmonic mean.

Everything is a group-by over (truth, prediction) pairs, so it runs on millions of lines.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl

from logsieve.errors import InputError

__all__ = [
    "evaluate",
    "f1_grouping",
    "grouping_accuracy",
    "load_truth",
    "normalize_template",
    "normalize_template_expr",
    "parsing_accuracy",
]

_WILD = "<*>"


def _pairs_frame(truth: Sequence[Any] | pl.Series, pred: Sequence[Any] | pl.Series) -> pl.DataFrame:
    t = truth if isinstance(truth, pl.Series) else pl.Series(list(truth))
    p = pred if isinstance(pred, pl.Series) else pl.Series(list(pred))
    if t.len() != p.len():
        raise ValueError(f"truth has {t.len()} items but prediction has {p.len()}")
    # strings make 1 and "1" the same label, and nulls a label of their own
    return pl.DataFrame(
        {
            "t": t.cast(pl.String).fill_null("\x00null"),
            "p": p.cast(pl.String).fill_null("\x00null"),
        }
    )


def _pair_table(df: pl.DataFrame) -> pl.DataFrame:
    """One row per (truth, pred) pair with its size and the sizes of both groups."""
    return (
        df.group_by("t", "p")
        .len("n_tp")
        .with_columns(
            pl.col("n_tp").sum().over("t").alias("n_t"),
            pl.col("n_tp").sum().over("p").alias("n_p"),
        )
        .with_columns(
            ((pl.col("n_tp") == pl.col("n_t")) & (pl.col("n_tp") == pl.col("n_p"))).alias("ok")
        )
    )


def grouping_accuracy(truth: Sequence[Any] | pl.Series, pred: Sequence[Any] | pl.Series) -> float:
    """Grouping accuracy (GA) of predicted group ids against true ones.

    Parameters
    ----------
    truth, pred : sequences of the same length
        Group label per line (any hashable values; compared as strings).

    Returns
    -------
    float
        Fraction of lines whose predicted group equals their true group as line sets
        (NaN for empty input).
    """
    df = _pairs_frame(truth, pred)
    if df.height == 0:
        return math.nan
    pairs = _pair_table(df)
    return float(pairs.filter("ok")["n_tp"].sum()) / df.height


def f1_grouping(
    truth: Sequence[Any] | pl.Series, pred: Sequence[Any] | pl.Series
) -> dict[str, float]:
    """Group-level precision, recall and F1 (F1-GA).

    Returns
    -------
    dict
        ``precision``, ``recall``, ``f1``, ``n_correct``, ``n_truth_groups``,
        ``n_pred_groups``.
    """
    df = _pairs_frame(truth, pred)
    if df.height == 0:
        return {
            "precision": math.nan,
            "recall": math.nan,
            "f1": math.nan,
            "n_correct": 0,
            "n_truth_groups": 0,
            "n_pred_groups": 0,
        }
    pairs = _pair_table(df)
    n_ok = int(pairs["ok"].sum())
    n_t = int(pairs["t"].n_unique())
    n_p = int(pairs["p"].n_unique())
    prec = n_ok / n_p
    rec = n_ok / n_t
    f1 = 0.0 if prec + rec == 0 else 2 * prec * rec / (prec + rec)
    return {
        "precision": prec,
        "recall": rec,
        "f1": f1,
        "n_correct": n_ok,
        "n_truth_groups": n_t,
        "n_pred_groups": n_p,
    }


def normalize_template_expr(expr: pl.Expr) -> pl.Expr:
    """Canonical form of templates for PA.

    Whitespace runs become one space; every token that contains ``<*>`` becomes ``<*>``
    (so ``blk_<*>``, ``/<*>:<*>`` and ``<*>`` are equal); then a run of consecutive
    wildcard tokens becomes one ``<*>`` (``<*> <*> x`` equals ``<*> x``), because a
    parser and a labeller may split one variable field into a different number of tokens.
    """
    return (
        expr.str.replace_all(r"\S*<\*>\S*", _WILD)
        .str.replace_all(r"<\*>(?:\s+<\*>)+", _WILD)
        .str.replace_all(r"\s+", " ")
        .str.strip_chars()
    )


def normalize_template(template: str) -> str:
    """:func:`normalize_template_expr` for one string."""
    return pl.select(normalize_template_expr(pl.lit(template, dtype=pl.String))).item()


def parsing_accuracy(
    truth_templates: Sequence[str] | pl.Series, pred_templates: Sequence[str] | pl.Series
) -> float:
    """Fraction of lines whose normalised predicted template equals the true one.

    See :func:`normalize_template_expr` for the normalisation (applied to both sides).
    """
    t = truth_templates if isinstance(truth_templates, pl.Series) else pl.Series(
        list(truth_templates), dtype=pl.String
    )
    p = pred_templates if isinstance(pred_templates, pl.Series) else pl.Series(
        list(pred_templates), dtype=pl.String
    )
    if t.len() != p.len():
        raise ValueError(f"truth has {t.len()} templates but prediction has {p.len()}")
    if t.len() == 0:
        return math.nan
    df = pl.DataFrame({"t": t.cast(pl.String), "p": p.cast(pl.String)})
    # normalise the distinct templates only, then compare per line
    uniq = (
        pl.concat([df.select(s=pl.col("t")), df.select(s=pl.col("p"))])
        .unique()
        .with_columns(norm=normalize_template_expr(pl.col("s")))
    )
    lut = dict(zip(uniq["s"].to_list(), uniq["norm"].to_list(), strict=True))
    eq = df.select(
        (
            pl.col("t").replace_strict(lut, return_dtype=pl.String)
            == pl.col("p").replace_strict(lut, return_dtype=pl.String)
        ).fill_null(False)
    ).to_series()
    return float(eq.sum()) / df.height


def load_truth(path: str | Path) -> pl.DataFrame:
    """Read a Loghub ground-truth file.

    Accepts ``<S>_2k.log_structured.csv`` and ``<S>_2k.log_structured_corrected.csv``
    (columns ``LineId, <header fields>, Content, EventId, EventTemplate``).

    Returns
    -------
    polars.DataFrame
        ``line_id`` (Int64), ``content``, ``event_id``, ``template`` (String).
    """
    path = Path(path)
    try:
        df = pl.read_csv(path, infer_schema=False, encoding="utf8-lossy")
    except FileNotFoundError:
        raise InputError(path, "no such file") from None
    except (pl.exceptions.ComputeError, pl.exceptions.NoDataError) as exc:
        raise InputError(path, f"not a readable CSV ({str(exc).splitlines()[0]})") from None
    need = ["LineId", "Content", "EventId", "EventTemplate"]
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise InputError(path, f"missing ground-truth column(s) {', '.join(missing)}")
    try:
        return df.select(
            pl.col("LineId").cast(pl.Int64).alias("line_id"),
            pl.col("Content").fill_null("").alias("content"),
            pl.col("EventId").alias("event_id"),
            pl.col("EventTemplate").alias("template"),
        )
    except pl.exceptions.InvalidOperationError:
        raise InputError(path, "LineId is not an integer column") from None


def evaluate(truth_df: pl.DataFrame, pred_df: pl.DataFrame) -> dict[str, float]:
    """All metrics of a prediction against ground truth, joined on ``line_id``.

    Parameters
    ----------
    truth_df : polars.DataFrame
        ``line_id``, ``event_id``, ``template`` (as from :func:`load_truth`). Lines with a
        null true ``event_id`` are left out, as in logparser's evaluator.
    pred_df : polars.DataFrame
        ``line_id``, ``event_id``, and ``template`` (PA is NaN without it).

    Returns
    -------
    dict
        ``GA``, ``PA``, ``F1_GA``, ``PGA``, ``RGA``, ``n_truth_groups``,
        ``n_pred_groups``, ``n_lines``.

    Raises
    ------
    ValueError
        If some true line has no prediction.
    """
    t = truth_df.filter(pl.col("event_id").is_not_null()).select(
        "line_id", t_id="event_id", t_tpl="template"
    )
    pcols = ["line_id", pl.col("event_id").alias("p_id")]
    has_tpl = "template" in pred_df.columns
    if has_tpl:
        pcols.append(pl.col("template").alias("p_tpl"))
    p = pred_df.select(pcols)
    j = t.join(p, on="line_id", how="left")
    if j["p_id"].null_count():
        raise ValueError(f"{j['p_id'].null_count()} ground-truth lines have no prediction")
    f1 = f1_grouping(j["t_id"], j["p_id"])
    return {
        "GA": grouping_accuracy(j["t_id"], j["p_id"]),
        "PA": parsing_accuracy(j["t_tpl"], j["p_tpl"]) if has_tpl else math.nan,
        "F1_GA": f1["f1"],
        "PGA": f1["precision"],
        "RGA": f1["recall"],
        "n_truth_groups": f1["n_truth_groups"],
        "n_pred_groups": f1["n_pred_groups"],
        "n_lines": j.height,
    }
