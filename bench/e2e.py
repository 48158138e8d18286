"""End-to-end latency: every picture generated through the gRPC services, as a client sees it.

Both services run in this process on loopback (grpc.aio on a background event loop, the shipped
servicers, `ecdiff.services.background`), on the pair's own models; the edge shapes its hop to
the cloud at the given bandwidth. The client is the SDK (`EdgeClient`), one request at a time;
latency is the client's wall time from sending the request to holding the result (PNG). The
services measure where the time went: cloud compute, transfer (the edge's wall time for the cloud
phase minus the cloud's compute, so real gRPC costs plus the shaping), edge compute and decode.
The handoff travels as float32, so the pictures equal the in-process ones bit for bit.
"""

from __future__ import annotations

import io
import statistics
import time
from dataclasses import dataclass

import grpc
from PIL import Image

from ecdiff.clients.sdk import EdgeClient
from ecdiff.loading import ModelPair
from ecdiff.search.prompts import PromptItem
from ecdiff.services.background import BackgroundServices
from ecdiff.services.config import CloudConfig, EdgeConfig
from ecdiff.strategy_config import PARAM_NAMES

from .quality_runner import Method, Record


class ServiceError(RuntimeError):
    """A picture the services could not deliver as asked (an RPC error, or a degraded run)."""


@dataclass(frozen=True)
class LinkSettings:
    bandwidth_mbps: float = 18.88  # EC-Diff's WiFi
    latency_ms: float = 0.0
    checkpoint_every: int = EdgeConfig.checkpoint_every  # the services' default: fault-recovery latents cost bytes too

    def as_dict(self) -> dict:
        return {"bandwidth_mbps": self.bandwidth_mbps, "latency_ms": self.latency_ms,
                "checkpoint_every": self.checkpoint_every}


def request_options(method: Method, num_steps: int) -> dict:
    """The EdgeDenoiser request that runs `method` exactly (explicit parameters, float32 handoff)."""
    if method.scheduler != "ddim" or method.params.get("corrections", 1) != 1:
        raise ValueError(f"{method.name}: the services run DDIM with one correction only")
    params = {k: v for k, v in method.params.items() if k in PARAM_NAMES}
    return {"strategy": method.params["strategy"], "params": params, "num_steps": num_steps,
            "transfer_dtype": "float32"}


class ThroughServices:
    """A `GenerateFn` that runs each picture through both services; use as a context manager."""

    def __init__(self, pair: ModelPair, num_steps: int, link: LinkSettings) -> None:
        self.pair, self.num_steps, self.link = pair, num_steps, link
        self.services: BackgroundServices | None = None  # started by the first picture: a fully cached run needs none
        self.client: EdgeClient | None = None

    def _start(self) -> EdgeClient:
        edge_config = EdgeConfig(bandwidth_mbps=self.link.bandwidth_mbps, latency_ms=self.link.latency_ms,
                                 checkpoint_every=self.link.checkpoint_every)
        self.services = BackgroundServices(self.pair.cloud_model, self.pair.edge_model, CloudConfig(), edge_config)
        self.client = EdgeClient(self.services.edge_target)
        self.client.wait_ready(30)
        return self.client

    def __call__(self, method: Method, item: PromptItem) -> Record:
        options = request_options(method, self.num_steps)
        client = self.client or self._start()
        started = time.perf_counter()
        try:
            result = client.generate(item.prompt, seed=item.seed, **options)
        except grpc.RpcError as exc:
            raise ServiceError(f"{method.name} on {item.prompt!r}: {exc.code().name}: {exc.details()}") from None
        latency = time.perf_counter() - started
        s = result.summary
        if s.degraded:  # a fallback picture is not a measurement of the method
            raise ServiceError(f"{method.name} on {item.prompt!r}: the services degraded the run ({s.degraded_reason})")
        with Image.open(io.BytesIO(result.image_png)) as png:
            image = png.convert("RGB")
        breakdown = {"cloud_compute_s": s.cloud_compute_seconds, "transfer_s": s.transfer_seconds,
                     "edge_compute_s": s.edge_compute_seconds, "decode_s": s.decode_seconds,
                     "server_total_s": s.total_seconds, "bytes_to_cloud": s.bytes_to_cloud,
                     "bytes_from_cloud": s.bytes_from_cloud, "handoff_step": s.handoff_step}
        return Record(image, latency, s.cloud_calls, s.edge_calls, s.approx_steps,
                      s.bytes_to_cloud + s.bytes_from_cloud, False, breakdown)

    def close(self) -> None:
        try:
            if self.client is not None:
                self.client.close()
        finally:
            if self.services is not None:
                self.services.stop()
            self.client = self.services = None

    def __enter__(self) -> "ThroughServices":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def e2e_summary(records: list[Record], link: LinkSettings, in_process_records: list[Record] | None) -> dict:
    """Medians of what the services measured, the link, and (with in-process pictures) how many match."""
    keys = records[0].breakdown
    summary = {k: statistics.median(r.breakdown[k] for r in records) for k in keys}
    summary.update(link.as_dict())
    if in_process_records is not None:
        summary["images_equal_in_process"] = sum(a.image.tobytes() == b.image.tobytes()
                                                 for a, b in zip(records, in_process_records))
    return summary
