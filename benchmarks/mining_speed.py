"""How fast the client mines templates: Drain over distinct masked messages.

    python benchmarks/mining_speed.py [LOG] [--format bgl]

``--engine dask`` mines once, on the client, over the distinct masked messages of the whole
input; this measures that step alone (:meth:`LogParser.assign` on the messages a worker
would send), the figure docs/scaling.md uses for where the client becomes the bottleneck.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT = REPO.parent / "shared" / "data" / "bgl_sample_20k" / "BGL_20k.log"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("log", nargs="?", type=Path, default=DEFAULT)
    ap.add_argument("--format", default="bgl")
    args = ap.parse_args()
    from logsieve.io.reader import iter_line_chunks
    from logsieve.parsing.parser import LogParser, ParseStats
    from logsieve.schema import CONTENT

    parser = LogParser(args.format)
    messages = None
    lines = 0
    for chunk in iter_line_chunks(args.log):
        events = parser.structure_lines(chunk.lines, chunk.first_line, ParseStats())
        msgs, _ = parser.mask_messages(events[CONTENT])
        lines += len(chunk.lines)
        messages = msgs if messages is None else messages.append(msgs)
    assert messages is not None
    messages = messages.unique(maintain_order=True)
    counts = [1] * len(messages)
    t = time.perf_counter()
    parser.assign(messages, counts)
    s = time.perf_counter() - t
    n = len(messages)
    print(f"{args.log.name}: {lines:,} lines, {n:,} distinct masked messages, "
          f"{len(parser.drain_.clusters):,} templates; mining {s:.3f} s = {n / s:,.0f} messages/s")


if __name__ == "__main__":
    main()
