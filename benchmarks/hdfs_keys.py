"""Loghub's HDFS template ids for raw HDFS messages.

DeepLog's preprocessed HDFS sessions (hdfs_train, hdfs_test_abnormal) use the numbering of
Loghub's full-dataset template list ``HDFS_templates.csv``: key 5 is E5 "Receiving block",
22 is E22 "allocateBlock", 11 is E11 "PacketResponder ... terminating", and so on (a
normal write reads ``5 5 22 5 11 9 11 9 11 9 26 26 26``). Matching each raw message
against those 30 templates puts raw logs into the same key space, which is how the
DeepLog benchmark measures false positives on real normal blocks, and how the parse
benchmark gets a per-line reference for the HDFS 2% sample (which has no ground truth).
"""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl


def loghub_hdfs_ids(contents: pl.Series, templates_csv: str | Path) -> pl.Series:
    """``E1``..``E30`` per message, the most specific matching template first; else ``unmatched``."""
    tpl = pl.read_csv(templates_csv)
    rows = sorted(
        zip(tpl["EventId"].to_list(), tpl["EventTemplate"].to_list(), strict=True),
        key=lambda r: -len(r[1].replace("<*>", "")),
    )
    frame = contents.rename("c").to_frame().with_columns(pl.lit(None, dtype=pl.String).alias("id"))
    for eid, template in rows:
        rx = "^" + ".*?".join(re.escape(p) for p in template.split("<*>")) + "$"
        frame = frame.with_columns(
            pl.when(pl.col("id").is_null() & pl.col("c").str.contains(rx)).then(pl.lit(eid)).otherwise(pl.col("id")).alias("id")
        )
    return frame["id"].fill_null("unmatched").rename("event_id")
