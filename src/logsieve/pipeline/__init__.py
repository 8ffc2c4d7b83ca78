"""The pipeline: one object from raw lines to explained alerts (:class:`Pipeline`), and the
file-level jobs the CLI, benchmarks, watcher and service run through it (:mod:`.jobs`)."""

from logsieve.pipeline.core import DetectResult, Pipeline, TrainResult

__all__ = ["DetectResult", "Pipeline", "TrainResult"]
