"""Grouping accuracy of masks + Drain on the 16 Loghub-2k systems, with the presets.

    python benchmarks/loghub_ga.py                  # original ground truth
    python benchmarks/loghub_ga.py --corrected      # loghub_2k_corrected ground truth
    python benchmarks/loghub_ga.py --data DIR       # another copy of the data
    python benchmarks/loghub_ga.py --general        # one general preset for every system
    python benchmarks/loghub_ga.py --speed          # time Drain.add_many on the HDFS 2% sample

For each system the ``Content`` column of the ground-truth CSV is the message (what the
parser hands to Drain after header splitting). It is masked with the system's preset,
the distinct masked messages go through Drain in first-occurrence order with their
counts, and the ids are mapped back to lines. Prints GA, PA, F1-GA and Drain's published
GA (logpai/logparser benchmark, Zhu et al. ICSE-SEIP'19) per system, and the averages.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import polars as pl

REPO = Path(__file__).resolve().parents[1]
if str(REPO / "src") not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(REPO / "src"))

from logsieve.parsing.accuracy import evaluate, load_truth  # noqa: E402
from logsieve.parsing.drain import Drain  # noqa: E402
from logsieve.parsing.masks import mask_expr  # noqa: E402
from logsieve.parsing.presets import DEFAULT_PRESET, ParserPreset, get_preset  # noqa: E402

DATA = Path(os.environ.get("LOGSIEVE_SHARED_DATA", REPO.parent / "shared" / "data"))

#: Drain's grouping accuracy on Loghub-2k as published by the logparser benchmark.
PUBLISHED_GA: dict[str, float] = {
    "HDFS": 0.998,
    "Hadoop": 0.948,
    "Spark": 0.920,
    "Zookeeper": 0.967,
    "BGL": 0.963,
    "HPC": 0.887,
    "Thunderbird": 0.955,
    "Windows": 0.997,
    "Linux": 0.690,
    "Android": 0.911,
    "HealthApp": 0.780,
    "Apache": 1.000,
    "Proxifier": 0.527,
    "OpenSSH": 0.788,
    "OpenStack": 0.733,
    "Mac": 0.787,
}
SYSTEMS = tuple(PUBLISHED_GA)


def truth_path(data_dir: Path, system: str, corrected: bool) -> Path:
    """Ground-truth CSV of one system (``data_dir`` is the folder holding the systems)."""
    suffix = "_structured_corrected.csv" if corrected else "_structured.csv"
    return Path(data_dir) / system / f"{system}_2k.log{suffix}"


def parse_contents(contents: pl.Series, preset: ParserPreset) -> pl.DataFrame:
    """Mask, deduplicate, run Drain; one row per input message: event_id, template."""
    df = pl.DataFrame({"content": contents}).with_columns(
        masked=mask_expr(pl.col("content"), preset.all_masks())
    )
    uniq = df.group_by("masked", maintain_order=True).len("count")
    drain = Drain(**preset.drain_params())
    ids = drain.add_many(uniq["masked"].to_list(), uniq["count"].to_list())
    clusters = drain.clusters
    uniq = uniq.with_columns(
        event_id=pl.Series(ids).cast(pl.String).str.replace(r"^", "E"),
        template=pl.Series([clusters[int(i)][0] for i in ids], dtype=pl.String),
    )
    return df.join(uniq.drop("count"), on="masked", how="left", maintain_order="left").select(
        "event_id", "template"
    )


def run_loghub(
    data_dir: str | Path | None = None,
    corrected: bool = False,
    presets: dict[str, ParserPreset] | None = None,
) -> pl.DataFrame:
    """Score every system present under ``data_dir``.

    Parameters
    ----------
    data_dir : path, optional
        Folder with one sub-folder per system; default ``<shared data>/loghub_2k`` (or
        ``loghub_2k_corrected`` with ``corrected``).
    corrected : bool
        Use ``*_structured_corrected.csv`` ground truth.
    presets : dict, optional
        System name -> preset overriding :func:`get_preset` (for experiments).

    Returns
    -------
    polars.DataFrame
        ``system, GA, PA, F1_GA, published_GA, n_truth_groups, n_pred_groups, seconds``.
    """
    if data_dir is None:
        data_dir = DATA / ("loghub_2k_corrected" if corrected else "loghub_2k")
    data_dir = Path(data_dir)
    rows = []
    for system in SYSTEMS:
        path = truth_path(data_dir, system, corrected)
        if not path.is_file():
            continue
        preset = (presets or {}).get(system) or get_preset(system)
        truth = load_truth(path)
        t0 = time.perf_counter()
        pred = parse_contents(truth["content"], preset).with_columns(truth["line_id"])
        secs = time.perf_counter() - t0
        m = evaluate(truth, pred)
        rows.append(
            {
                "system": system,
                "GA": m["GA"],
                "PA": m["PA"],
                "F1_GA": m["F1_GA"],
                "published_GA": PUBLISHED_GA[system],
                "n_truth_groups": m["n_truth_groups"],
                "n_pred_groups": m["n_pred_groups"],
                "seconds": secs,
            }
        )
    if not rows:
        raise FileNotFoundError(f"no Loghub-2k ground truth found under {data_dir}")
    return pl.DataFrame(rows)


def format_table(df: pl.DataFrame) -> str:
    """Aligned text table with an average row."""
    lines = [
        f"{'system':<12} {'GA':>6} {'PA':>6} {'F1-GA':>6} {'Drain(pub)':>10} {'diff':>7}"
        f" {'groups':>7} {'pred':>5}"
    ]
    for r in df.iter_rows(named=True):
        lines.append(
            f"{r['system']:<12} {r['GA']:6.3f} {r['PA']:6.3f} {r['F1_GA']:6.3f}"
            f" {r['published_GA']:10.3f} {r['GA'] - r['published_GA']:+7.3f}"
            f" {r['n_truth_groups']:7d} {r['n_pred_groups']:5d}"
        )
    avg = df.select(pl.col("GA", "PA", "F1_GA", "published_GA").mean()).row(0, named=True)
    lines.append(
        f"{'average':<12} {avg['GA']:6.3f} {avg['PA']:6.3f} {avg['F1_GA']:6.3f}"
        f" {avg['published_GA']:10.3f} {avg['GA'] - avg['published_GA']:+7.3f}"
    )
    return "\n".join(lines)


def time_hdfs_2pct(path: Path | None = None, repeat: int = 5) -> list[dict]:
    """Time ``Drain.add_many`` on the distinct masked messages of the HDFS 2% sample.

    Lines are ``date time pid level component: message``; the message is what follows
    the fifth field. Two mask sets: logparser's HDFS regexes (block id, IP) and the
    logsieve ``hdfs`` preset. Best of ``repeat`` runs; drain3 (if installed) is timed on
    the same messages with the same parameters, one ``add_log_message`` per message.
    """
    from logsieve.parsing.masks import Mask

    path = path or DATA / "hdfs_loglead_2pct" / "HDFS_2pct.log.gz"
    lines = pl.read_csv(
        path, has_header=False, separator="\x01", new_columns=["line"], quote_char=None
    )
    content = lines.select(content=pl.col("line").str.replace(r"^\S+ \S+ \S+ \S+ \S+ ", ""))
    hdfs = get_preset("hdfs")
    logparser = ParserPreset(
        (Mask("blk", r"blk_-?\d+"), Mask("ip", r"(\d+\.){3}\d+(:\d+)?")),
        hdfs.depth,
        hdfs.sim_th,
        use_default_masks=False,
    )
    out = []
    for name, preset in (("logparser HDFS masks", logparser), ("logsieve hdfs preset", hdfs)):
        t0 = time.perf_counter()
        uniq = content.select(m=mask_expr(pl.col("content"), preset.all_masks())).group_by(
            "m", maintain_order=True
        ).len("n")
        mask_s = time.perf_counter() - t0
        msgs, counts = uniq["m"].to_list(), uniq["n"].to_list()
        best = float("inf")
        for _ in range(repeat):
            drain = Drain(**preset.drain_params())
            t0 = time.perf_counter()
            drain.add_many(msgs, counts)
            best = min(best, time.perf_counter() - t0)
        row = {
            "masks": name,
            "lines": content.height,
            "distinct": len(msgs),
            "clusters": len(drain),
            "mask_dedup_s": mask_s,
            "add_many_ms": best * 1e3,
            "drain3_ms": None,
        }
        try:
            from drain3.drain import Drain as Drain3
        except ImportError:
            pass
        else:
            best3 = float("inf")
            for _ in range(repeat):
                d3 = Drain3(depth=preset.depth, sim_th=preset.sim_th)
                t0 = time.perf_counter()
                for msg in msgs:
                    d3.add_log_message(msg)
                best3 = min(best3, time.perf_counter() - t0)
            row["drain3_ms"] = best3 * 1e3
        out.append(row)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=None, help="folder with the system folders")
    ap.add_argument("--corrected", action="store_true", help="use the corrected ground truth")
    ap.add_argument(
        "--general",
        action="store_true",
        help="use the general default preset (default masks only) for every system",
    )
    ap.add_argument("--speed", action="store_true", help="time Drain on the HDFS 2%% sample")
    args = ap.parse_args(argv)
    if args.speed:
        for r in time_hdfs_2pct():
            d3 = "n/a" if r["drain3_ms"] is None else f"{r['drain3_ms']:.1f} ms"
            print(
                f"{r['masks']}: {r['lines']} lines -> {r['distinct']} distinct masked messages"
                f" (mask+dedup {r['mask_dedup_s']:.2f} s) -> {r['clusters']} clusters;"
                f" Drain.add_many {r['add_many_ms']:.1f} ms"
                f" ({r['add_many_ms'] * 1e3 / r['distinct']:.1f} us/msg); drain3 {d3}"
            )
        return 0
    t0 = time.perf_counter()
    presets = {s: DEFAULT_PRESET for s in SYSTEMS} if args.general else None
    df = run_loghub(args.data, args.corrected, presets)
    kind = "loghub_2k_corrected" if args.corrected else "loghub_2k"
    which = "the general default preset" if args.general else "the per-system presets"
    print(f"masks + Drain with {which} on {kind} ({df.height} systems)")
    print(format_table(df))
    print(f"total {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
