"""Prometheus metrics of a service, on an HTTP port of its own (`--metrics-port`).

Everything is read at scrape time from what the service already counts, so nothing on the request
path waits for the exporter: the cloud's engine (`EngineStats`: queue, running requests, UNet
calls, batch sizes, iteration and request seconds, refusals by reason), the edge's admission, and
every RPC's duration and status from the request interceptor.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Optional

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from ecdiff.engine.core import DenoisingEngine, Histogram

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


def _histogram(name: str, doc: str, histogram: Histogram, labels: Optional[dict] = None) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, doc, labels=list(labels or {}))
    buckets = [(str(bound), count) for bound, count in zip(histogram.bounds, histogram.counts)]
    family.add_metric(list((labels or {}).values()), buckets + [("+Inf", histogram.count)], histogram.total)
    return family


class ServiceCollector:
    def __init__(self, rpcs: RpcStats, engine: Optional[DenoisingEngine] = None,
                 admission: Optional[Admission] = None) -> None:
        self.rpcs, self.engine, self.admission = rpcs, engine, admission

    def collect(self):
        with self.rpcs._lock:
            for method, histogram in self.rpcs.seconds.items():
                yield _histogram("ecdiff_rpc_seconds", "RPC wall time by method", histogram, {"method": method})
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
            yield from self._engine(self.engine)

    @staticmethod
    def _engine(engine: DenoisingEngine):
        stats = engine.stats
        yield GaugeMetricFamily("ecdiff_engine_queue_length", "requests waiting for a running slot", value=engine.queued)
        yield GaugeMetricFamily("ecdiff_requests_running", "requests being denoised by the engine", value=engine.running)
        yield CounterMetricFamily("ecdiff_unet_calls", "batched UNet calls (rate: calls per second)",
                                  value=stats.unet_calls)
        yield CounterMetricFamily("ecdiff_unet_samples", "request-steps served by UNet calls", value=stats.batched_samples)
        yield CounterMetricFamily("ecdiff_approximated_steps", "steps served without a model call",
                                  value=stats.approximated_steps)
        sizes = HistogramMetricFamily("ecdiff_batch_size", "requests per UNet call")
        bounds = [1, 2, 4, 8, 16, 32, 64]
        counts = [sum(n for size, n in stats.batch_sizes.items() if size <= b) for b in bounds]
        sizes.add_metric([], [(str(b), c) for b, c in zip(bounds, counts)] + [("+Inf", stats.unet_calls)],
                         stats.batched_samples)
        yield sizes
        yield _histogram("ecdiff_engine_iteration_seconds", "engine iterations with a UNet call", stats.iteration_seconds)
        yield _histogram("ecdiff_engine_request_seconds", "engine requests, submission to end", stats.request_seconds)
        finished = CounterMetricFamily("ecdiff_engine_requests", "engine requests ended, by outcome", labels=["outcome"])
        for outcome, n in stats.finished.items():
            finished.add_metric([outcome], n)
        yield finished
        refused = CounterMetricFamily("ecdiff_refused", "requests refused, by reason", labels=["reason"])
        for reason, n in stats.refused.items():
            refused.add_metric([reason], n)
        yield refused


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
