"""CLI glue for ``logsieve synth``: options in, :class:`~logsieve.synth.SynthStats` out."""

from __future__ import annotations

from pathlib import Path

from logsieve.synth import ANOMALY_KINDS, SynthStats, generate


def synth_command(
    output: Path,
    lines: int,
    seed: int = 0,
    anomaly_ratio: float = 0.03,
    quiet: bool = False,
    labels: Path | None = None,
    kinds: Path | None = None,
    anomaly_kinds: list[str] | None = None,
) -> SynthStats:
    """Write a synthetic HDFS log (``.gz`` output is compressed) and its label files.

    ``quiet`` is accepted for symmetry with the other commands; generation never prints.
    """
    del quiet  # nothing to show while generating; the caller prints the summary
    return generate(
        output,
        lines=lines,
        seed=seed,
        anomaly_ratio=anomaly_ratio,
        labels_path=labels,
        kinds_path=kinds,
        kinds=tuple(anomaly_kinds) if anomaly_kinds else ANOMALY_KINDS,
    )
