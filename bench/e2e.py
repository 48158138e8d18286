"""End-to-end latency: every picture generated through the gRPC services, as a client sees it.

Both services run as child processes (`ecdiff serve cloud|edge`, as deployed: one process each, the
shipped servicers, the pair's models at the pair's guidance, device and dtype, `--torch-threads`
each) on loopback; the edge shapes its
hop to the cloud at the given bandwidth. Separate processes matter on a small CPU: with both
servers and the client in one Python process, the per-step stream events of one fight the other's
denoising loop for the GIL (measured on 2 cores: the edge's 50 steps took 1.31 s instead of 1.11 s,
and 3-4x longer with two torch threads per thread pool). The client is the SDK (`EdgeClient`), one
request at a time; latency is the client's wall time from sending the request to holding the
result (PNG). The services measure where the time went: cloud compute, transfer (the edge's wall
time for the cloud phase minus the cloud's compute, so real gRPC costs plus the shaping), edge
compute and decode. The handoff travels as float32, so the pictures equal the in-process ones bit
for bit.
"""

from __future__ import annotations

import io
import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import grpc

from ecdiff.cli_options import SIMULATED_LINK_MBPS
from ecdiff.clients.sdk import EdgeClient
from ecdiff.images import open_picture
from ecdiff.loading import TINY, LoadedModel, ModelPair
from ecdiff.placement import dtype_label
from ecdiff.search.prompts import PromptItem
from ecdiff.services.config import EdgeConfig
from ecdiff.services.process import ServiceProcess
from ecdiff.strategy_config import PARAM_NAMES

from .quality_runner import Method, Record


class ServiceError(RuntimeError):
    """A picture the services could not deliver as asked (an RPC error, or a degraded run)."""


def default_service_threads() -> int:
    """Half the cores each: the two services share this machine, the client needs next to none."""
    return max(1, (os.cpu_count() or 2) // 2)


@dataclass(frozen=True)
class LinkSettings:
    bandwidth_mbps: float = SIMULATED_LINK_MBPS
    latency_ms: float = 0.0
    checkpoint_every: int = EdgeConfig.checkpoint_every  # the services' default: fault-recovery latents cost bytes too
    service_threads: int = 0  # torch threads of each service process; 0 = default_service_threads()

    def __post_init__(self) -> None:
        if self.service_threads < 0:
            raise ValueError(f"service threads must be >= 0, got {self.service_threads}")
        if self.service_threads == 0:
            object.__setattr__(self, "service_threads", default_service_threads())

    def as_dict(self) -> dict:
        return {"bandwidth_mbps": self.bandwidth_mbps, "latency_ms": self.latency_ms,
                "checkpoint_every": self.checkpoint_every, "service_threads": self.service_threads}


def served_name(model: LoadedModel) -> str:
    """The `--model` that makes `ecdiff serve` load this model (the tiny pair is rebuilt from its seed)."""
    return TINY if model.name == f"{TINY}-{model.role}" else model.name


def served_placement(pair: ModelPair) -> list[str]:
    """The flags that make `ecdiff serve` run a model as the pair does: guidance, device, dtype."""
    placement = pair.cloud_model.placement
    return ["--guidance", repr(pair.guidance), "--device", str(placement.device), "--dtype", dtype_label(placement.dtype)]


def request_options(method: Method, num_steps: int) -> dict:
    """The EdgeDenoiser request that runs `method` exactly (explicit parameters, raw float32 handoff)."""
    if method.scheduler is not None or method.params.get("corrections", 1) != 1:
        raise ValueError(f"{method.name}: the services run the models' own scheduler with one correction only")
    params = {k: v for k, v in method.params.items() if k in PARAM_NAMES}
    return {"strategy": method.params["strategy"], "params": params, "num_steps": num_steps,
            "transfer_dtype": "float32", "transfer_encoding": "raw"}


class ThroughServices:
    """A `GenerateFn` that runs each picture through both services; use as a context manager."""

    def __init__(self, pair: ModelPair, num_steps: int, link: LinkSettings, log_dir: Optional[Path] = None) -> None:
        self.pair, self.num_steps, self.link, self.log_dir = pair, num_steps, link, log_dir
        # Started by the first picture: a fully cached run needs none.
        self.services: list[ServiceProcess] = []
        self.client: EdgeClient | None = None

    def _start(self) -> EdgeClient:
        common = ["--torch-threads", str(self.link.service_threads), "--predictors", "none", *served_placement(self.pair)]
        try:
            self.services.append(ServiceProcess("cloud", ["--model", served_name(self.pair.cloud_model), *common],
                                                self._log("cloud")))
            self.services.append(ServiceProcess("edge", [
                "--model", served_name(self.pair.edge_model), "--cloud", self.services[0].target, *common,
                "--bandwidth-mbps", str(self.link.bandwidth_mbps), "--latency-ms", str(self.link.latency_ms),
                "--checkpoint-every", str(self.link.checkpoint_every), "--session-db", ":memory:"], self._log("edge")))
        except (RuntimeError, TimeoutError) as exc:
            raise ServiceError(f"could not start the services: {exc}") from None
        self.client = EdgeClient(self.services[1].target)
        self.client.wait_ready(30)
        return self.client

    def _log(self, role: str) -> Optional[Path]:
        if self.log_dir is None:
            return None
        self.log_dir.mkdir(parents=True, exist_ok=True)
        return self.log_dir / f"e2e-{role}.log"

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
        image = open_picture(io.BytesIO(result.image_png))
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
            for service in reversed(self.services):  # the edge first: it is the cloud's client
                service.stop()
            self.client, self.services = None, []

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
