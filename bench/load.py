"""`ecdiff bench load`: throughput and latency of the cloud under many concurrent edge devices.

For every cloud (`--clouds plain,ray:1,ray:2`: one process, or Ray Serve with N replicas of
`--replica-cpus` each behind the gRPC front end) and every engine setting (`--max-batch 1,8`: 1 is
one request per UNet call, today's behaviour before the engine; larger values batch), one cloud
service runs as a child process (`ecdiff serve cloud [--ray]`, as deployed) with its Prometheus
exporter (Ray: every replica's engine, summed). Against it, in this process:
- closed loop (`--clients 8,32`): N clients, each sending its next request when the last ended,
  `--requests-per-client` each (or for `--duration` seconds: the soak mode);
- open loop (`--rate R`): Poisson arrivals at R requests per second for `--duration` seconds.
A request is the cloud phase through `CloudDenoiser.Denoise` (`--target cloud`, latency to the
handoff), or a whole generation through an EdgeDenoiser (`--target edge`, latency to the PNG).
Strategies are mixed round-robin (`--strategies ecdiff,cloud`), seeds all differ.

Reported per run: throughput, p50/p95/p99 latency, errors by status code, batch occupancy (mean
requests per UNet call, from the cloud's metrics), peak RSS and thread count of the cloud process
and its children (Ray's processes and replicas included; sampled every 0.5 s; in soak mode also over time). Outputs: results.json, table.md and
latency_vs_throughput.png under --out.
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import sys
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

import grpc
import psutil
from prometheus_client.parser import text_string_to_metric_families

from ecdiff.cli_options import apply_torch_threads, placement_flags, placement_from_args
from ecdiff.conventions import DEFAULT_NUM_STEPS
from ecdiff.search.chart import PALETTE, Chart
from ecdiff.services.config import CHANNEL_OPTIONS
from ecdiff.services.process import ServiceProcess
from ecdiff.strategy_config import StrategyDefaults
from ecdiff.v1 import cloud_pb2, cloud_pb2_grpc, edge_pb2, edge_pb2_grpc, strategy_pb2

from .quality_runner import machine_info

PROMPT = "a small red circle at the top left on a white background"


@dataclass
class RunResult:
    cloud: str  # "plain" | "ray:N" (N replicas)
    max_batch: int
    mode: str  # "closed" | "open"
    load: float  # clients (closed) or arrivals per second (open)
    strategies: str
    requests: int
    ok: int
    errors: dict
    seconds: float
    throughput: float  # completed requests per second
    p50: Optional[float]
    p95: Optional[float]
    p99: Optional[float]
    batch_occupancy: Optional[float]  # mean requests per UNet call during the run
    unet_calls: int
    peak_rss_mb: float
    peak_threads: int
    memory_over_time: list = field(default_factory=list)  # soak: (seconds, rss MB, threads)


def percentile(values: list[float], q: float) -> Optional[float]:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def scrape(port: int) -> dict[str, float]:
    """Each sample name's value, summed over its label values (a Ray cloud labels every replica's)."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    totals: Counter = Counter()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            totals[sample.name] += sample.value
    return dict(totals)


class ProcessSampler(threading.Thread):
    """RSS and thread count of a process and its children every `every` seconds, until stopped."""

    def __init__(self, pid: int, every: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.process, self.every = psutil.Process(pid), every
        self.samples: list[tuple[float, float, int]] = []
        self._halt, self._t0 = threading.Event(), time.monotonic()

    def run(self) -> None:
        while not self._halt.is_set():
            rss, threads = 0, 0
            for process in (self.process, *self.process.children(recursive=True)):
                try:
                    rss, threads = rss + process.memory_info().rss, threads + process.num_threads()
                except psutil.NoSuchProcess:  # a child that ended between the listing and the look
                    continue
            self.samples.append((round(time.monotonic() - self._t0, 2), rss / 2**20, threads))
            self._halt.wait(self.every)

    def stop(self) -> list[tuple[float, float, int]]:
        self._halt.set()
        self.join()
        return self.samples


class Client:
    """Requests through the generated stubs only, as an outside client would make them."""

    def __init__(self, target: str, kind: str, num_steps: int, defaults: StrategyDefaults) -> None:
        self.kind, self.num_steps = kind, num_steps
        self.channel = grpc.aio.insecure_channel(target, options=[*CHANNEL_OPTIONS,
                                                                   ("grpc.max_receive_message_length", 16 << 20)])
        self.params = {name: strategy_pb2.StrategyParams(**defaults.resolve(name, num_steps, {})[1].as_dict())
                       for name in ("cloud", "ecdiff", "hybrid", "edge")}

    async def one(self, strategy: str, seed: int) -> tuple[float, str]:
        """(seconds, status name) of one request."""
        started = time.perf_counter()
        try:
            if self.kind == "cloud":
                request = cloud_pb2.DenoiseRequest(prompt=PROMPT, seed=seed, num_steps=self.num_steps, strategy=strategy,
                                                   params=self.params[strategy])
                ended = False
                async for event in cloud_pb2_grpc.CloudDenoiserStub(self.channel).Denoise(request, timeout=600):
                    ended = event.HasField("handoff")
                status = "OK" if ended else "NO_HANDOFF"
            else:
                request = edge_pb2.GenerateRequest(prompt=PROMPT, seed=seed, num_steps=self.num_steps, strategy=strategy,
                                                   params=self.params[strategy], require_cloud=True)
                result = None
                async for event in edge_pb2_grpc.EdgeDenoiserStub(self.channel).Generate(request, timeout=600):
                    result = event.result if event.HasField("result") else result
                status = "OK" if result is not None and not result.summary.degraded else "DEGRADED"
        except grpc.aio.AioRpcError as exc:
            status = exc.code().name
        return time.perf_counter() - started, status

    async def close(self) -> None:
        await self.channel.close()


async def closed_loop(client: Client, clients: int, per_client: int, duration: Optional[float],
                      strategies: list[str]) -> list[tuple[float, str]]:
    results: list[tuple[float, str]] = []
    seeds = iter(range(10**9))
    end = None if duration is None else time.monotonic() + duration

    async def user(index: int) -> None:
        sent = 0
        while (end is None and sent < per_client) or (end is not None and time.monotonic() < end):
            results.append(await client.one(strategies[(index + sent) % len(strategies)], next(seeds)))
            sent += 1

    await asyncio.gather(*(user(i) for i in range(clients)))
    return results


async def open_loop(client: Client, rate: float, duration: float, strategies: list[str], seed: int) -> list[tuple[float, str]]:
    rng = random.Random(seed)
    tasks, now, end, n = [], time.monotonic(), time.monotonic() + duration, 0
    while now < end:
        tasks.append(asyncio.create_task(client.one(strategies[n % len(strategies)], n)))
        n += 1
        await asyncio.sleep(rng.expovariate(rate))
        now = time.monotonic()
    return list(await asyncio.gather(*tasks))


def run_one(services: list[ServiceProcess], args, cloud_kind: str, max_batch: int, mode: str, load: float) -> RunResult:
    cloud = services[0]
    target = services[-1].target
    defaults = StrategyDefaults.load(args.strategy_config)
    strategies = args.strategies.split(",")
    before = scrape(cloud.metrics_port)
    sampler = ProcessSampler(cloud.proc.pid)
    sampler.start()

    async def go():
        client = Client(target, args.target, args.steps, defaults)
        try:
            started = time.perf_counter()
            if mode == "closed":
                results = await closed_loop(client, int(load), args.requests_per_client, args.duration, strategies)
            else:
                results = await open_loop(client, load, args.duration or 30.0, strategies, args.seed)
            return results, time.perf_counter() - started
        finally:
            await client.close()

    results, seconds = asyncio.run(go())
    samples = sampler.stop()
    after = scrape(cloud.metrics_port)
    calls = int(after["ecdiff_unet_calls_total"] - before["ecdiff_unet_calls_total"])
    samples_served = after["ecdiff_unet_samples_total"] - before["ecdiff_unet_samples_total"]
    latencies = [s for s, status in results if status == "OK"]
    errors = Counter(status for _, status in results if status != "OK")
    return RunResult(cloud_kind, max_batch, mode, load, args.strategies, len(results), len(latencies), dict(errors), round(seconds, 3),
                     round(len(latencies) / seconds, 3), percentile(latencies, 0.5), percentile(latencies, 0.95),
                     percentile(latencies, 0.99), round(samples_served / calls, 2) if calls else None, calls,
                     round(max(m for _, m, _ in samples), 1), max(t for _, _, t in samples),
                     samples if args.duration and mode == "closed" else [])


def start_services(args, cloud_kind: str, max_batch: int) -> list[ServiceProcess]:
    model = ["--model", "tiny"] if args.tiny else (["--model", args.cloud_model] if args.cloud_model else [])
    threads = ["--torch-threads", str(args.service_threads), *placement_flags(args)] + \
        (["--guidance", repr(args.guidance)] if args.guidance is not None else [])
    ray = [] if cloud_kind == "plain" else ["--ray", "--replicas", cloud_kind.split(":")[1],
                                            "--replica-cpus", str(args.replica_cpus)]
    name = cloud_kind.replace(":", "")
    cloud = ServiceProcess("cloud", [*model, *threads, *ray, "--predictors", "none", "--metrics-port", "0",
                                     "--max-batch", str(max_batch), "--max-running", str(max(2 * max_batch, 2)),
                                     "--max-queue", str(args.max_queue)], args.out / f"cloud-{name}-batch{max_batch}.log")
    if args.target == "cloud":
        return [cloud]
    edge_model = ["--model", "tiny"] if args.tiny else (["--model", args.edge_model] if args.edge_model else [])
    try:
        edge = ServiceProcess("edge", [*edge_model, *threads, "--cloud", cloud.target, "--predictors", "none",
                                       "--session-db", ":memory:", "--max-concurrency", str(args.edge_concurrency)],
                              args.out / f"edge-{name}-batch{max_batch}.log")
    except BaseException:
        cloud.stop()
        raise
    return [cloud, edge]


def table(rows: list[RunResult]) -> str:
    def fmt(x, unit=""):
        return "-" if x is None else f"{x:.3f}{unit}"

    lines = ["| cloud | max batch | load | strategies | ok / sent | errors | throughput (req/s) | p50 (s) | p95 (s) | p99 (s) "
             "| batch occupancy | peak RSS (MB) | peak threads |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        load = f"{int(r.load)} clients" if r.mode == "closed" else f"{r.load:g} req/s Poisson"
        errors = ", ".join(f"{k} {v}" for k, v in r.errors.items()) or "0"
        lines.append(f"| {r.cloud} | {r.max_batch} | {load} | {r.strategies} | {r.ok} / {r.requests} | {errors} | {r.throughput:.3f} "
                     f"| {fmt(r.p50)} | {fmt(r.p95)} | {fmt(r.p99)} | {fmt(r.batch_occupancy)} | {r.peak_rss_mb:.0f} "
                     f"| {r.peak_threads} |")
    return "\n".join(lines) + "\n"


def plot(rows: list[RunResult], path: Path) -> None:
    points = [(r.throughput, r.p95) for r in rows if r.p95 is not None]
    if len(points) < 2:
        return
    chart = Chart([x for x, _ in points], [y for _, y in points], "p95 latency vs throughput", "requests per second",
                  "p95 latency (s)")
    for i, key in enumerate(sorted({(r.cloud, r.max_batch, r.strategies) for r in rows})):
        series = sorted((r.throughput, r.p95) for r in rows
                        if (r.cloud, r.max_batch, r.strategies) == key and r.p95 is not None)
        if series:
            chart.line([x for x, _ in series], [y for _, y in series], PALETTE[i % len(PALETTE)],
                       f"{key[0]} cloud, max batch {key[1]}, {key[2]}")
    chart.save(path)


def run(args) -> int:
    try:
        apply_torch_threads(args)
        placement = placement_from_args(args)  # checked here, before any service starts
        batches = [int(b) for b in args.max_batch.split(",")]
        clouds = args.clouds.split(",")
        for kind in clouds:
            if kind != "plain" and not (kind.startswith("ray:") and kind[4:].isdigit() and int(kind[4:]) >= 1):
                raise ValueError(f"--clouds: {kind!r} is neither 'plain' nor 'ray:N' with N >= 1 replicas")
        loads = ([("closed", float(c)) for c in args.clients.split(",")] if args.clients else []) + \
                ([("open", float(r)) for r in args.rate.split(",")] if args.rate else [])
        if not loads or any(load <= 0 for _, load in loads) or any(b < 1 for b in batches):
            raise ValueError("need --clients and/or --rate values > 0 and --max-batch values >= 1")
        for name in args.strategies.split(","):
            if name not in ("cloud", "ecdiff", "hybrid", "edge"):
                raise ValueError(f"unknown strategy {name!r}")
    except ValueError as exc:
        print(f"ecdiff bench load: error: {exc}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    rows: list[RunResult] = []
    for kind in clouds:
        for batch in batches:
            services = start_services(args, kind, batch)
            try:
                # Warm-up: the first calls of a process (of each replica) pay for allocation and lazy initialisation.
                asyncio.run(_warm(services[-1].target, args, _replicas(kind)))
                for mode, load in loads:
                    row = run_one(services, args, kind, batch, mode, load)
                    rows.append(row)
                    print(f"{kind} cloud, max batch {batch}, {mode} {load:g}: {row.ok}/{row.requests} ok, "
                          f"{row.throughput:.3f} req/s, p95 {row.p95}, occupancy {row.batch_occupancy}", file=sys.stderr)
            finally:
                for service in reversed(services):
                    service.stop()
    (args.out / "results.json").write_text(json.dumps(
        {"machine": {**machine_info(placement.device, placement.dtype), "service_threads": args.service_threads,
                     "replica_cpus": args.replica_cpus}, "target": args.target, "steps": args.steps, "model": "tiny" if args.tiny else
         (args.cloud_model or "toyworld-cloud"), "runs": [asdict(r) for r in rows]}, indent=1) + "\n")
    text = table(rows)
    (args.out / "table.md").write_text(text)
    plot(rows, args.out / "latency_vs_throughput.png")
    print(text)
    return 0


def _replicas(kind: str) -> int:
    return 1 if kind == "plain" else int(kind.split(":")[1])


async def _warm(target: str, args, replicas: int) -> None:
    client = Client(target, args.target, args.steps, StrategyDefaults.load(args.strategy_config))
    try:  # concurrent requests, so Ray's router spreads them over the replicas
        await asyncio.gather(*(client.one(args.strategies.split(",")[0], 10**9 + i) for i in range(2 * replicas)))
    finally:
        await client.close()


def add_arguments(parser) -> None:
    parser.add_argument("--target", choices=("cloud", "edge"), default="cloud",
                        help="cloud: the cloud phase through CloudDenoiser.Denoise; edge: whole generations through "
                             "an EdgeDenoiser (default: cloud)")
    parser.add_argument("--clients", default="8,32", help="closed-loop concurrent clients, comma-separated "
                        "(default: 8,32; empty for none)")
    parser.add_argument("--requests-per-client", type=int, default=3, help="closed loop: requests per client (default: 3)")
    parser.add_argument("--rate", default="", help="open-loop Poisson arrival rates in requests per second, "
                        "comma-separated (default: none)")
    parser.add_argument("--duration", type=float, help="seconds per run: the open loop's length, and a closed-loop soak "
                        "instead of --requests-per-client, with memory and threads over time (default: none)")
    parser.add_argument("--strategies", default="ecdiff", help="strategies mixed round-robin (default: ecdiff)")
    parser.add_argument("--max-batch", default="1,8", help="engine settings to compare, comma-separated; 1 = one "
                        "request per UNet call (default: 1,8)")
    parser.add_argument("--clouds", default="plain", help="clouds to compare, comma-separated: plain (one process) "
                        "or ray:N (Ray Serve, N replicas behind the gRPC front end) (default: plain)")
    parser.add_argument("--replica-cpus", type=float, default=1.0, help="ray:N clouds: CPUs per replica (default: 1)")
    parser.add_argument("--max-queue", type=int, default=64, help="the cloud engine's queue (default: 64)")
    parser.add_argument("--edge-concurrency", type=int, default=64,
                        help="--target edge: the edge's concurrent generations (default: 64)")
    parser.add_argument("--steps", type=int, default=DEFAULT_NUM_STEPS, help=f"denoising steps (default: {DEFAULT_NUM_STEPS})")
    parser.add_argument("--service-threads", type=int, default=2, help="torch threads of each service (default: 2)")
    parser.add_argument("--strategy-config", type=Path, help="strategy defaults (default: $ECDIFF_STRATEGY_CONFIG or "
                        "configs/strategy.toml)")
    parser.add_argument("--seed", type=int, default=0, help="open loop: seed of the arrival times (default: 0)")
    parser.add_argument("--out", type=Path, default=Path("out/bench-load"), help="output folder (default: out/bench-load)")
