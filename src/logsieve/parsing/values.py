"""Parameter values of parsed lines: the tokens a line's template masks, in order.

DeepLog's parameter-value model (Du et al., CCS 2017, section 3.2) reads, for every line,
the values its template leaves open. Drain templates have one token per message token
(whitespace split) and masks never span whitespace, so the values of a line are its
content tokens at the positions where its template has a wildcard. Everything here is
vectorised: the wildcard positions are computed once per template, then one
``list.gather`` per chunk picks the tokens.
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from logsieve.schema import CONTENT, ELAPSED, EVENT_ID, VALUES

__all__ = ["ELAPSED", "VALUES", "values_expr", "wildcard_positions"]


def wildcard_positions(templates: Mapping[str, str], wildcard: str = "<*>") -> pl.DataFrame:
    """``event_id, __pos``: the 0-based token positions of each template's wildcards."""
    ids = list(templates)
    pos = [
        [i for i, tok in enumerate(str(templates[k]).split()) if wildcard in tok] for k in ids
    ]
    return pl.DataFrame(
        {EVENT_ID: ids, "__pos": pos}, schema={EVENT_ID: pl.String, "__pos": pl.List(pl.UInt32)}
    )


def values_expr(
    frame: pl.LazyFrame, templates: Mapping[str, str], wildcard: str = "<*>"
) -> pl.LazyFrame:
    """``frame`` with a ``values`` list column (the content tokens under the wildcards).

    Lines whose event has no template (unseen, or no templates mined) get an empty list;
    a position past the end of a line's tokens gives a null value.
    """
    positions = wildcard_positions(templates, wildcard).lazy()
    names = frame.collect_schema().names()
    tokens = pl.col(CONTENT).str.extract_all(r"\S+")
    if not templates:
        return frame.with_columns(pl.lit([], dtype=pl.List(pl.String)).alias(VALUES))
    joined = frame.join(positions, on=EVENT_ID, how="left", maintain_order="left")
    picked = (
        pl.when(pl.col("__pos").is_null())
        .then(pl.lit([], dtype=pl.List(pl.String)))
        .otherwise(tokens.list.gather(pl.col("__pos").fill_null([]), null_on_oob=True))
    )
    return joined.with_columns(picked.alias(VALUES)).select(*names, VALUES)
