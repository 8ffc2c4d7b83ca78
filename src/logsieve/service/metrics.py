"""Prometheus metrics of the service (names per the Prometheus naming guide; no session,
window, template or alert ids as labels). One registry per service instance."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = ["Metrics"]

disable_created_metrics()  # no *_created series: they double the output and nobody reads them

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class _EngineCollector(Collector):
    """Read at scrape time from the engine's status and the current model version."""

    def __init__(self, status: Callable[[], dict[str, Any]], version: Callable[[], int]) -> None:
        self._status = status
        self._version = version

    def collect(self) -> Iterator[Any]:
        st = self._status()
        lines = CounterMetricFamily(
            "logsieve_lines_processed", "Lines the streaming engine has processed."
        )
        lines.add_metric([], float(st.get("lines_processed") or 0))
        yield lines
        windows = GaugeMetricFamily("logsieve_open_windows", "Windows open in the stream.")
        windows.add_metric([], float(st.get("open_windows") or 0))
        yield windows
        rate = GaugeMetricFamily(
            "logsieve_engine_lines_per_second", "The engine's average processing rate."
        )
        rate.add_metric([], float(st.get("lines_per_second") or 0))
        yield rate
        version = GaugeMetricFamily("logsieve_model_version", "Model version being served.")
        version.add_metric([], float(self._version()))
        yield version


class Metrics:
    """The service's counters and histograms."""

    def __init__(self, status: Callable[[], dict[str, Any]], version: Callable[[], int]) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.lines_ingested = Counter(
            "logsieve_lines_ingested", "Lines accepted by POST /v1/ingest.", registry=r
        )
        self.alerts = Counter("logsieve_alerts", "Alerts emitted by the engine.", registry=r)
        self.alert_latency = Histogram(
            "logsieve_alert_latency_seconds",
            "From a line's acceptance by /v1/ingest to its alert.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.windows_scored = Counter(
            "logsieve_windows_scored", "Windows scored by POST /v1/score.", registry=r
        )
        self.feedback = Counter(
            "logsieve_feedback", "Operator verdicts applied.", ["label"], registry=r
        )
        self.requests = Histogram(
            "logsieve_http_request_duration_seconds",
            "HTTP request durations by route template.",
            ["method", "route", "status"],
            buckets=REQUEST_BUCKETS,
            registry=r,
        )
        r.register(_EngineCollector(status, version))
