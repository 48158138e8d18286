"""`ecdiff serve cloud|edge`: run one service until SIGTERM/SIGINT, then stop gracefully."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from pathlib import Path

import torch

from ecdiff.loading import ModelLoadError
from ecdiff.placement import PlacementError

from ecdiff.wire.tensors import ENCODINGS

from .config import CloudConfig, EdgeConfig, load_config
from .logs import json_logs_to_stderr
from .server import start_cloud, start_edge

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("serve", help="run the cloud or the edge gRPC service", description=__doc__)
    roles = parser.add_subparsers(dest="role", metavar="ROLE", required=True)
    for role, config, help_text in (
            ("cloud", CloudConfig, "CloudDenoiser: runs the cloud phase and streams the handoff"),
            ("edge", EdgeConfig, "EdgeDenoiser: the client-facing service; calls the cloud, finishes on the edge")):
        # Defaults in the help come from the config classes: they are the single source.
        p = roles.add_parser(role, help=help_text, description=f"{help_text}. Settings: defaults < TOML file "
                             f"(--config) < $ECDIFF_{role.upper()}_<FIELD> < these flags.")
        p.add_argument("--host", help=f"address to bind (default {config.host})")
        p.add_argument("--port", type=int, help=f"port (default {config.port}; 0 = any free port)")
        p.add_argument("--port-file", type=Path, help="write the bound port (and the metrics port on a second line) to this file once "
                       "serving (default: none)")
        p.add_argument("--model", help=f"model name or diffusers folder (default: the shipped toyworld-{role}; 'tiny' for random weights)")
        p.add_argument("--device", help=f"where the model runs: auto, cpu, cuda or cuda:N (default {config.device}: "
                       "CUDA when available, else the CPU)")
        p.add_argument("--dtype", help=f"model precision: float32, float16 or bfloat16 (default {config.dtype}: "
                       "float16 on CUDA, float32 on the CPU)")
        p.add_argument("--guidance", type=float, help="classifier-free guidance scale (default: the model's own: 7.0 "
                       "for the toy world, the pipeline's default for a diffusers folder, 7.5 for SD-1.x)")
        p.add_argument("--grace-seconds", type=float,
                       help=f"SIGTERM grace period for in-flight streams (default {config.grace_seconds:g})")
        p.add_argument("--config", help="services TOML file ([cloud]/[edge] sections) (default: $ECDIFF_SERVICES_CONFIG, else none)")
        p.add_argument("--metrics-port", type=int, help="serve Prometheus metrics over HTTP on this port, 0 = any "
                       "free one (default: none)")
        p.add_argument("--torch-threads", type=int, help="torch intra-op threads (default: torch's; 1 on shared cores)")
        p.add_argument("--strategy-config", help="strategy defaults TOML (default configs/strategy.toml)")
        p.add_argument("--predictors", help="DiffusionX strength predictors: a folder or 'none' "
                                             "(default models/diffusionx-predictors when shipped)")
        # Security (docs/services.md): paths only; inline secrets come from the environment, never argv.
        p.add_argument("--tls-cert", help="this server's certificate chain (PEM); enables TLS (default: none, plaintext)")
        p.add_argument("--tls-key", help="private key (PEM) of --tls-cert (default: none)")
        p.add_argument("--tls-client-ca", help="require client certificates signed by this CA: mutual TLS (default: none)")
        p.add_argument("--tokens-file", help=f"bearer tokens accepted, one 'NAME SECRET RIGHT...' a line (default: "
                                              f"$ECDIFF_{role.upper()}_TOKENS, else no token asked for)")
        p.add_argument("--health-needs-token", action="store_true", default=None,
                       help="ask for a token on the health service too (default: open)")
        p.add_argument("--reflection-needs-token", action="store_true", default=None,
                       help="ask for a token on reflection too (default: open)")
        if role == "cloud":
            p.add_argument("--refine-steps", type=int,
                           help=f"DiffusionX refinement schedule, DDIM steps (default {CloudConfig.refine_steps})")
            p.add_argument("--max-batch", type=int,
                           help=f"engine: samples in one UNet call (default {CloudConfig.max_batch})")
            p.add_argument("--max-running", type=int,
                           help=f"engine: requests denoised at once (default {CloudConfig.max_running})")
            p.add_argument("--max-queue", type=int, help=f"engine: requests waiting for a running slot; more are "
                           f"refused with RESOURCE_EXHAUSTED (default {CloudConfig.max_queue})")
            p.add_argument("--adaptive-quality", action="store_true", default=None,
                           help="engine: serve an EC-Diff request that allows it with a cheaper point of the frontier "
                                "when its own would miss its deadline (default: off)")
            p.add_argument("--adaptive-queue", type=int, help="engine, with --adaptive-quality: serve cheaper from "
                           f"this queue length on, deadline or not; 0 = deadlines only (default {CloudConfig.adaptive_queue})")
            p.add_argument("--frontier-config", help="the ladder of cheaper points, written by `ecdiff ladder` "
                           "(default configs/frontier.toml)")
            # Ray Serve (docs/services.md, "Scaling out on Ray Serve"): one contiguous block.
            p.add_argument("--ray", action="store_true", default=None,
                           help="serve from Ray Serve replicas of (model + engine) behind this gRPC front end (default: off)")
            p.add_argument("--ray-address", help="join this Ray cluster ('auto', HOST:6379, ray://HOST:10001) "
                           "(default: start a local Ray instance)")
            p.add_argument("--ray-app", help=f"the Serve application's name (default {CloudConfig.ray_app})")
            p.add_argument("--replicas", type=int, help=f"replicas (at start, when autoscaling) (default {CloudConfig.replicas})")
            p.add_argument("--replica-cpus", type=float,
                           help=f"CPUs per replica, also its torch threads (default {CloudConfig.replica_cpus:g})")
            p.add_argument("--replica-gpus", type=float, help=f"GPUs per replica (default {CloudConfig.replica_gpus:g})")
            p.add_argument("--min-replicas", type=int, help="autoscaling lower bound, with --max-replicas (default: no autoscaling)")
            p.add_argument("--max-replicas", type=int, help="autoscaling upper bound, with --min-replicas (default: no autoscaling)")
            p.add_argument("--target-ongoing-requests", type=float, help="autoscaling: ongoing requests per replica "
                           f"to aim at (default {CloudConfig.target_ongoing_requests:g})")
            p.add_argument("--upscale-delay-s", type=float, help="autoscaling: seconds above target before a replica "
                           f"is added (default {CloudConfig.upscale_delay_s:g})")
            p.add_argument("--resume-every", type=int, help="replicas checkpoint a stream's loop state every n steps, "
                           "so it resumes on another replica from there if its own dies; 0 = resume from the start "
                           f"(default {CloudConfig.resume_every})")
            p.add_argument("--max-resumes", type=int, help="resumes per request after lost replicas; 0 = none, the "
                           f"edge degrades (default {CloudConfig.max_resumes})")
            p.add_argument("--stream-window-s", type=float, help="replicas send a stream's events that follow "
                           "each other within this many seconds together (fewer Ray items, progress that much later) "
                           f"(default {CloudConfig.stream_window_s:g})")
            p.add_argument("--ray-grpc-port", type=int, help="also serve CloudDenoiser through Ray Serve's own gRPC "
                           "proxy on this port (no TLS, tokens or our interceptors: for comparison, `ecdiff bench "
                           "ray-proxy`) (default: none)")
        if role == "edge":
            p.add_argument("--max-concurrency", type=int,
                           help=f"generations computing at once (default {EdgeConfig.max_concurrency})")
            p.add_argument("--cloud", help=f"CloudDenoiser HOST:PORT (default {EdgeConfig.cloud})")
            p.add_argument("--bandwidth-mbps", type=float, help=f"shape the edge<->cloud hop to this bandwidth (default {EdgeConfig.bandwidth_mbps:g}: "
                                "unshaped, a real link is real; the demo and benchmarks simulate 18.88)")
            p.add_argument("--latency-ms", type=float, help=f"one-way latency added on the edge<->cloud hop (default {EdgeConfig.latency_ms:g})")
            p.add_argument("--checkpoint-every", type=int,
                           help=f"ask the cloud for its latent every n steps (default {EdgeConfig.checkpoint_every})")
            p.add_argument("--transfer-encoding", choices=sorted(ENCODINGS), help="latents on the cloud->edge hop when "
                           f"a request does not say (default {EdgeConfig.transfer_encoding})")
            p.add_argument("--session-db", help="DiffusionX session store, SQLite file or ':memory:' "
                                                f"(default {EdgeConfig.session_db})")
            p.add_argument("--preview-steps", type=int,
                           help=f"DiffusionX preview schedule, DDIM steps (default {EdgeConfig.preview_steps})")
            p.add_argument("--cloud-tls-ca", help="CA (PEM) to verify the cloud with; TLS to the cloud (default: none, plaintext)")
            p.add_argument("--cloud-tls-cert", help="the edge's client certificate (PEM) for mutual TLS to the cloud (default: none)")
            p.add_argument("--cloud-tls-key", help="private key (PEM) of --cloud-tls-cert (default: none)")
            p.add_argument("--cloud-token-file", help="file holding the edge's own token for the cloud (default: "
                                                      "$ECDIFF_EDGE_CLOUD_TOKEN, else none)")
        p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    threads = torch.get_num_threads()
    try:
        with json_logs_to_stderr():
            return _run(args)
    finally:
        torch.set_num_threads(threads)  # `--torch-threads` is process-wide: in-process callers get theirs back


def _run(args: argparse.Namespace) -> int:
    flags = {k: v for k, v in vars(args).items() if k not in ("func", "role", "command", "config", "port_file")}
    cls = CloudConfig if args.role == "cloud" else EdgeConfig
    try:
        config = load_config(cls, args.role, flags, args.config)
    except ValueError as exc:
        log.error("bad configuration: %s", exc)
        return 2
    try:
        return asyncio.run(_serve(args.role, config, args.port_file))
    except (ModelLoadError, PlacementError) as exc:
        log.error("cannot start the %s service: %s", args.role, exc)
        return 2


async def _serve(role: str, config, port_file: Path | None) -> int:
    if config.torch_threads:
        torch.set_num_threads(config.torch_threads)
    if role == "cloud" and config.ray:
        from .ray_server import start_cloud_ray  # Ray is imported only when asked for

        running = await start_cloud_ray(config)
    else:
        running = await (start_cloud(config) if role == "cloud" else start_edge(config))
    if port_file is not None:  # the gRPC port, then the metrics port when the exporter runs
        ports = [running.port] + ([running.metrics_port] if running.metrics_port is not None else [])
        written = port_file.with_name(port_file.name + ".tmp")
        written.write_text("".join(f"{port}\n" for port in ports))
        written.replace(port_file)  # atomic: a reader never sees half the ports
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await running.stop()
    return 0
