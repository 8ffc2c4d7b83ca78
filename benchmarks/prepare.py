"""Prepare the real datasets used by the detector results and the study, once, as Parquet.

    python benchmarks/prepare.py            # writes out/data/*.parquet (about 10 s)

Outputs (all under out/data/):
- hdfs2pct_events.parquet, hdfs2pct_templates.csv: the LogLead 2% HDFS sample parsed
- hdfs2pct_sessions.parquet: block sessions, labelled from anomaly_label.csv
- bgl20k_events.parquet, bgl20k_templates.csv: the BGL 20k sample parsed (line labels)
- bgl20k_count20.parquet, bgl20k_count100.parquet, bgl20k_time30m.parquet: windows
- hdfs_deeplog_{train,test_abnormal}.parquet: DeepLog's preprocessed key sequences
- hadoop_{train,test_normal,test_abnormal,test}.parquet: AIT Hadoop sequences

Everything is deterministic, and made by the jobs behind the CLI, so it equals:

    logsieve parse HDFS_2pct.log.gz --format hdfs -o out/data/hdfs2pct_events.parquet \
        --templates-out out/data/hdfs2pct_templates.csv
    logsieve group out/data/hdfs2pct_events.parquet --labels anomaly_label.csv \
        -o out/data/hdfs2pct_sessions.parquet
    logsieve parse BGL_20k.log --format bgl -o out/data/bgl20k_events.parquet ...
    logsieve group out/data/bgl20k_events.parquet --window 20 -o out/data/bgl20k_count20.parquet
    logsieve group out/data/bgl20k_events.parquet --time 30m -o out/data/bgl20k_time30m.parquet
    logsieve sequences hadoop_train -o out/data/hadoop_train.parquet
    logsieve sequences hadoop_test_normal hadoop_test_abnormal -o out/data/hadoop_test.parquet
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("LOGSIEVE_SHARED_DATA", REPO.parent / "shared" / "data"))
OUT = REPO / "out" / "data"


def prepare(out: Path = OUT, data: Path = DATA) -> dict[str, Path]:
    """Run the CLI's jobs (``logsieve parse``, ``group``, ``sequences``) on the shared data."""
    from logsieve.grouping.specs import build_spec
    from logsieve.pipeline.jobs import group_job, parse_job, sequences_job

    if not data.is_dir():
        sys.exit(f"skipped: {data} not found (needs ../shared/data)")
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}

    def path(name: str, suffix: str = ".parquet") -> Path:
        paths[name] = out / f"{name}{suffix}"
        return paths[name]

    hdfs = path("hdfs2pct_events")
    parse_job([data / "hdfs_loglead_2pct" / "HDFS_2pct.log.gz"], hdfs, format="hdfs",
              templates_out=path("hdfs2pct_templates", ".csv"))
    group_job(hdfs, path("hdfs2pct_sessions"), build_spec(),
              labels=data / "hdfs_loglead_2pct" / "anomaly_label.csv")

    bgl = path("bgl20k_events")
    parse_job([data / "bgl_sample_20k" / "BGL_20k.log"], bgl, format="bgl",
              templates_out=path("bgl20k_templates", ".csv"))
    group_job(bgl, path("bgl20k_count20"), build_spec(window="20"))
    group_job(bgl, path("bgl20k_count100"), build_spec(window="100"))
    group_job(bgl, path("bgl20k_time30m"), build_spec(time="30m"))

    for part in ("train", "test_abnormal"):
        sequences_job([data / "hdfs_deeplog" / f"hdfs_{part}"], path(f"hdfs_deeplog_{part}"))
    hadoop = data / "ait_sequences" / "hadoop_loghub"
    for part in ("train", "test_normal", "test_abnormal"):
        sequences_job([hadoop / f"hadoop_{part}"], path(f"hadoop_{part}"))
    sequences_job([hadoop / "hadoop_test_normal", hadoop / "hadoop_test_abnormal"], path("hadoop_test"))
    return paths


if __name__ == "__main__":
    t = time.perf_counter()
    for name, path in prepare().items():
        print(f"{name:<28} {path}")
    print(f"done in {time.perf_counter() - t:.1f} s")
