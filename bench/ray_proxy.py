"""`ecdiff bench ray-proxy`: CloudDenoiser.Denoise through Ray Serve's own gRPC proxy vs through our
grpc.aio front end, on the same replicas.

One cloud (`ecdiff serve cloud --ray --replicas N --ray-grpc-port P`, a child process, as deployed)
serves both: our front end on its own port (interceptors, health, deadlines and cancellation
forwarded to the replicas' engines) and Ray's proxy on P (the servicer runs inside each replica:
services/ray_grpc_proxy.py). For each client count, closed-loop clients send `--requests-per-client`
Denoise requests each (the cloud phase, to its handoff) through one front, then the same through the
other, `--rounds` times, alternating which goes first, so that the drift of a shared machine falls on
both alike. Reported per front and client count: throughput (req/s, min and median over the rounds),
the median over rounds of p50 and p95 latency, and errors by status. Outputs results.json and
table.md under --out.
"""

from __future__ import annotations

import asyncio
import json
import socket
import statistics
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

from ecdiff.cli_options import apply_torch_threads, placement_flags, placement_from_args
from ecdiff.engine.config import EngineConfig
from ecdiff.services.process import ServiceProcess
from ecdiff.strategy_config import StrategyDefaults

from .load import Client, closed_loop, percentile
from .quality_runner import machine_info

FRONTS = ("ours", "ray-proxy")


@dataclass(frozen=True)
class Round:
    front: str  # "ours" | "ray-proxy"
    clients: int
    round: int
    requests: int
    ok: int
    errors: dict[str, int]
    seconds: float
    throughput: float  # OK requests per second
    p50: float | None
    p95: float | None


def run(args) -> int:
    try:
        apply_torch_threads(args)
        placement = placement_from_args(args)  # checked here, before the cloud starts
        clients = [int(c) for c in args.clients.split(",")]
        if any(c < 1 for c in clients) or args.rounds < 1 or args.requests_per_client < 1 or args.replicas < 1:
            raise ValueError("need --clients values, --rounds, --requests-per-client and --replicas >= 1")
        for name in args.strategies.split(","):
            if name not in ("cloud", "ecdiff", "hybrid"):
                raise ValueError(f"unknown strategy {name!r} (the cloud phase of cloud, ecdiff or hybrid)")
    except ValueError as exc:
        print(f"ecdiff bench ray-proxy: error: {exc}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    proxy_port = _free_port()
    # Ray, its proxies and the replicas' models start first: minutes on a busy machine.
    cloud = ServiceProcess("cloud", [*_cloud_args(args), "--ray-grpc-port", str(proxy_port)], args.out / "cloud.log",
                           startup_timeout=600)
    targets = {"ours": cloud.target, "ray-proxy": f"127.0.0.1:{proxy_port}"}
    rounds: list[Round] = []
    try:
        for front in FRONTS:  # the first calls of each replica and of each path pay for lazy initialisation
            asyncio.run(_load(targets[front], args, 2 * args.replicas, 1))
        for n in clients:
            for r in range(args.rounds):
                for front in (FRONTS if r % 2 == 0 else FRONTS[::-1]):
                    rounds.append(_round(targets[front], front, n, r, args))
                    row = rounds[-1]
                    print(f"{front}, {n} clients, round {r + 1}: {row.ok}/{row.requests} ok, {row.throughput:.3f} req/s, "
                          f"p95 {row.p95}", file=sys.stderr)
    finally:
        cloud.stop()
    (args.out / "results.json").write_text(json.dumps(
        {"machine": {**machine_info(placement.device, placement.dtype), "service_threads": args.service_threads,
                     "replicas": args.replicas, "replica_cpus": args.replica_cpus}, "steps": args.steps,
         "strategies": args.strategies, "model": "tiny" if args.tiny else (args.cloud_model or "toyworld-cloud"),
         "rounds": [asdict(r) for r in rounds]}, indent=1) + "\n")
    text = table(rounds)
    (args.out / "table.md").write_text(text)
    print(text)
    return 0


def _cloud_args(args) -> list[str]:
    model = ["--model", "tiny"] if args.tiny else (["--model", args.cloud_model] if args.cloud_model else [])
    guidance = ["--guidance", repr(args.guidance)] if args.guidance is not None else []
    return [*model, *guidance, "--torch-threads", str(args.service_threads), *placement_flags(args), "--predictors", "none",
            "--ray", "--replicas", str(args.replicas), "--replica-cpus", str(args.replica_cpus),
            "--max-batch", str(args.max_batch), "--max-running", str(max(2 * args.max_batch, 2)),
            "--max-queue", str(args.max_queue)]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def _load(target: str, args, clients: int, per_client: int) -> list[tuple[float, str, str]]:
    client = Client(target, "cloud", args.steps, StrategyDefaults.load(args.strategy_config))
    try:
        return await closed_loop(client, clients, per_client, None, args.strategies.split(","))
    finally:
        await client.close()


def _round(target: str, front: str, clients: int, index: int, args) -> Round:
    started = time.perf_counter()
    results = asyncio.run(_load(target, args, clients, args.requests_per_client))
    seconds = time.perf_counter() - started
    latencies = [s for s, status, _ in results if status == "OK"]
    errors = Counter(status for _, status, _ in results if status != "OK")
    return Round(front, clients, index, len(results), len(latencies), dict(errors), round(seconds, 3),
                 round(len(latencies) / seconds, 3), percentile(latencies, 0.5), percentile(latencies, 0.95))


def table(rounds: list[Round]) -> str:
    def median(values):
        values = [v for v in values if v is not None]
        return f"{statistics.median(values):.3f}" if values else "-"

    lines = ["| front | clients | rounds | ok / sent | errors | throughput min (req/s) | throughput median (req/s) "
             "| p50 median (s) | p95 median (s) |", "|---|---|---|---|---|---|---|---|---|"]
    for clients in sorted({r.clients for r in rounds}):
        for front in FRONTS:
            rows = [r for r in rounds if r.front == front and r.clients == clients]
            if not rows:
                continue
            errors = Counter()
            for r in rows:
                errors.update(r.errors)
            lines.append(f"| {front} | {clients} | {len(rows)} | {sum(r.ok for r in rows)} / {sum(r.requests for r in rows)} "
                         f"| {dict(errors) or 0} | {min(r.throughput for r in rows):.3f} "
                         f"| {median([r.throughput for r in rows])} | {median([r.p50 for r in rows])} "
                         f"| {median([r.p95 for r in rows])} |")
    return "\n".join(lines) + "\n"


def add_arguments(parser) -> None:
    parser.add_argument("--replicas", type=int, default=1, help="Ray Serve replicas (default: 1)")
    parser.add_argument("--replica-cpus", type=float, default=1.0, help="CPUs per replica (default: 1)")
    parser.add_argument("--clients", default="1,8", help="closed-loop concurrent clients, comma-separated (default: 1,8)")
    parser.add_argument("--requests-per-client", type=int, default=4, help="requests per client per round (default: 4)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per front and client count, alternating the "
                        "front that goes first (default: 3)")
    parser.add_argument("--strategies", default="ecdiff", help="strategies mixed round-robin (default: ecdiff)")
    parser.add_argument("--steps", type=int, default=20, help="denoising steps (default: 20)")
    parser.add_argument("--max-batch", type=int, default=EngineConfig.max_batch,
                        help=f"each replica's engine: samples per UNet call (default: {EngineConfig.max_batch})")
    parser.add_argument("--max-queue", type=int, default=64, help="each replica's engine queue (default: 64)")
    parser.add_argument("--service-threads", type=int, default=1, help="torch threads of each replica (default: 1)")
    parser.add_argument("--strategy-config", type=Path, help="strategy defaults (default: $ECDIFF_STRATEGY_CONFIG or "
                        "configs/strategy.toml)")
    parser.add_argument("--out", type=Path, default=Path("out/bench-ray-proxy"),
                        help="output folder (default: out/bench-ray-proxy)")
