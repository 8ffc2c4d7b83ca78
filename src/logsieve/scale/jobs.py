"""The Dask counterparts of :mod:`logsieve.pipeline.jobs`: the same summaries, written as
partitioned datasets. Each opens a client (``scheduler`` or a LocalCluster of ``workers``)
for the job and closes it after."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from logsieve.errors import LogsieveError
from logsieve.grouping.specs import AnySpec
from logsieve.io.atomic import atomic_path
from logsieve.io.tables import scan_table
from logsieve.parsing.parser import LogParser, template_counts
from logsieve.scale.cluster import dask_client
from logsieve.schema import EVENT_ID, LINE_ID

__all__ = ["dask_detect_job", "dask_group_job", "dask_parse_job"]


def dask_parse_job(
    inputs: Sequence[str | Path],
    output: str | Path,
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    format: str = "hdfs",
    masks: Sequence[Any] = (),
    state: str | Path | None = None,
    match_only: bool = False,
    templates_out: str | Path | None = None,
    truth: str | Path | None = None,
    no_templates: bool = False,
    block_bytes: int | None = None,
    **drain: Any,
) -> dict[str, Any]:
    """:func:`~logsieve.pipeline.jobs.parse_job` on Dask: the events as a dataset directory."""
    from logsieve.scale.parse import BLOCK_BYTES, dask_parse

    params = {k: v for k, v in drain.items() if v is not None}
    if no_templates:
        if state is not None or match_only or params:
            raise LogsieveError("--no-templates mines no templates: drop --state, --match-only, "
                                "--depth and --sim-th")
        if templates_out is not None:
            raise LogsieveError("--templates-out needs templates: drop --no-templates")
        params["mine_templates"] = False
    if state is not None and Path(state).exists():
        if masks or params:
            raise LogsieveError(
                "masks and Drain settings come from the saved state; "
                "do not pass them with an existing --state"
            )
        parser = LogParser.load_state(state, format=format, match_only=match_only)
    else:
        if match_only:
            raise LogsieveError("--match-only needs an existing parser state (--state FILE)")
        parser = LogParser(format=format, extra_masks=list(masks), **params)
    paths = [Path(p) for p in inputs]
    with dask_client(scheduler, workers) as client:
        stats = dask_parse(client, parser, paths, output, block_bytes=block_bytes or BLOCK_BYTES)
    if state is not None and not match_only and parser.mine_templates:
        parser.save_state(state)
    summary: dict[str, Any] = {"output": str(output), **stats.to_dict()}
    if templates_out is not None:
        counts = template_counts(scan_table(output))
        with atomic_path(templates_out, suffix=".csv") as tmp:
            counts.write_csv(tmp)
        summary["templates_out"] = str(templates_out)
    if truth is not None:
        from logsieve.parsing.accuracy import evaluate, load_truth

        pred = scan_table(output).select(LINE_ID, EVENT_ID, "template").collect()
        summary["accuracy"] = evaluate(load_truth(truth), pred)
    return summary


def dask_group_job(
    events: str | Path,
    output: str | Path,
    spec: AnySpec,
    *,
    labels: str | Path | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
) -> dict[str, Any]:
    """:func:`~logsieve.pipeline.jobs.group_job` on Dask: the windows as a dataset directory."""
    from logsieve.scale.group import dask_group

    with dask_client(scheduler, workers) as client:
        return dask_group(client, events, output, spec, labels=labels)


def dask_detect_job(
    windows: str | Path,
    model_dir: str | Path,
    output: str | Path,
    *,
    top: int = 0,
    scheduler: str | None = None,
    workers: int | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Score a windows table on Dask; returns the summary and the ``top`` highest scores."""
    import json

    from logsieve.scale.detect import dask_detect

    with dask_client(scheduler, workers) as client:
        summary = dask_detect(client, windows, model_dir, output)
    shown: list[dict[str, Any]] = []
    if top > 0:
        scores = scan_table(output).with_row_index("__row").collect()
        worst = scores.sort(["score", "__row"], descending=[True, False]).head(top)
        for row in worst.iter_rows(named=True):
            shown.append({
                "window_id": row["window_id"], "score": row["score"],
                "is_anomaly": row["is_anomaly"], "label": row["label"],
                "explanation": json.loads(row["explanation"]) if row["explanation"] else None,
            })  # fmt: skip
    return summary, shown
