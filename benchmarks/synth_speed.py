"""Speed and memory of ``logsieve.synth.generate``.

Each measurement runs in a fresh subprocess so that its peak RSS (``ru_maxrss``) belongs to
that run alone. Prints one JSON object per run and a summary line.

    .venv/bin/python benchmarks/synth_speed.py                 # 11M lines, plain text
    .venv/bin/python benchmarks/synth_speed.py --gzip          # 11M lines, .log.gz
    .venv/bin/python benchmarks/synth_speed.py --lines 1000000 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

_CHILD = r"""
import json, resource, sys, time
from pathlib import Path
from logsieve.synth import generate

path, lines, seed = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
t = time.perf_counter()
stats = generate(path, lines=lines, seed=seed)
wall = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
print(json.dumps({
    "file": path.name, "lines": lines, "blocks": stats.blocks,
    "anomalous_blocks": stats.anomalous_blocks, "seconds": round(wall, 2),
    "lines_per_s": round(lines / wall), "peak_rss_mib": round(peak / 1024),
    "bytes": path.stat().st_size, **stats.extra,
}))
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--lines", type=int, default=11_000_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--gzip", action="store_true", help="write .log.gz instead of plain text")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument(
        "--dir", type=Path, default=None, help="where to write (default: a temp dir, removed after)"
    )
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        name = "synth.log.gz" if args.gzip else "synth.log"
        results = []
        for _ in range(args.repeat):
            out = subprocess.run(
                [sys.executable, "-c", _CHILD, str(Path(tmp) / name), str(args.lines),
                 str(args.seed)],
                check=True, capture_output=True, text=True,
            )
            row = json.loads(out.stdout.strip().splitlines()[-1])
            results.append(row)
            print(json.dumps(row), flush=True)
    best = min(results, key=lambda r: r["seconds"])
    print(
        f"synth {name}: {args.lines:,} lines, best {best['seconds']} s "
        f"({best['lines_per_s']:,} lines/s), peak RSS {max(r['peak_rss_mib'] for r in results)} MiB"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
