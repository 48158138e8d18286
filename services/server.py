"""Assemble and run the services: servicer + request-id and token interceptors + health + reflection, TLS,
deliberate message-size limits, the cloud's shared engine or the edge's bounded concurrency,
graceful stop.

`start_cloud(config)` / `start_edge(config)` return a started `RunningServer` (port 0 picks a
free port; `.port` tells which). Tests, the demo and `ecdiff serve` all go through here.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Callable, Optional

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from ecdiff.conditioning import denoising_model
from ecdiff.engine.core import DenoisingEngine, EngineSnapshot
from ecdiff.loading import LoadedModel, load_model
from ecdiff.strategy_config import Frontier, StrategyDefaults
from ecdiff.v1 import cloud_pb2_grpc, edge_pb2_grpc

from . import cloud_servicer, diffusionx_assembly, edge_servicer
from .admission import Admission
from .cloud_client import CloudClient
from .cloud_phase import CloudPhaseRunner
from .config import CHANNEL_OPTIONS, CloudConfig, EdgeConfig, ServerConfig
from .identity import identity_of
from .interceptor import RequestInterceptor
from .link import LinkConfig
from .metrics import MetricsServer, RpcStats, ServiceCollector
from .server_security import ServerSecurity
from .validation import RequestLimits

log = logging.getLogger(__name__)


@dataclass
class RunningServer:
    role: str
    server: grpc.aio.Server
    health: health.aio.HealthServicer
    service_name: str
    port: int
    executor: ThreadPoolExecutor
    servicer: object
    interceptor: RequestInterceptor
    grace_seconds: float
    extra_servicers: tuple = ()  # further services on the same server (DiffusionX)
    clients: tuple = ()  # what the servicers share and the server closes last (CloudClient, the engine)
    metrics_port: Optional[int] = None  # the Prometheus exporter's HTTP port, when it runs

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def stop(self, grace: Optional[float] = None) -> None:
        """Stop taking requests, give in-flight streams `grace` seconds, then cancel them
        (a cancelled stream stops its denoising loop within one step)."""
        grace = self.grace_seconds if grace is None else grace
        log.info("stopping", extra={"fields": {"role": self.role, "grace_seconds": grace}})
        await self.health.enter_graceful_shutdown()
        stopping = asyncio.ensure_future(self.server.stop(grace))
        done, _ = await asyncio.wait({stopping}, timeout=grace)
        if not done:
            cancelled = self.interceptor.cancel_in_flight()
            log.info("grace period over", extra={"fields": {"role": self.role, "cancelled_rpcs": cancelled}})
        await stopping
        for owned in (self.servicer, *self.extra_servicers, *self.clients):
            close = getattr(owned, "close", None)
            if close is not None:
                await close()
        self.executor.shutdown(wait=True, cancel_futures=True)
        log.info("stopped", extra={"fields": {"role": self.role}})

    async def wait(self) -> None:
        await self.server.wait_for_termination()


async def _start(role: str, config: ServerConfig, servicer, add_servicer, service_name: str,
                 executor: ThreadPoolExecutor, extras: tuple = (), clients: tuple = (), *,
                 engine: Optional[DenoisingEngine] = None, admission: Optional[Admission] = None,
                 replicas: Optional[Callable[[], dict[str, EngineSnapshot]]] = None) -> RunningServer:
    """`extras`: (servicer, add function, service name) of further services on this server; `replicas`:
    the engine snapshots of Ray Serve replicas, for the metrics (services/ray_server.py)."""
    rpcs = RpcStats()
    interceptor = RequestInterceptor(rpcs)
    security = ServerSecurity(config, role)
    # The request interceptor goes first (outermost), so refused calls are logged with their status too.
    server = grpc.aio.server(interceptors=[interceptor, *security.interceptors()], options=list(CHANNEL_OPTIONS))
    add_servicer(servicer, server)
    for extra, add_extra, _ in extras:
        add_extra(extra, server)
    names = (service_name, *(name for _, _, name in extras))
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (*names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME), server)
    port = security.bind(server)
    if port == 0:
        raise OSError(f"could not bind {config.host}:{config.port}")
    await server.start()
    for name in ("", *names):  # "" is the server's overall status, as the health protocol defines
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    metrics = None
    if config.metrics_port is not None:
        metrics = MetricsServer(ServiceCollector(rpcs, engine, admission, replicas), config.host, config.metrics_port)
        clients = (*clients, metrics)
    security.log_mode()
    log.info("serving", extra={"fields": {"role": role, "host": config.host, "port": port,
                                          "metrics_port": metrics.port if metrics else None}})
    return RunningServer(role, server, health_servicer, service_name, port, executor, servicer, interceptor,
                         config.grace_seconds, tuple(extra for extra, _, _ in extras), clients,
                         metrics.port if metrics else None)


def _common(config: ServerConfig, role: str, model: Optional[LoadedModel]):
    model = model or load_model(role, config.model, placement=config.placement(), guidance=config.guidance)
    log.info("model", extra={"fields": {"role": role, "model": model.name, "description": model.description,
                                        "placement": model.placement.describe(), "guidance": model.guidance}})
    return model, StrategyDefaults.load(config.strategy_config), RequestLimits(config.max_prompt_chars, config.max_steps)


def log_frontier(frontier: Optional[Frontier], model_name: str) -> None:
    """Say at start which ladder load-adaptive quality serves (a plain cloud's, or the Ray front end's)."""
    if frontier is None:
        return
    log.info("adaptive quality", extra={"fields": {"ladder": [asdict(p) for p in frontier.points],
                                                   "measured_on": frontier.cloud_model}})
    if frontier.cloud_model != model_name:  # served anyway: the operator chose the file
        log.warning("the frontier was measured on %s, this cloud runs %s: its quality figures do not hold "
                    "here (measure one with `ecdiff ladder`)", frontier.cloud_model, model_name)


class _OwnedEngine:
    """The cloud's engine as something the server closes once the RPCs are done."""

    def __init__(self, engine: DenoisingEngine) -> None:
        self.engine = engine

    async def close(self) -> None:
        await asyncio.to_thread(self.engine.close)


async def start_cloud(config: CloudConfig, model: Optional[LoadedModel] = None) -> RunningServer:
    model, defaults, limits = _common(config, "cloud", model)
    engine = DenoisingEngine(denoising_model(model.pipe), config.engine(), name="cloud")
    log.info("engine", extra={"fields": asdict(config.engine())})
    frontier = config.frontier()
    log_frontier(frontier, model.name)
    # The engine makes every model call; these threads only prepare runs (prompt encoding).
    executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="ecdiff-cloud-prepare")
    servicer = cloud_servicer.CloudServicer(identity_of(model), defaults, limits,
                                            CloudPhaseRunner(model, engine, executor), frontier)
    refiner = diffusionx_assembly.cloud_refiner(config, model, servicer.identity, engine, executor)
    return await _start("cloud", config, servicer, cloud_pb2_grpc.add_CloudDenoiserServicer_to_server,
                        cloud_servicer.SERVICE_NAME, executor, (refiner,), (_OwnedEngine(engine),), engine=engine)


async def start_edge(config: EdgeConfig, model: Optional[LoadedModel] = None) -> RunningServer:
    model, defaults, limits = _common(config, "edge", model)
    # One worker thread per admitted request: the denoising loops never wait for a thread.
    executor = ThreadPoolExecutor(max_workers=config.max_concurrency, thread_name_prefix="ecdiff-edge")
    admission = Admission(config.max_concurrency)
    cloud = CloudClient(config.cloud, LinkConfig(config.bandwidth_mbps, config.latency_ms), config.cloud_event_timeout_s,
                        config.cloud_security())
    servicer = edge_servicer.EdgeServicer(model, defaults, limits, admission, executor, cloud, config.checkpoint_every,
                                          config.transfer_encoding)
    sessions = diffusionx_assembly.edge_sessions(config, model, cloud, admission, executor)
    return await _start("edge", config, servicer, edge_pb2_grpc.add_EdgeDenoiserServicer_to_server,
                        edge_servicer.SERVICE_NAME, executor, (sessions,), (cloud,), admission=admission)
