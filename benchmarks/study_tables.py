"""The compact tables of docs/study.md, from a finished study run.

    logsieve experiment experiments/study.toml -o out/study --jobs 2
    python benchmarks/study_tables.py out/study > /tmp/tables.md

Every cell is "ours" (F1 mean over the seeds of the run, with the standard deviation when
there is more than one seed), followed by "/ published" where the ICSE'22 study
(Le & Zhang, LogADEmpirical; ../shared/docs/PEERS.md section 2.5) has a number for the
same model and setting. `logsieve report RUN_DIR` has the full tables (P, R, specificity,
ROC-AUC, PR-AUC, MCC, times) and the plots; this script only reshapes results.parquet.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from logsieve.evaluation.report import STUDY_MODELS, published_table

NEURAL = ["deeplog", "loganomaly", "plelog", "logrobust", "cnn"]
CLASSICAL = ["pca", "invariants", "logclustering", "iforest", "ocsvm", "lof", "lr", "svm", "dtree"]


def _cell(mean: float | None, std: float | None, n: int, pub: float | None) -> str:
    if mean is None:
        return "–"
    text = f"{mean:.3f}" + (f" ± {std:.2f}" if n > 1 and std is not None else "")
    return text + (f" / {pub:.2f}" if pub is not None else "")


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


@functools.cache
def _published_frame() -> pl.DataFrame:
    return published_table()


def _published(family: str, model: str, **match: object) -> float | None:
    pub = _published_frame()
    name = STUDY_MODELS.get(model)
    if name is None:
        return None
    frame = pub.filter(pl.col("family") == family, pl.col("model") == name)
    for key, value in match.items():
        if key not in frame.columns:
            return None
        frame = frame.filter(pl.col(key) == value)
    return None if frame.height != 1 else float(frame.get_column("f1")[0])


def pivot(
    ok: pl.DataFrame,
    knob: str,
    values: Sequence[object],
    models: Sequence[str],
    *,
    label: str,
    metric: str = "f1",
    published: dict[object, dict[str, object]] | None = None,
    family: str = "",
) -> str:
    """Rows = models, columns = ``knob`` values; mean ± std of ``metric`` over seeds."""
    stats = ok.group_by("model", knob).agg(
        pl.col(metric).mean().alias("m"), pl.col(metric).std().alias("s"), pl.len().alias("n")
    )
    rows = []
    for model in models:
        row = [model]
        for value in values:
            hit = stats.filter(pl.col("model") == model, pl.col(knob) == value)
            if hit.height == 0:
                row.append("–")
                continue
            pub = _published(family, model, **published[value]) if published and value in published else None
            row.append(_cell(hit["m"][0], hit["s"][0], int(hit["n"][0]), pub))
        rows.append(row)
    return _table([label, *[str(v) for v in values]], rows)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path)
    args = ap.parse_args(argv)
    path = args.run_dir / "results.parquet"
    if not path.exists():
        sys.exit(f"{path} missing: run `logsieve experiment` (or `logsieve report`) first")
    res = pl.read_parquet(path).filter(pl.col("status") == "ok")
    out: list[str] = []

    def aspect(name: str) -> pl.DataFrame:
        return res.filter(pl.col("aspect") == name)

    # RQ1: split
    split = aspect("split")
    for ds, grouping in (("hdfs", "session"), ("bgl", "count:20")):
        part = split.filter(pl.col("dataset") == ds)
        pub = {"chronological": {"grouping": grouping, "split": "chronological"}, "random": {"split": "random"}}
        if ds == "hdfs":
            pub = {"chronological": {"grouping": "session"}}
        out.append(f"### RQ1 split, {ds} ({grouping}): F1 ours / published")
        out.append(pivot(part, "split", ["chronological", "random"], NEURAL + CLASSICAL, label="model",
                         published=pub, family=ds))
        leak = part.group_by("split").agg(pl.col("leakage_fraction").mean()).sort("split")
        out.append("leakage (test windows seen verbatim in training): " + ", ".join(
            f"{r['split']} {r['leakage_fraction']:.1%}" for r in leak.iter_rows(named=True)))
    had = aspect("split_hadoop")
    if had.height:
        out.append("### RQ1 split, Hadoop sequences: MCC (F1 is high for anyone who flags all)")
        models = [m for m in NEURAL + CLASSICAL if m in set(had["model"])]
        out.append(pivot(had, "split", ["chronological", "random"], models, label="model", metric="mcc"))

    # RQ2: grouping
    grouping = aspect("grouping")
    if grouping.height:
        values = ["count:20", "count:100", "count:200", "time:30m"]
        out.append("### RQ2 grouping, BGL (chronological): F1 ours / published")
        out.append(pivot(grouping, "grouping", values, NEURAL + CLASSICAL, label="model",
                         published={v: {"grouping": v} for v in values}, family="bgl"))

    # RQ3: class ratio
    ratio = aspect("class_ratio")
    if ratio.height:
        values = sorted(set(ratio["class_ratio"].drop_nulls()))
        models = [m for m in NEURAL + CLASSICAL if m in set(ratio["model"])]
        for ds in ("hdfs", "bgl"):
            out.append(f"### RQ3 anomaly share in training, {ds}: F1 ours / published")
            out.append(pivot(ratio.filter(pl.col("dataset") == ds), "class_ratio", values, models,
                             label="model", published={v: {"class_ratio": v} for v in values}, family=ds))

    # RQ4: label noise (+ robust), parsing noise
    noise = pl.concat([aspect("label_noise"), aspect("label_noise_robust")], how="diagonal_relaxed")
    if noise.height:
        noise = noise.with_columns(
            pl.when(pl.col("robust").cast(pl.Utf8).is_in(["true", "True", "confident", "1"]))
            .then(pl.col("model") + " +confident")
            .otherwise(pl.col("model"))
            .alias("model")
        )
        values = sorted(set(noise["label_noise"].drop_nulls()))
        present = set(noise["model"])
        models = [name for m in NEURAL + CLASSICAL for name in (m, f"{m} +confident") if name in present]
        for ds in ("hdfs", "bgl"):
            out.append(f"### RQ4 label noise, {ds}: F1 ours / published (10%: read off a plot)")
            out.append(pivot(noise.filter(pl.col("dataset") == ds), "label_noise", values, models,
                             label="model", published={0.1: {"label_noise": 0.1}}, family=ds))
    parsing = aspect("parsing_noise")
    if parsing.height:
        values = ["none", "merge:0.1", "split:0.1", "tokens:0.02"]
        models = [m for m in NEURAL + CLASSICAL if m in set(parsing["model"])]
        for ds in ("hdfs", "bgl"):
            out.append(f"### RQ4 parsing noise, {ds}: F1")
            out.append(pivot(parsing.filter(pl.col("dataset") == ds), "parsing_noise", values, models, label="model"))

    # RQ5: early detection
    early = aspect("early")
    if early.height:
        stats = early.group_by("dataset", "grouping", "model").agg(
            pl.col("early_n").mean(), pl.col("early_median").mean(), pl.col("early_p75").mean(),
            pl.col("early_p90").mean(), pl.col("early_median_fraction").mean(), pl.col("f1").mean(),
        )
        rows = []
        for ds, grp in (("hdfs", "session"), ("bgl", "count:100"), ("bgl", "time:30m")):
            for model in NEURAL + CLASSICAL:
                hit = stats.filter(pl.col("dataset") == ds, pl.col("grouping") == grp, pl.col("model") == model)
                if hit.height == 0:
                    continue
                r = hit.row(0, named=True)

                def num(v: object, fmt: str = "{:.0f}") -> str:
                    return "–" if v is None else fmt.format(v)

                rows.append([f"{ds} {grp}", model, num(r["early_n"]), num(r["early_median"]), num(r["early_p75"]),
                             num(r["early_p90"]), num(r["early_median_fraction"], "{:.0%}"), num(r["f1"], "{:.3f}")])
        out.append("### RQ5 early detection: lines read before the first alert (detected anomalous windows)")
        out.append(_table(["data", "model", "detected", "median", "p75", "p90", "median share of window", "F1"], rows))

    print("\n\n".join(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
