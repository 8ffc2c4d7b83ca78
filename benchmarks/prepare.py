"""Prepare the real datasets used by the detector results and the study, once, as Parquet.

    python benchmarks/prepare.py            # writes out/data/*.parquet (about 10 s)

Outputs (all under out/data/):
- hdfs2pct_events.parquet, hdfs2pct_templates.csv: the LogLead 2% HDFS sample parsed
- hdfs2pct_sessions.parquet: block sessions, labelled from anomaly_label.csv
- bgl20k_events.parquet, bgl20k_templates.csv: the BGL 20k sample parsed (line labels)
- bgl20k_count20.parquet, bgl20k_count100.parquet, bgl20k_time30m.parquet: windows
- hdfs_deeplog_{train,test_abnormal}.parquet: DeepLog's preprocessed key sequences
- hadoop_{train,test_normal,test_abnormal}.parquet: AIT Hadoop sequences

Everything is deterministic; it is the same pipeline a user runs with the CLI
(`logsieve parse`, `logsieve group`, `logsieve sequences`).
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
    from logsieve.grouping import (
        CountWindows,
        Sessions,
        TimeWindows,
        group,
        read_labels,
        read_sequences,
    )
    from logsieve.io.atomic import atomic_path, write_parquet
    from logsieve.parsing.parser import LogParser, template_counts

    if not data.is_dir():
        sys.exit(f"skipped: {data} not found (needs ../shared/data)")
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}

    def save(name: str, frame) -> None:  # noqa: ANN001
        paths[name] = out / f"{name}.parquet"
        write_parquet(frame, paths[name])

    def save_templates(name: str, events) -> None:  # noqa: ANN001
        paths[name] = out / f"{name}.csv"
        with atomic_path(paths[name], suffix=".csv") as tmp:
            template_counts(events).write_csv(tmp)

    hdfs_events, _ = LogParser("hdfs").parse_files(data / "hdfs_loglead_2pct" / "HDFS_2pct.log.gz")
    save("hdfs2pct_events", hdfs_events)
    save_templates("hdfs2pct_templates", hdfs_events)
    labels = read_labels(data / "hdfs_loglead_2pct" / "anomaly_label.csv")
    save("hdfs2pct_sessions", group(hdfs_events, Sessions(), labels=labels).windows)

    bgl_events, _ = LogParser("bgl").parse_files(data / "bgl_sample_20k" / "BGL_20k.log")
    save("bgl20k_events", bgl_events)
    save_templates("bgl20k_templates", bgl_events)
    save("bgl20k_count20", group(bgl_events, CountWindows(20)).windows)
    save("bgl20k_count100", group(bgl_events, CountWindows(100)).windows)
    save("bgl20k_time30m", group(bgl_events, TimeWindows("30m")).windows)

    for part in ("train", "test_abnormal"):
        save(f"hdfs_deeplog_{part}", read_sequences(data / "hdfs_deeplog" / f"hdfs_{part}"))
    for part in ("train", "test_normal", "test_abnormal"):
        save(f"hadoop_{part}", read_sequences(data / "ait_sequences" / "hadoop_loghub" / f"hadoop_{part}"))
    return paths


if __name__ == "__main__":
    t = time.perf_counter()
    for name, path in prepare().items():
        print(f"{name:<28} {path}")
    print(f"done in {time.perf_counter() - t:.1f} s")
