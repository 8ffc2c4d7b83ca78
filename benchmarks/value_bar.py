"""DeepLog's parameter-value model on the synthetic log (issue 12's bar).

``python benchmarks/value_bar.py [WORKDIR]``: ``synth --seed 1 -n 100000``, parse with
values, block sessions, DeepLog with ``parameter_model=true`` trained on the normal
sessions of the first 60% (10% validation, 30% test, chronological); prints, per injected
kind and for the normal test blocks, how many the value model alone flags, and the
SHA-256 of the model's weights (same seed, same bytes).
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import polars as pl

from logsieve.grouping.specs import build_spec
from logsieve.pipeline import Pipeline
from logsieve.pipeline.jobs import group_job, parse_job, train_job
from logsieve.synth import generate


def main(workdir: Path) -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    gen = generate(workdir / "synth.log", lines=100_000, seed=1)
    parse_job([workdir / "synth.log"], workdir / "events.parquet", format="hdfs", values=True)
    group_job(workdir / "events.parquet", workdir / "windows.parquet", build_spec(),
              labels=gen.labels_path)  # fmt: skip
    model = workdir / "model"
    train_job(workdir / "windows.parquet", "deeplog", {"parameter_model": True}, model,
              split="0.6,0.1,0.3", split_method="chronological", train_normal_only=True)  # fmt: skip
    values = Pipeline.load(model).detector.values_  # type: ignore[attr-defined]
    test = pl.read_parquet(model / "test_windows.parquet")
    flagged = pl.Series("flagged", values.window_scores(test) > values.z_)
    kinds = pl.read_csv(gen.kinds_path).select(pl.col("BlockId").alias("window_id"), "Kind")
    table = (
        test.select("window_id", "label").with_columns(flagged)
        .join(kinds, on="window_id", how="left")
        .with_columns(pl.col("Kind").fill_null("normal"))
        .group_by("Kind").agg(pl.col("flagged").sum(), pl.len().alias("of")).sort("Kind")
    )  # fmt: skip
    for row in table.iter_rows(named=True):
        print(f"{row['Kind']:14} {row['flagged']}/{row['of']}")
    digest = hashlib.sha256((model / "weights.safetensors").read_bytes()).hexdigest()
    print("weights sha256", digest[:16])


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "out/value_bar"))
