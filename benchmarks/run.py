"""logsieve benchmarks: speed and accuracy side by side with the peers, printed as tables.

    python benchmarks/run.py parse      # logsieve vs drain3-improved on HDFS 2% + 11M synthetic lines
    python benchmarks/run.py loghub     # grouping accuracy on the 16 Loghub 2k systems
    python benchmarks/run.py deeplog    # DeepLog: logsieve vs the PyPI `deeplog` package

Each measured run happens in a fresh subprocess, so peak memory (ru_maxrss) belongs to that
run alone. Numbers depend on the machine; the README states where its table was measured.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("LOGSIEVE_SHARED_DATA", REPO.parent / "shared" / "data"))
WORK = REPO / "out" / "bench"
HDFS_2PCT = DATA / "hdfs_loglead_2pct" / "HDFS_2pct.log.gz"
HDFS_TEMPLATES = DATA / "loghub_2k" / "HDFS" / "HDFS_templates.csv"


def _child(code: str, setup: str = "") -> dict:
    """Run ``setup`` then ``code`` in a fresh interpreter; the code ends by calling ``done(**numbers)``."""
    prelude = textwrap.dedent(
        """
        import json, resource, sys, time
        def done(**kw):
            kw["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(json.dumps(kw))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(setup) + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    if out.returncode != 0 or not out.stdout.strip():
        sys.exit(f"benchmark child failed (exit {out.returncode}):\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _truth_code() -> str:
    """Code (for a child) defining ``hdfs_truth(contents) -> list[str]``: the reference ids.

    The 2% sample has no per-line ground truth; Loghub's full-dataset HDFS template list
    (E1..E30) gives one (benchmarks/hdfs_keys.py). Both parsers are scored against it.
    """
    return f"""
    import polars as pl, sys
    sys.path.insert(0, {str(REPO / "benchmarks")!r})
    from hdfs_keys import loghub_hdfs_ids
    def hdfs_truth(contents):
        return loghub_hdfs_ids(pl.Series(contents), {str(HDFS_TEMPLATES)!r}).to_list()
    """


def bench_parse(args: argparse.Namespace) -> None:
    if not HDFS_2PCT.exists():
        sys.exit(f"skipped: {HDFS_2PCT} not found (needs ../shared/data)")
    rows = []
    ls = _child(
        f"""
        from logsieve.parsing.parser import LogParser
        from logsieve.parsing.accuracy import grouping_accuracy
        times = []
        for _ in range({args.repeat}):
            t = time.perf_counter()
            p = LogParser("hdfs")
            events, stats = p.parse_files({str(HDFS_2PCT)!r})
            times.append(time.perf_counter() - t)
        ga = grouping_accuracy(hdfs_truth(events["content"].to_list()), events["event_id"].to_list())
        done(lines=stats.lines, seconds=sorted(times)[len(times) // 2], first=times[0], templates=stats.templates, ga=ga)
        """,
        setup=_truth_code(),
    )
    rows.append(("logsieve", "HDFS 2% (222,579 lines)", ls))
    if not args.skip_drain3:
        d3 = _child(
            f"""
            import gzip
            from drain3 import TemplateMiner
            from drain3.template_miner_config import TemplateMinerConfig
            from drain3.masking import MaskingInstruction
            from logsieve.formats import get_format
            from logsieve.parsing.parser import LogParser
            from logsieve.parsing.accuracy import grouping_accuracy
            ref = LogParser("hdfs")
            cfg = TemplateMinerConfig()
            cfg.drain_depth = ref.drain_.depth
            cfg.drain_sim_th = ref.drain_.sim_th
            cfg.masking_instructions = [MaskingInstruction(m.pattern, "*") for m in ref.masks_]
            cfg.profiling_enabled = False
            rx = __import__("re").compile(get_format("hdfs").regex())
            times = []
            for _ in range({args.repeat}):
                t = time.perf_counter()
                miner = TemplateMiner(config=cfg)
                contents, ids = [], []
                with gzip.open({str(HDFS_2PCT)!r}, "rt", encoding="utf-8") as fh:
                    for line in fh:
                        m = rx.match(line.rstrip("\\n"))
                        content = m.group("Content") if m else line.rstrip("\\n")
                        r = miner.add_log_message(content)
                        contents.append(content); ids.append(r["cluster_id"])
                times.append(time.perf_counter() - t)
            ga = grouping_accuracy(hdfs_truth(contents), [str(i) for i in ids])
            done(lines=len(ids), seconds=sorted(times)[len(times) // 2], first=times[0], templates=len(miner.drain.clusters), ga=ga)
            """,
            setup=_truth_code(),
        )
        rows.append(("drain3-improved 0.10.0 (line by line)", "HDFS 2% (222,579 lines)", d3))
    if not args.skip_large:
        WORK.mkdir(parents=True, exist_ok=True)
        big = WORK / f"synth_{args.lines}.log"
        if not big.exists():
            print(f"generating {args.lines:,} synthetic lines -> {big}", file=sys.stderr)
            _child(
                f"""
                from logsieve.synth import generate
                generate({str(big)!r}, lines={args.lines}, seed=1)
                done()
                """
            )
        large = _child(
            f"""
            from logsieve.parsing.parser import LogParser
            t = time.perf_counter()
            _, stats = LogParser("hdfs").parse_files({str(big)!r}, output={str(WORK / "synth_events.parquet")!r})
            done(lines=stats.lines, seconds=time.perf_counter() - t, templates=stats.templates, ga=None)
            """
        )
        rows.append(("logsieve", f"synthetic HDFS ({args.lines:,} lines, to Parquet)", large))
    _print_parse(rows)


def _print_parse(rows: list[tuple[str, str, dict]]) -> None:
    print("seconds = median of the runs (HDFS 2%); first = the first run, with start-up costs\n")
    head = f"| {'parser':<38} | {'input':<40} | {'lines/s':>10} | {'seconds':>8} | {'first':>6} | {'templates':>9} | {'GA':>6} | {'peak RSS MB':>11} |"
    print(head)
    print("|" + "|".join("-" * (len(c)) for c in head.split("|")[1:-1]) + "|")
    for name, what, r in rows:
        ga = "-" if r.get("ga") is None else f"{r['ga']:.4f}"
        print(
            f"| {name:<38} | {what:<40} | {r['lines'] / r['seconds']:>10,.0f} | {r['seconds']:>8.2f} | {r.get('first', r['seconds']):>6.2f} | "
            f"{r['templates']:>9} | {ga:>6} | {r['peak_rss_mb']:>11,.0f} |"
        )
    by = {(n, w): r for n, w, r in rows}
    a = by.get(("logsieve", "HDFS 2% (222,579 lines)"))
    b = by.get(("drain3-improved 0.10.0 (line by line)", "HDFS 2% (222,579 lines)"))
    if a and b:
        print(f"\nspeed-up on HDFS 2%: {b['seconds'] / a['seconds']:.1f}x")


def bench_loghub(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(REPO / "benchmarks"))
    from loghub_ga import main as loghub_main  # type: ignore[import-not-found]

    loghub_main([])


def bench_deeplog(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(REPO / "benchmarks"))
    from bench_deeplog import main as deeplog_main  # type: ignore[import-not-found]

    deeplog_main([])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("parse", help="parse throughput and GA, logsieve vs drain3-improved")
    p.add_argument("--lines", type=int, default=11_000_000, help="size of the synthetic file")
    p.add_argument("--repeat", type=int, default=3, help="runs per parser; the median is reported")
    p.add_argument("--skip-drain3", action="store_true")
    p.add_argument("--skip-large", action="store_true")
    p.set_defaults(func=bench_parse)
    sub.add_parser("loghub", help="GA/PA/F1-GA on the Loghub 2k systems").set_defaults(func=bench_loghub)
    sub.add_parser("deeplog", help="DeepLog vs PyPI deeplog").set_defaults(func=bench_deeplog)
    args = parser.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
