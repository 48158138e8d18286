"""`ecdiff bench capacity`: how many cloud replicas (GPUs) a target request rate and p95 need.

Inputs, all stated in the output: the batching curve, i.e. the time of one batched UNet call per
batch size (`--curve B:MS,...`, measured; the default is the shipped cloud UNet on this 2-core CPU,
2 torch threads, measured for issue 15), optionally rescaled so that batch 1 costs `--unet-ms` (the
step cost on the GPU you deploy on, which you measure: no GPU number is built in); the engine's
`--max-batch` and `--max-running`; the strategies' cloud UNet calls per request from
`configs/strategy.toml` at `--steps`; `--step-overhead-ms`, the cost of each cloud-phase step besides
the UNet call (DDIM update, approximated step, its event; calibrate it against `ecdiff bench load`).

The model: each replica runs the engine as built (continuous batching: every iteration is one UNet
call for up to max_batch running requests, those waiting longest first; approximated steps cost
nothing; requests join and leave at step boundaries); Poisson arrivals at the target rate are
routed like Ray Serve's router (the less loaded of two random replicas). A discrete-event
simulation gives the cloud phase's latency (arrival to handoff) percentiles; the smallest replica
count whose p95 meets the target is reported (binary search; at least enough replicas for the
peak throughput). Not modelled: the edge's steps and the transfer (EC-Diff and HybridSD finish on
the device), network and gRPC overhead, prompt encoding, failures.
"""

from __future__ import annotations

import heapq
import math
import random
import sys
from collections import deque
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

from ecdiff.conventions import DEFAULT_NUM_STEPS
from ecdiff.engine.config import EngineConfig
from ecdiff.strategies import PlanCounts
from ecdiff.strategy_config import StrategyDefaults

# Shipped cloud UNet, classifier-free-guidance call with per-sample timesteps, 2 torch threads on this
# 2-core CPU, median of 7 (issue 15): batch size -> ms per call.
MEASURED_CPU_CURVE = "1:26.4,2:30.9,4:39.5,8:57.2,16:94,32:166"
STRATEGIES = {"ecdiff": "EC-Diff", "hybrid": "HybridSD", "cloud": "cloud-only"}


@dataclass(frozen=True)
class BatchCurve:
    points: tuple[tuple[int, float], ...]  # (batch size, seconds per UNet call), increasing batch sizes
    request_overhead: float = 0.0  # seconds per request in an iteration besides the UNet call

    @classmethod
    def parse(cls, text: str, unet_ms: Optional[float] = None) -> "BatchCurve":
        try:
            points = sorted((int(b), float(ms) / 1000) for b, ms in (item.split(":") for item in text.split(",")))
        except ValueError:
            raise ValueError(f"--curve: expected B:MS,B:MS,..., got {text!r}") from None
        if not points or points[0][0] != 1 or any(b < 1 or s <= 0 for b, s in points) or \
                len({b for b, _ in points}) != len(points):
            raise ValueError("--curve: batch sizes must be distinct and start at 1, times > 0")
        if unet_ms is not None:
            if not unet_ms > 0:
                raise ValueError(f"--unet-ms must be > 0, got {unet_ms}")
            scale = unet_ms / 1000 / points[0][1]
            points = [(b, s * scale) for b, s in points]
        return cls(tuple(points))

    def seconds(self, batch: int) -> float:
        """One iteration with `batch` requests: the UNet call (linear between measured sizes,
        extrapolated from the last two beyond them) plus each request's overhead."""
        points = self.points
        if len(points) == 1:
            return (points[0][1] + self.request_overhead) * batch
        (b0, s0), (b1, s1) = next(((p, q) for p, q in zip(points, points[1:]) if batch <= q[0]), points[-2:])
        return s0 + (s1 - s0) * (batch - b0) / (b1 - b0) + self.request_overhead * batch

    def peak_rate(self, max_batch: int, calls: int) -> float:
        """Requests per second one replica completes with full batches."""
        return max(b / (self.seconds(b) * calls) for b in range(1, max_batch + 1))


@dataclass(frozen=True)
class Simulated:
    replicas: int
    p50: float
    p95: float
    mean_batch: float


def simulate(rate: float, replicas: int, calls: int, curve: BatchCurve, engine: EngineConfig,
             requests: int = 4000, seed: int = 0) -> Simulated:
    """Cloud-phase latencies of Poisson arrivals at `rate` on `replicas` engines: `requests` of them,
    at least 50 a replica (the first 10 % are warm-up and not counted)."""
    requests = max(requests, 50 * replicas)
    rng = random.Random(seed)
    queued = [deque() for _ in range(replicas)]  # waiting for a running slot: (arrival time, index)
    running: list[list[list]] = [[] for _ in range(replicas)]  # [arrival, calls left, last served, index]
    busy_until: list[Optional[float]] = [None] * replicas
    batch_of: list[list] = [[] for _ in range(replicas)]
    events: list[tuple[float, int, int]] = []  # (time, kind 0 = iteration end / 1 = arrival, replica or index)
    latencies: list[Optional[float]] = [None] * requests
    batches, served = 0, 0
    iteration = 0
    t = 0.0
    for index in range(requests):
        t += rng.expovariate(rate)
        heapq.heappush(events, (t, 1, index))

    def start(r: int, now: float) -> None:
        nonlocal batches, served, iteration
        while queued[r] and len(running[r]) < engine.max_running:
            arrival, index = queued[r].popleft()
            running[r].append([arrival, calls, -1, index])
        if not running[r]:
            busy_until[r] = None
            return
        iteration += 1
        batch = sorted(running[r], key=lambda a: (a[2], a[3]))[: engine.max_batch]
        for active in batch:
            active[2] = iteration
        batch_of[r] = batch
        batches, served = batches + 1, served + len(batch)
        busy_until[r] = now + curve.seconds(len(batch))
        heapq.heappush(events, (busy_until[r], 0, r))

    while events:
        now, kind, who = heapq.heappop(events)
        if kind == 1:
            a, b = rng.randrange(replicas), rng.randrange(replicas)
            r = a if len(queued[a]) + len(running[a]) <= len(queued[b]) + len(running[b]) else b
            queued[r].append((now, who))
            if busy_until[r] is None:
                start(r, now)
        else:
            for active in batch_of[who]:
                active[1] -= 1
                if active[1] == 0:
                    latencies[active[3]] = now - active[0]
                    running[who].remove(active)
            start(who, now)
    counted = sorted(x for x in latencies[requests // 10:] if x is not None)
    return Simulated(replicas, counted[len(counted) // 2], counted[min(len(counted) - 1, math.ceil(0.95 * len(counted)) - 1)],
                     served / batches if batches else 0.0)


def plan(rate: float, p95_s: float, calls: int, curve: BatchCurve, engine: EngineConfig, requests: int,
         max_replicas: int = 100_000) -> Optional[Simulated]:
    """The fewest replicas whose simulated p95 is at most `p95_s`; None when even one request alone
    (batch 1, no queue) takes longer, or more than `max_replicas` would be needed."""
    if calls * curve.seconds(1) > p95_s:
        return None
    results: dict[int, Simulated] = {}

    def meets(replicas: int) -> bool:
        if replicas not in results:
            results[replicas] = simulate(rate, replicas, calls, curve, engine, requests)
        return results[replicas].p95 <= p95_s

    low = max(1, math.ceil(rate / curve.peak_rate(engine.max_batch, calls)))  # fewer cannot keep up
    if meets(low):
        return results[low]
    high = low * 2
    while not meets(high):
        low, high = high, high * 2
        if high > max_replicas:
            return None
    while high - low > 1:  # low fails, high meets
        middle = (low + high) // 2
        if meets(middle):
            high = middle
        else:
            low = middle
    return results[high]


def run(args) -> int:
    try:
        curve = BatchCurve.parse(args.curve, args.unet_ms)
        engine = EngineConfig(max_batch=args.max_batch, max_running=args.max_running)
        if not (args.rate > 0 and args.p95 > 0 and args.requests >= 100 and args.step_overhead_ms >= 0):
            raise ValueError("need --rate > 0, --p95 > 0, --requests >= 100 and --step-overhead-ms >= 0")
        defaults = StrategyDefaults.load(args.strategy_config)
        counts = {name: PlanCounts.of(defaults.resolve(name, args.steps, {})[0].plan(args.steps)) for name in STRATEGIES}
        calls = {name: c.cloud for name, c in counts.items()}
    except ValueError as exc:
        print(f"ecdiff bench capacity: error: {exc}", file=sys.stderr)
        return 2
    source = "measured on the shipped cloud UNet, this 2-core CPU, 2 torch threads (issue 15)" \
        if args.curve == MEASURED_CPU_CURVE else "given with --curve"
    print("Assumptions:")
    print(f"- UNet call time per batch size ({source}"
          + (f"; rescaled so that batch 1 costs {args.unet_ms:g} ms, keeping the curve's shape" if args.unet_ms else "")
          + "): " + ", ".join(f"{b}: {s * 1000:.1f} ms" for b, s in curve.points))
    print(f"- engine per replica: max batch {engine.max_batch}, max running {engine.max_running}; "
          f"{args.step_overhead_ms:g} ms per cloud-phase step besides the UNet call (--step-overhead-ms: DDIM "
          "update, approximated steps, events); prompt encoding costs nothing; one replica = one device")
    print(f"- {args.steps} steps; cloud UNet calls / cloud-phase steps per request from "
          f"{args.strategy_config or 'configs/strategy.toml'}: "
          + ", ".join(f"{STRATEGIES[n]} {c.cloud} / {c.cloud + c.approx}" for n, c in counts.items()))
    print(f"- Poisson arrivals at {args.rate:g} req/s, routed to the less loaded of two random replicas; "
          f"{args.requests} simulated requests (first 10 % warm-up); latency = cloud phase, arrival to handoff "
          "(edge steps, transfer and network not included)")
    print()
    print(f"| strategy | UNet calls | peak req/s per replica | replicas for {args.rate:g} req/s at p95 <= {args.p95:g} s "
          "| simulated p50 (s) | simulated p95 (s) | mean batch |")
    print("|---|---|---|---|---|---|---|")
    for name, label in STRATEGIES.items():
        # Each iteration advances a request by one UNet call and the approximated steps before it.
        steps_per_call = (counts[name].cloud + counts[name].approx) / counts[name].cloud
        strategy_curve = replace(curve, request_overhead=args.step_overhead_ms / 1000 * steps_per_call)
        peak = strategy_curve.peak_rate(engine.max_batch, calls[name])
        result = plan(args.rate, args.p95, calls[name], strategy_curve, engine, args.requests)
        if result is None:
            print(f"| {label} | {calls[name]} | {peak:.2f} | not reachable (one request alone takes "
                  f"{calls[name] * strategy_curve.seconds(1):.2f} s, or over 100000 replicas) | - | - | - |")
        else:
            print(f"| {label} | {calls[name]} | {peak:.2f} | {result.replicas} | {result.p50:.2f} | {result.p95:.2f} "
                  f"| {result.mean_batch:.1f} |")
    return 0


def add_arguments(parser) -> None:
    parser.add_argument("--rate", type=float, required=True, help="target requests per second (all edges together)")
    parser.add_argument("--p95", type=float, required=True, help="target p95 of the cloud phase, seconds")
    parser.add_argument("--curve", default=MEASURED_CPU_CURVE, help="UNet call time per batch size, B:MS,... "
                        f"(default: measured on this CPU, {MEASURED_CPU_CURVE})")
    parser.add_argument("--unet-ms", type=float, help="rescale the curve so that batch 1 costs this (your device's "
                        "measured step cost) (default: the curve as given)")
    parser.add_argument("--step-overhead-ms", type=float, default=0.0, help="per cloud-phase step of a request, besides "
                        "the UNet call: DDIM update, approximated step, event (calibrate with `ecdiff bench load`) (default 0)")
    parser.add_argument("--max-batch", type=int, default=EngineConfig.max_batch,
                        help=f"engine max batch (default {EngineConfig.max_batch})")
    parser.add_argument("--max-running", type=int, default=EngineConfig.max_running,
                        help=f"engine max running (default {EngineConfig.max_running})")
    parser.add_argument("--steps", type=int, default=DEFAULT_NUM_STEPS, help=f"denoising steps (default {DEFAULT_NUM_STEPS})")
    parser.add_argument("--strategy-config", type=Path, help="strategy defaults (default: $ECDIFF_STRATEGY_CONFIG or "
                        "configs/strategy.toml)")
    parser.add_argument("--requests", type=int, default=4000, help="simulated requests per evaluation (default 4000)")
