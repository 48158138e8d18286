"""Prometheus metrics of a service, on an HTTP port of its own (`--metrics-port`).

Everything is read at scrape time from what the service already counts, so nothing on the request
path waits for the exporter: the cloud's engine (or each Ray Serve replica's, labelled `replica`) (`EngineStats`: queue, running requests, UNet
calls, batch sizes, iteration and request seconds, refusals by reason, downgrades by cause), the edge's admission, and
every RPC's duration and status from the request interceptor.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Callable, Optional

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from ecdiff.engine.core import DenoisingEngine, EngineSnapshot, Histogram

from .admission import Admission

RPC_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0)


class RpcStats:
    """RPC durations by method and status, fed by the interceptor (from the event loop)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.seconds: dict[str, Histogram] = {}
        self.statuses: Counter = Counter()

    def observe(self, method: str, status: str, seconds: float) -> None:
        with self._lock:
            self.seconds.setdefault(method, Histogram(RPC_BUCKETS)).observe(seconds)
            self.statuses[(method, status)] += 1


def _histogram(name: str, doc: str, histograms: list[tuple[list[str], Histogram]],
               labels: Optional[list[str]] = None) -> HistogramMetricFamily:
    """One family, one series per (label values, histogram)."""
    family = HistogramMetricFamily(name, doc, labels=labels or [])
    for values, histogram in histograms:
        buckets = [(str(bound), count) for bound, count in zip(histogram.bounds, histogram.counts)]
        family.add_metric(values, buckets + [("+Inf", histogram.count)], histogram.total)
    return family


class ServiceCollector:
    """`engine`: this process's engine; or `replicas`: a callable giving each Ray Serve replica's
    `EngineSnapshot` by replica id (the same metrics, with a `replica` label)."""

    def __init__(self, rpcs: RpcStats, engine: Optional[DenoisingEngine] = None,
                 admission: Optional[Admission] = None,
                 replicas: Optional[Callable[[], dict[str, EngineSnapshot]]] = None) -> None:
        self.rpcs, self.engine, self.admission, self.replicas = rpcs, engine, admission, replicas

    def collect(self):
        with self.rpcs._lock:
            yield _histogram("ecdiff_rpc_seconds", "RPC wall time by method",
                             [([method], h) for method, h in self.rpcs.seconds.items()], ["method"])
            statuses = CounterMetricFamily("ecdiff_rpcs", "RPCs ended, by method and status", labels=["method", "status"])
            for (method, status), n in self.rpcs.statuses.items():
                statuses.add_metric([method, status], n)
        yield statuses
        if self.admission is not None:
            yield GaugeMetricFamily("ecdiff_requests_running", "requests computing on this service",
                                    value=self.admission.active)
            refused = CounterMetricFamily("ecdiff_refused", "requests refused, by reason", labels=["reason"])
            refused.add_metric(["busy"], self.admission.refused)
            yield refused
        if self.engine is not None:
            engine = self.engine
            yield from _engine([([], EngineSnapshot(engine.queued, engine.running, engine.stats))], [])
        if self.replicas is not None:
            yield from _engine([([replica], snapshot) for replica, snapshot in sorted(self.replicas().items())],
                               ["replica"])


def _engine(snapshots: list[tuple[list[str], EngineSnapshot]], labels: list[str]):
    """The engine families, one series per (label values, snapshot)."""
    families = {
        "queue": GaugeMetricFamily("ecdiff_engine_queue_length", "requests waiting for a running slot", labels=labels),
        "running": GaugeMetricFamily("ecdiff_requests_running", "requests being denoised by the engine", labels=labels),
        "calls": CounterMetricFamily("ecdiff_unet_calls", "batched UNet calls (rate: calls per second)", labels=labels),
        "samples": CounterMetricFamily("ecdiff_unet_samples", "request-steps served by UNet calls", labels=labels),
        "approx": CounterMetricFamily("ecdiff_approximated_steps", "steps served without a model call", labels=labels),
        "sizes": HistogramMetricFamily("ecdiff_batch_size", "requests per UNet call", labels=labels),
        "finished": CounterMetricFamily("ecdiff_engine_requests", "engine requests ended, by outcome",
                                        labels=[*labels, "outcome"]),
        "refused": CounterMetricFamily("ecdiff_refused", "requests refused, by reason", labels=[*labels, "reason"]),
        "downgraded": CounterMetricFamily("ecdiff_downgraded", "requests served with a cheaper EC-Diff point "
                                          "(load-adaptive quality), by cause", labels=[*labels, "reason"]),
    }
    bounds = [1, 2, 4, 8, 16, 32, 64]
    for values, snapshot in snapshots:
        stats = snapshot.stats
        families["queue"].add_metric(values, snapshot.queued)
        families["running"].add_metric(values, snapshot.running)
        families["calls"].add_metric(values, stats.unet_calls)
        families["samples"].add_metric(values, stats.batched_samples)
        families["approx"].add_metric(values, stats.approximated_steps)
        counts = [sum(n for size, n in stats.batch_sizes.items() if size <= b) for b in bounds]
        families["sizes"].add_metric(values, [(str(b), c) for b, c in zip(bounds, counts)] + [("+Inf", stats.unet_calls)],
                                     stats.batched_samples)
        for outcome, n in stats.finished.items():
            families["finished"].add_metric([*values, outcome], n)
        for reason, n in stats.refused.items():
            families["refused"].add_metric([*values, reason], n)
        for cause, n in stats.downgraded.items():
            families["downgraded"].add_metric([*values, cause], n)
    yield from families.values()
    yield _histogram("ecdiff_engine_iteration_seconds", "engine iterations with a UNet call",
                     [(values, snapshot.stats.iteration_seconds) for values, snapshot in snapshots], labels)
    yield _histogram("ecdiff_engine_request_seconds", "engine requests, submission to end",
                     [(values, snapshot.stats.request_seconds) for values, snapshot in snapshots], labels)


class MetricsServer:
    """The HTTP exporter of one service's collector; `port` 0 picks a free one."""

    def __init__(self, collector: ServiceCollector, host: str, port: int) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(collector)
        self._server, self._thread = start_http_server(port, host, registry=self.registry)
        self.port = self._server.server_port

    async def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
