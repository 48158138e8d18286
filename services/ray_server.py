"""The cloud scaled out on Ray Serve: replicas of (model + engine) behind our grpc.aio front end.

`start_cloud_ray(config)` starts a local Ray instance (or joins `ray_address`, or uses the Ray this
process already initialised), deploys `CloudReplica` × `replicas` (or autoscaling between
`min_replicas` and `max_replicas` on ongoing requests), and serves CloudDenoiser on the usual gRPC
server: the same servicer, interceptors, TLS and tokens, health, reflection and metrics as a plain
cloud, with the cloud phase and DiffusionX's CloudRefiner forwarded to the replicas (`RayCloudPhaseRunner`,
`RayRefinePhaseRunner`). Health is SERVING while at least one replica runs (polled from Serve's
status, which learns of a dead replica at its next health check, every REPLICA_HEALTH_CHECK_PERIOD_S).
Stopping deletes the application, and shuts Serve and Ray down when this process started them.
With `ray_grpc_port`, Ray Serve's own gRPC proxy also serves CloudDenoiser from the same replicas,
for comparison (services/ray_grpc_proxy.py).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Optional

import ray
from grpc_health.v1 import health_pb2
from ray import serve
from ray.exceptions import GetTimeoutError
from ray.serve.config import HTTPOptions, gRPCOptions

from ecdiff.engine.core import EngineSnapshot
from ecdiff.placement import check_device_name
from ecdiff.strategy_config import StrategyDefaults
from ecdiff.v1 import cloud_pb2_grpc

from . import cloud_servicer, diffusionx_assembly
from .config import CloudConfig, RayConfig
from .ray_grpc_proxy import SERVICER_FUNCTIONS, ProxiedCloudReplica
from .ray_replica import CloudReplica, ReplicaSpec
from .ray_runner import RayCloudPhaseRunner, RayRefinePhaseRunner
from .ray_stats import create_board, read_board
from .server import RunningServer, _start, log_frontier
from .validation import RequestLimits

log = logging.getLogger(__name__)
HEALTH_POLL_S = 1.0
# Serve notices a dead replica only at its next health check (Ray's default period is 10 s): until
# then Serve's status counts it RUNNING, our health says SERVING and Ray has not begun replacing it.
# The check is cheap (`CloudReplica.check_health`).
REPLICA_HEALTH_CHECK_PERIOD_S = 2.0
# The nice value (relative to the front end's) of the workers of a Ray instance we start, replicas included.
REPLICA_NICENESS = 0


class RayCloudApp:
    """The Serve application and the Ray instance under it; `close()` undoes what `start` did."""

    def __init__(self, config: RayConfig, handle, board, connected: bool, own_instance: bool) -> None:
        """`connected`: this process called ray.init; `own_instance`: and it started a local Ray instance
        (rather than joining a cluster at `address` or $RAY_ADDRESS)."""
        self.config, self.handle, self.board = config, handle, board
        self.connected, self.own_instance = connected, own_instance
        self._watcher: Optional[asyncio.Task] = None
        self._snapshots: dict[str, EngineSnapshot] = {}

    @classmethod
    def start(cls, config: CloudConfig) -> "RayCloudApp":
        """Blocking (call from a thread): returns once every replica has loaded its model."""
        ray_config = config.ray_config()
        connected = not ray.is_initialized()
        starts_instance = connected and ray_config.address is None and not os.environ.get("RAY_ADDRESS")
        if connected:
            # Ray runs its workers at nice +15 so that its own daemons stay responsive; our replicas
            # are the workload, and at +15 every process of normal priority on the machine (the front
            # end, Ray's daemons, co-located clients) takes a replica's core first. A cluster we join
            # keeps its own setting.
            ray.init(address=ray_config.address, include_dashboard=False,
                     _system_config={"worker_niceness": REPLICA_NICENESS} if starts_instance else None)
        try:
            serve.start(**_proxies(config.host, ray_config))
            unused = unused_gpus(ray_config.replica_gpus, ray.cluster_resources().get("GPU", 0), config.device)
            if unused:
                log.warning(unused)
            board_name = f"{ray_config.app}-stats"
            board = create_board(board_name)
            route = None if ray_config.grpc_port is None else f"/{ray_config.app}"  # Ray's proxy routes to it
            handle = serve.run(_deployment(config, ray_config, board_name), name=ray_config.app, route_prefix=route)
            _await_replicas_on_board(board, ray_config.replicas)
        except BaseException:
            if connected:
                ray.shutdown()
            raise
        log.info("ray serve", extra={"fields": {"app": ray_config.app, "address": ray_config.address or "local",
                                                "replicas": ray_config.replicas, "replica_cpus": ray_config.replica_cpus,
                                                "replica_gpus": ray_config.replica_gpus,
                                                "autoscaling": [ray_config.min_replicas, ray_config.max_replicas]}})
        return cls(ray_config, handle, board, connected, starts_instance)

    def replica_snapshots(self) -> dict[str, EngineSnapshot]:
        """Each replica's latest engine snapshot; the last ones read if the board is slow to answer."""
        try:
            self._snapshots = read_board(self.board)
        except GetTimeoutError:
            log.warning("replica stats board did not answer; serving the last snapshots read")
        return self._snapshots

    def running_replicas(self) -> int:
        app = serve.status().applications.get(self.config.app)
        if app is None:
            return 0
        return sum(d.replica_states.get("RUNNING", 0) for d in app.deployments.values())

    def watch_health(self, running: RunningServer) -> None:
        """Keep the server's health in step with the replicas: SERVING while at least one runs."""

        async def watch() -> None:
            names = ("", running.service_name)
            while True:
                await asyncio.sleep(HEALTH_POLL_S)
                try:
                    up = await asyncio.to_thread(self.running_replicas) > 0
                except Exception:  # noqa: BLE001 - Serve's controller unreachable: not ready
                    log.exception("ray serve status failed")
                    up = False
                status = health_pb2.HealthCheckResponse.SERVING if up else health_pb2.HealthCheckResponse.NOT_SERVING
                for name in names:  # ignored once the server is stopping (the health servicer's rule)
                    await running.health.set(name, status)

        self._watcher = asyncio.ensure_future(watch())

    async def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
        await asyncio.to_thread(self._shutdown)

    def _shutdown(self) -> None:
        # The handle's router pushes metrics to Serve's controller from a thread of this process; left
        # running, its next push after ray.shutdown (ours, or the owner's) starts a new local Ray.
        self.handle.shutdown()
        if self.own_instance:  # all of it goes
            serve.shutdown()
        else:  # a cluster we joined, or the Ray of this process's owner: only our application goes
            serve.delete(self.config.app)
        if self.connected:
            ray.shutdown()  # stops a local instance; only disconnects from a cluster
        log.info("ray serve stopped", extra={"fields": {"app": self.config.app}})


def unused_gpus(replica_gpus: float, cluster_gpus: float, device: str) -> Optional[str]:
    """Why replicas will leave the cluster's GPUs unused, if they will: Ray reserves none for them, so
    each runs on the CPU (services/ray_replica.py `replica_device`)."""
    if replica_gpus or not cluster_gpus or check_device_name(device) == "cpu":
        return None
    return (f"the Ray cluster has {cluster_gpus:g} GPU(s) but replicas reserve none, so they run on the CPU: "
            "--replica-gpus 1 gives each replica a GPU (fractions share one)")


def _await_replicas_on_board(board, replicas: int, timeout_s: float = 120.0) -> None:
    """Every replica has reported its engine: the metrics are complete from the first scrape."""
    deadline = time.monotonic() + timeout_s
    while len(read_board(board, timeout_s=timeout_s)) < replicas:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the replicas did not report their metrics within {timeout_s:g} s")
        time.sleep(0.1)


def _proxies(host: str, ray_config: RayConfig) -> dict:
    if ray_config.grpc_port is None:
        # No HTTP or Serve-gRPC proxy: the edge speaks to our gRPC front end (docs/services.md).
        return dict(proxy_location="Disabled")
    # Ray's gRPC proxy beside ours, for comparison (services/ray_grpc_proxy.py); its HTTP side, which
    # cannot be turned off alone, listens on a free port.
    with socket.socket() as probe:
        probe.bind((host, 0))
        http_port = probe.getsockname()[1]
    return dict(proxy_location="HeadOnly", http_options=HTTPOptions(host=host, port=http_port),
                grpc_options=gRPCOptions(port=ray_config.grpc_port, grpc_servicer_functions=SERVICER_FUNCTIONS))


def _deployment(config: CloudConfig, ray_config: RayConfig, board_name: str):
    engine = config.engine()
    spec = ReplicaSpec(_absolute(config.model), config.device, config.dtype, config.guidance, engine,
                       diffusionx_assembly.refine_config(config), _absolute(config.predictors), ray_config.resume_every,
                       ray_config.stream_window_s, config.torch_threads or max(1, int(ray_config.replica_cpus)), board_name)
    scaling = (dict(autoscaling_config=dict(min_replicas=ray_config.min_replicas, max_replicas=ray_config.max_replicas,
                                            initial_replicas=ray_config.replicas,
                                            target_ongoing_requests=ray_config.target_ongoing_requests,
                                            upscale_delay_s=ray_config.upscale_delay_s))
               if ray_config.autoscaling else dict(num_replicas=ray_config.replicas))
    # A replica takes as many requests as its engine runs and queues, one more so that the engine
    # (not Ray's router) refuses the excess with its own reason (queue full).
    # No Serve access log: our front end logs every RPC with its request id, and each replica line
    # costs a write there, a copy to Ray's log monitor and a print here.
    options = dict(ray_actor_options=dict(num_cpus=ray_config.replica_cpus, num_gpus=ray_config.replica_gpus),
                   max_ongoing_requests=engine.max_running + engine.max_queue + 1,
                   health_check_period_s=REPLICA_HEALTH_CHECK_PERIOD_S,
                   logging_config=dict(enable_access_log=False), **scaling)
    if ray_config.grpc_port is None:
        return serve.deployment(CloudReplica).options(**options).bind(spec)
    limits = RequestLimits(config.max_prompt_chars, config.max_steps)
    return serve.deployment(ProxiedCloudReplica).options(**options).bind(
        spec, StrategyDefaults.load(config.strategy_config), limits, config.frontier())


def _absolute(path: Optional[str]) -> Optional[str]:
    """A folder given relative to here: replicas run in other processes, other working directories."""
    return str(Path(path).resolve()) if path and Path(path).exists() else path


async def start_cloud_ray(config: CloudConfig) -> RunningServer:
    app = await asyncio.to_thread(RayCloudApp.start, config)
    try:
        identity = await app.handle.identity.remote()
        limits = RequestLimits(config.max_prompt_chars, config.max_steps)
        # The front end offers the ladder's cheaper points with each job; the replica's engine (its
        # adaptive_quality and adaptive_queue from the same config) chooses which plan it serves.
        frontier = config.frontier()
        log_frontier(frontier, identity.model_name)
        resumes = app.config.max_resumes
        servicer = cloud_servicer.CloudServicer(identity, StrategyDefaults.load(config.strategy_config), limits,
                                                RayCloudPhaseRunner(app.handle, resumes), frontier)
        refiner = diffusionx_assembly.refiner_service(RayRefinePhaseRunner(app.handle, resumes), identity)
        # The front end computes nothing; the server's executor is only shut down with it.
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ecdiff-cloud-front")
        running = await _start("cloud", config, servicer, cloud_pb2_grpc.add_CloudDenoiserServicer_to_server,
                               cloud_servicer.SERVICE_NAME, executor, (refiner,), (app,), replicas=app.replica_snapshots)
    except BaseException:
        await app.close()
        raise
    app.watch_health(running)
    return running
