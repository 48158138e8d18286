"""`ecdiff bench load`: throughput and latency of the cloud under many concurrent edge devices.

For every cloud (`--clouds plain,ray:1,ray:2`: one process, or Ray Serve with N replicas of
`--replica-cpus` each behind the gRPC front end), every engine setting (`--max-batch 1,16`: 1 is
one request per UNet call, today's behaviour before the engine; larger values batch) and every
load-adaptive quality setting (`--adaptive on,off`: `on` starts the cloud with `--adaptive-quality`,
and `--adaptive-queue`, `--frontier-config` when given; every request allows a cheaper point, and
`--deadline` gives each one a deadline to meet), one cloud service runs as a child process
(`ecdiff serve cloud [--ray]`, as deployed) with its Prometheus exporter (Ray: every replica's
engine, summed). Against it, in this process:
- closed loop (`--clients 8,32`): N clients, each sending its next request when the last ended,
  `--requests-per-client` each (or for `--duration` seconds: the soak mode);
- open loop (`--rate R`): Poisson arrivals at R requests per second for `--duration` seconds.
A request is the cloud phase through `CloudDenoiser.Denoise` (`--target cloud`, latency to the
handoff), or a whole generation through an EdgeDenoiser (`--target edge`, latency to the PNG).
Strategies are mixed round-robin (`--strategies ecdiff,cloud`), seeds all differ. `--hostile F`
(closed loop): a fraction F of the requests are hostile instead (bench/hostile.py: malformed,
garbage bytes, cancelled, deadline expiries, abrupt disconnects), to check that the valid ones
around them still all succeed.

Reported per run: throughput, p50/p95/p99 latency, errors by status code (valid requests only),
requests served with a cheaper EC-Diff point (and which points), degraded results by reason,
hostile outcomes by kind and status (and how many were not an expected status), batch occupancy
(mean requests per UNet call, from the cloud's metrics), RSS, threads and open fds of every service
process and its children (Ray's processes and replicas included; sampled every 0.5 s: peak, and
after the warm-up the first, lowest, highest and last values and the RSS drift), and the CPU
seconds per request each of those processes and this one (the clients) used: where the cores went. Outputs:
results.json, table.md and latency_vs_throughput.png under --out.
"""

from __future__ import annotations

import asyncio
import itertools
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
from ecdiff.engine.config import EngineConfig
from ecdiff.conventions import DEFAULT_NUM_STEPS
from ecdiff.search.chart import PALETTE, Chart
from ecdiff.services.config import CHANNEL_OPTIONS, REPLICA_STATS_EVERY_S
from ecdiff.services.process import ServiceProcess
from ecdiff.strategy_config import StrategyDefaults
from ecdiff.v1 import cloud_pb2, cloud_pb2_grpc, edge_pb2, edge_pb2_grpc, strategy_pb2

from .hostile import EXPECTED as HOSTILE_EXPECTED, KINDS as HOSTILE_KINDS, HostileClient
from .quality_runner import machine_info

PROMPT = "a small red circle at the top left on a white background"
CLIENT_OPTIONS = [*CHANNEL_OPTIONS, ("grpc.max_receive_message_length", 16 << 20), ("grpc.max_send_message_length", 4 << 20)]


@dataclass
class RunResult:
    cloud: str  # "plain" | "ray:N" (N replicas)
    max_batch: int
    adaptive: bool  # the cloud ran with load-adaptive quality on
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
    memory_over_time: list = field(default_factory=list)  # soak: the cloud's (seconds, rss MB, threads, fds)
    degraded: dict = field(default_factory=dict)  # valid requests: degraded reason -> count
    hostile: dict = field(default_factory=dict)  # kind -> {status: count}
    hostile_unexpected: int = 0  # hostile requests that ended with a status their kind should not
    processes: dict = field(default_factory=dict)  # role -> resource figures after the warm-up
    downgraded: int = 0  # valid requests served with a cheaper EC-Diff point
    served: dict = field(default_factory=dict)  # downgraded requests: "p P, k K, s S" served -> count
    # role ("cloud", "edge", "clients") -> process name -> CPU seconds during the run: where the cores went
    cpu_seconds: dict = field(default_factory=dict)


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


def settled_scrape(port: int, publication_s: float, attempts: int = 10) -> dict[str, float]:
    """`scrape`, for a cloud whose figures reach the exporter up to `publication_s` late (Ray replicas
    publish their engine's periodically): scraped again after each publication until the UNet call
    count holds still (it does between runs: the engines are idle)."""
    figures = scrape(port)
    if publication_s <= 0:
        return figures
    for _ in range(attempts):
        time.sleep(1.5 * publication_s)
        previous, figures = figures, scrape(port)
        if figures.get("ecdiff_unet_calls_total") == previous.get("ecdiff_unet_calls_total"):
            break
    return figures


class ProcessSampler(threading.Thread):
    """(seconds, RSS MB, threads, open fds) of a process and its children every `every` seconds, until
    stopped; and the CPU seconds each of them used meanwhile (`cpu_seconds`)."""

    def __init__(self, pid: int, every: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.process, self.every = psutil.Process(pid), every
        self.samples: list[tuple[float, float, int, int]] = []
        self._cpu: dict[int, list] = {}  # pid -> [name, CPU seconds at the first look, at the last]
        self._halt, self._t0 = threading.Event(), time.monotonic()

    def run(self) -> None:
        while not self._halt.is_set():
            self._look()
            self._halt.wait(self.every)
        self._look()  # the CPU used up to the stop

    def _look(self) -> None:
        rss, threads, fds = 0, 0, 0
        for process in (self.process, *self.process.children(recursive=True)):
            try:
                with process.oneshot():
                    rss, threads, fds = (rss + process.memory_info().rss, threads + process.num_threads(),
                                         fds + process.num_fds())
                    cpu = sum(process.cpu_times()[:2])
                    if process.pid in self._cpu:
                        self._cpu[process.pid][2] = cpu
                    else:
                        self._cpu[process.pid] = [process.name(), cpu, cpu]
            except psutil.NoSuchProcess:  # a child that ended between the listing and the look
                continue
        self.samples.append((round(time.monotonic() - self._t0, 2), rss / 2**20, threads, fds))

    def stop(self) -> list[tuple[float, float, int, int]]:
        self._halt.set()
        self.join()
        return self.samples

    def cpu_seconds(self) -> dict[str, float]:
        """Process name -> CPU seconds (user + system) its processes used while sampled, largest first."""
        totals: Counter = Counter()
        for name, first, last in self._cpu.values():
            totals[name] += last - first
        return {name: round(seconds, 2) for name, seconds in totals.most_common()}


def after_warm_up(samples: list[tuple[float, float, int, int]], warm_up_s: float) -> dict:
    """A process's RSS, threads and fds from the first sample at or after `warm_up_s` on: first,
    lowest, highest, last; and the RSS drift, the largest distance from the first."""
    kept = [s for s in samples if s[0] >= warm_up_s] or samples[-1:]
    figures = {"warm_up_s": warm_up_s, "samples": len(kept)}
    for index, name in ((1, "rss_mb"), (2, "threads"), (3, "fds")):
        values = [s[index] for s in kept]
        figures[name] = {"first": values[0], "min": min(values), "max": max(values), "last": values[-1]}
    figures["rss_drift_mb"] = round(max(abs(v[1] - kept[0][1]) for v in kept), 1)
    return figures


class Client:
    """Requests through the generated stubs only, as an outside client would make them."""

    def __init__(self, target: str, kind: str, num_steps: int, defaults: StrategyDefaults,
                 deadline_s: float = 600.0) -> None:
        self.kind, self.num_steps, self.deadline_s = kind, num_steps, deadline_s
        self.channel = grpc.aio.insecure_channel(target, options=CLIENT_OPTIONS)
        self.degraded: Counter = Counter()  # reason -> count
        self.served: Counter = Counter()  # a cheaper point the cloud served -> count
        self.params = {name: strategy_pb2.StrategyParams(**defaults.resolve(name, num_steps, {})[1].as_dict())
                       for name in ("cloud", "ecdiff", "hybrid", "edge")}

    async def one(self, strategy: str, seed: int) -> tuple[float, str]:
        """(seconds, status name) of one request."""
        started = time.perf_counter()
        try:
            if self.kind == "cloud":
                request = cloud_pb2.DenoiseRequest(prompt=PROMPT, seed=seed, num_steps=self.num_steps, strategy=strategy,
                                                   params=self.params[strategy], allow_downgrade=True)
                handoff = None
                async for event in cloud_pb2_grpc.CloudDenoiserStub(self.channel).Denoise(request,
                                                                                         timeout=self.deadline_s):
                    handoff = event.handoff if event.HasField("handoff") else None
                status = "OK" if handoff is not None else "NO_HANDOFF"
                if handoff is not None and handoff.downgraded:
                    self.served[point_name(handoff.params)] += 1
            else:
                request = edge_pb2.GenerateRequest(prompt=PROMPT, seed=seed, num_steps=self.num_steps, strategy=strategy,
                                                   params=self.params[strategy], require_cloud=True)
                result = None
                async for event in edge_pb2_grpc.EdgeDenoiserStub(self.channel).Generate(request,
                                                                                       timeout=self.deadline_s):
                    result = event.result if event.HasField("result") else result
                status = "OK" if result is not None and not result.summary.degraded else "DEGRADED"
                if status == "DEGRADED" and result is not None:
                    self.degraded[result.summary.degraded_reason] += 1
                if result is not None and result.summary.downgraded:
                    self.served[point_name(result.summary.served_params)] += 1
        except grpc.aio.AioRpcError as exc:
            status = exc.code().name
        return time.perf_counter() - started, status

    async def close(self) -> None:
        await self.channel.close()


def point_name(params: strategy_pb2.StrategyParams) -> str:
    return f"p {params.pre_steps}, k {params.k}, s {params.switch_step}"


async def closed_loop(client: Client, clients: int, per_client: int, duration: Optional[float],
                      strategies: list[str], hostile: Optional[HostileClient] = None, hostile_fraction: float = 0.0,
                      seed: int = 0) -> list[tuple[float, str, str]]:
    """(seconds, status, kind) of every request; kind "valid" or a hostile kind."""
    results: list[tuple[float, str, str]] = []
    seeds = iter(range(10**9))
    end = None if duration is None else time.monotonic() + duration
    rng = random.Random(seed)
    kinds = iter(HOSTILE_KINDS * 10**6)

    async def user(index: int) -> None:
        sent = 0
        while (end is None and sent < per_client) or (end is not None and time.monotonic() < end):
            if hostile is not None and rng.random() < hostile_fraction:
                kind = next(kinds)
                results.append((*await hostile.one(kind, next(seeds), rng), kind))
            else:
                results.append((*await client.one(strategies[(index + sent) % len(strategies)], next(seeds)), "valid"))
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
    return [(*result, "valid") for result in await asyncio.gather(*tasks)]


def run_one(services: list[ServiceProcess], args, cloud_kind: str, max_batch: int, adaptive: bool, mode: str,
            load: float) -> RunResult:
    cloud = services[0]
    target = services[-1].target
    defaults = StrategyDefaults.load(args.strategy_config)
    strategies = args.strategies.split(",")
    publication_s = 0.0 if cloud_kind == "plain" else REPLICA_STATS_EVERY_S
    before = settled_scrape(cloud.metrics_port, publication_s)
    samplers = {service.role: ProcessSampler(service.proc.pid) for service in services}
    for sampler in samplers.values():
        sampler.start()
    clients_cpu = sum(psutil.Process().cpu_times()[:2])
    degraded: Counter = Counter()
    served: Counter = Counter()

    async def go():
        client = Client(target, args.target, args.steps, defaults, args.deadline)
        hostile = HostileClient(target, args.target, args.steps, CLIENT_OPTIONS) if args.hostile else None
        try:
            started = time.perf_counter()
            if mode == "closed":
                results = await closed_loop(client, int(load), args.requests_per_client, args.duration, strategies,
                                            hostile, args.hostile, args.seed)
            else:
                results = await open_loop(client, load, args.duration or 30.0, strategies, args.seed)
            degraded.update(client.degraded)
            served.update(client.served)
            return results, time.perf_counter() - started
        finally:
            await client.close()
            if hostile is not None:
                await hostile.close()

    results, seconds = asyncio.run(go())
    clients_cpu = sum(psutil.Process().cpu_times()[:2]) - clients_cpu
    samples = {role: sampler.stop() for role, sampler in samplers.items()}
    cpu = {role: sampler.cpu_seconds() for role, sampler in samplers.items()}
    cpu["clients"] = {"bench (this process)": round(clients_cpu, 2)}
    after = settled_scrape(cloud.metrics_port, publication_s)
    calls = int(after["ecdiff_unet_calls_total"] - before["ecdiff_unet_calls_total"])
    samples_served = after["ecdiff_unet_samples_total"] - before["ecdiff_unet_samples_total"]
    valid = [(s, status) for s, status, kind in results if kind == "valid"]
    latencies = [s for s, status in valid if status == "OK"]
    errors = Counter(status for _, status in valid if status != "OK")
    hostile: dict = {}
    for _, status, kind in results:
        if kind != "valid":
            hostile.setdefault(kind, Counter())[status] += 1
    unexpected = sum(n for kind, statuses in hostile.items() for status, n in statuses.items()
                     if status not in HOSTILE_EXPECTED[kind])
    warm_up_s = min(60.0, seconds / 5)
    cloud_samples = samples["cloud"]
    return RunResult(cloud_kind, max_batch, adaptive, mode, load, args.strategies, len(valid), len(latencies), dict(errors),
                     round(seconds, 3),
                     round(len(latencies) / seconds, 3), percentile(latencies, 0.5), percentile(latencies, 0.95),
                     percentile(latencies, 0.99), round(samples_served / calls, 2) if calls else None, calls,
                     round(max(s[1] for s in cloud_samples), 1), max(s[2] for s in cloud_samples),
                     cloud_samples if args.duration and mode == "closed" else [], dict(degraded),
                     {kind: dict(statuses) for kind, statuses in hostile.items()}, unexpected,
                     {role: after_warm_up(s, warm_up_s) for role, s in samples.items()}, sum(served.values()),
                     dict(served), cpu)


def start_services(args, cloud_kind: str, max_batch: int, adaptive: bool) -> list[ServiceProcess]:
    model = ["--model", "tiny"] if args.tiny else (["--model", args.cloud_model] if args.cloud_model else [])
    threads = ["--torch-threads", str(args.service_threads), *placement_flags(args)] + \
        (["--guidance", repr(args.guidance)] if args.guidance is not None else [])
    ray = [] if cloud_kind == "plain" else ["--ray", "--replicas", cloud_kind.split(":")[1],
                                            "--replica-cpus", str(args.replica_cpus)]
    quality = [] if not adaptive else ["--adaptive-quality", *(["--adaptive-queue", str(args.adaptive_queue)]
                                                               if args.adaptive_queue else []),
                                       *(["--frontier-config", str(args.frontier_config)] if args.frontier_config else [])]
    name = cloud_kind.replace(":", "") + f"-batch{max_batch}" + ("-adaptive" if adaptive else "")
    cloud = ServiceProcess("cloud", [*model, *threads, *ray, *quality, "--predictors", "none", "--metrics-port", "0",
                                     "--max-batch", str(max_batch), "--max-running", str(max(2 * max_batch, 2)),
                                     "--max-queue", str(args.max_queue)], args.out / f"cloud-{name}.log")
    if args.target == "cloud":
        return [cloud]
    edge_model = ["--model", "tiny"] if args.tiny else (["--model", args.edge_model] if args.edge_model else [])
    try:
        edge = ServiceProcess("edge", [*edge_model, *threads, "--cloud", cloud.target, "--predictors", "none",
                                       "--session-db", ":memory:", "--max-concurrency", str(args.edge_concurrency)],
                              args.out / f"edge-{name}.log")
    except BaseException:
        cloud.stop()
        raise
    return [cloud, edge]


def table(rows: list[RunResult]) -> str:
    def fmt(x, unit=""):
        return "-" if x is None else f"{x:.3f}{unit}"

    lines = ["| cloud | max batch | adaptive | load | strategies | ok / sent | errors | downgraded | throughput (req/s) "
             "| p50 (s) | p95 (s) | p99 (s) | batch occupancy | peak RSS (MB) | peak threads |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        load = f"{int(r.load)} clients" if r.mode == "closed" else f"{r.load:g} req/s Poisson"
        errors = ", ".join(f"{k} {v}" for k, v in r.errors.items()) or "0"
        lines.append(f"| {r.cloud} | {r.max_batch} | {'on' if r.adaptive else 'off'} | {load} | {r.strategies} "
                     f"| {r.ok} / {r.requests} | {errors} | {r.downgraded} | {r.throughput:.3f} "
                     f"| {fmt(r.p50)} | {fmt(r.p95)} | {fmt(r.p99)} | {fmt(r.batch_occupancy)} | {r.peak_rss_mb:.0f} "
                     f"| {r.peak_threads} |")
    return "\n".join(lines) + "\n" + "".join(soak_lines(r) for r in rows)


def soak_lines(r: RunResult) -> str:
    """Degraded results, hostile outcomes and each process's resources after the warm-up, of one run."""
    lines = [f"\nmax batch {r.max_batch}, adaptive {'on' if r.adaptive else 'off'}, {r.load:g} "
             f"{'clients' if r.mode == 'closed' else 'req/s'}:"]
    for point, count in r.served.items():
        lines.append(f"- served cheaper x{count}: {point}")
    for reason, count in r.degraded.items():
        lines.append(f"- degraded x{count}: {reason}")
    for kind, statuses in r.hostile.items():
        lines.append(f"- hostile {kind}: " + ", ".join(f"{status} {n}" for status, n in sorted(statuses.items())))
    if r.hostile:
        lines.append(f"- hostile requests with an unexpected status: {r.hostile_unexpected}")
    for role, p in r.processes.items():
        rss, threads, fds = p["rss_mb"], p["threads"], p["fds"]
        lines.append(f"- {role} after {p['warm_up_s']:.0f} s warm-up ({p['samples']} samples): RSS {rss['first']:.1f} -> "
                     f"{rss['last']:.1f} MB (min {rss['min']:.1f}, max {rss['max']:.1f}, drift {p['rss_drift_mb']} MB), "
                     f"threads {threads['first']} -> {threads['last']} ({threads['min']}-{threads['max']}), "
                     f"fds {fds['first']} -> {fds['last']} ({fds['min']}-{fds['max']})")
    if r.cpu_seconds and r.ok:
        total = sum(s for names in r.cpu_seconds.values() for s in names.values())
        lines.append(f"- CPU seconds per request served: {total / r.ok:.3f} in all ({total / r.seconds:.2f} cores busy); "
                     + "; ".join(f"{role} " + ", ".join(f"{name} {s / r.ok:.3f}" for name, s in names.items() if s > 0)
                                 for role, names in r.cpu_seconds.items()))
    return "\n".join(lines) + "\n"


def plot(rows: list[RunResult], path: Path) -> None:
    points = [(r.throughput, r.p95) for r in rows if r.p95 is not None]
    if len(points) < 2:
        return
    chart = Chart([x for x, _ in points], [y for _, y in points], "p95 latency vs throughput", "requests per second",
                  "p95 latency (s)")
    for i, key in enumerate(sorted({(r.cloud, r.max_batch, r.adaptive, r.strategies) for r in rows})):
        series = sorted((r.throughput, r.p95) for r in rows
                        if (r.cloud, r.max_batch, r.adaptive, r.strategies) == key and r.p95 is not None)
        if series:
            chart.line([x for x, _ in series], [y for _, y in series], PALETTE[i % len(PALETTE)],
                       f"{key[0]} cloud, max batch {key[1]}{', adaptive' if key[2] else ''}, {key[3]}")
    chart.save(path)


def run(args) -> int:
    try:
        apply_torch_threads(args)
        placement = placement_from_args(args)  # checked here, before any service starts
        batches = [int(b) for b in args.max_batch.split(",")]
        clouds = args.clouds.split(",")
        unknown = [a for a in args.adaptive.split(",") if a not in ADAPTIVE_SETTINGS]
        if unknown:
            raise ValueError(f"--adaptive: {', '.join(map(repr, unknown))} is neither 'on' nor 'off'")
        adaptive = [ADAPTIVE_SETTINGS[a] for a in args.adaptive.split(",")]
        if not (args.deadline > 0 and args.adaptive_queue >= 0):
            raise ValueError(f"need --deadline > 0 and --adaptive-queue >= 0, got {args.deadline} and {args.adaptive_queue}")
        for kind in clouds:
            if kind != "plain" and not (kind.startswith("ray:") and kind[4:].isdigit() and int(kind[4:]) >= 1):
                raise ValueError(f"--clouds: {kind!r} is neither 'plain' nor 'ray:N' with N >= 1 replicas")
        loads = ([("closed", float(c)) for c in args.clients.split(",")] if args.clients else []) + \
                ([("open", float(r)) for r in args.rate.split(",")] if args.rate else [])
        if not loads or any(load <= 0 for _, load in loads) or any(b < 1 for b in batches):
            raise ValueError("need --clients and/or --rate values > 0 and --max-batch values >= 1")
        if not 0 <= args.hostile < 1:
            raise ValueError(f"--hostile must be a fraction in [0, 1), got {args.hostile}")
        for name in args.strategies.split(","):
            if name not in ("cloud", "ecdiff", "hybrid", "edge"):
                raise ValueError(f"unknown strategy {name!r}")
    except ValueError as exc:
        print(f"ecdiff bench load: error: {exc}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    rows: list[RunResult] = []
    for kind, batch, quality in itertools.product(clouds, batches, adaptive):
        services = start_services(args, kind, batch, quality)
        try:
            # Warm-up: the first calls of a process (of each replica) pay for allocation and lazy initialisation.
            asyncio.run(_warm(services[-1].target, args, _replicas(kind)))
            for mode, load in loads:
                row = run_one(services, args, kind, batch, quality, mode, load)
                rows.append(row)
                print(f"{kind} cloud, max batch {batch}, adaptive {'on' if quality else 'off'}, {mode} {load:g}: "
                      f"{row.ok}/{row.requests} ok, {row.downgraded} downgraded, {row.throughput:.3f} req/s, "
                      f"p95 {row.p95}, occupancy {row.batch_occupancy}", file=sys.stderr)
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


ADAPTIVE_SETTINGS = {"on": True, "off": False}


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
    parser.add_argument("--hostile", type=float, default=0.0, help="closed loop: this fraction of the requests are "
                        "hostile (malformed, garbage, cancelled, deadline expiries, disconnects; bench/hostile.py) "
                        "(default: 0)")
    parser.add_argument("--max-batch", default=f"1,{EngineConfig.max_batch}",
                        help="engine settings to compare, comma-separated; 1 = one request per UNet call "
                        f"(default: 1,{EngineConfig.max_batch}: the cloud's default)")
    parser.add_argument("--adaptive", default="off", help="load-adaptive quality settings of the cloud to compare, "
                        "comma-separated: on (--adaptive-quality) or off (default: off)")
    parser.add_argument("--adaptive-queue", type=int, default=0, help="with --adaptive on: the cloud's "
                        "--adaptive-queue (serve cheaper from this queue length on; 0 = deadlines only) (default: 0)")
    parser.add_argument("--frontier-config", type=Path, help="with --adaptive on: the ladder the cloud serves "
                        "(default: the cloud's, configs/frontier.toml)")
    parser.add_argument("--deadline", type=float, default=600.0, help="each request's gRPC deadline in seconds: a "
                        "request whose deadline the cloud cannot meet is refused, or served cheaper with --adaptive "
                        "on (default: 600)")
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
