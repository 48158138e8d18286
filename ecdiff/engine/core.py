"""The cloud's denoising engine: it owns the model and drives every admitted request.

vLLM's EngineCore is the model: callers submit typed work (`EngineWork`: a prepared run and the
steps to run) and get events back; the engine alone calls the UNet. One engine thread loops:

1. admit queued work up to `max_running` (continuous batching: requests join and leave at step
   boundaries) and retire the cancelled and the late;
2. ask each running request what it needs next (`SamplingRequest.next`); approximated runs are
   done at once through the kernels, so an approximated step never waits behind a UNet call;
3. gather the pending model calls of one latent shape, those that have waited longest first, up to
   `max_batch`, into ONE UNet call: per-sample timesteps, per-request conditioning and guidance
   (`UNetDenoiser`, or `TransformerDenoiser` for a video model, with `Conditioning.concat`), both
   halves of classifier-free guidance in the batch;
4. hand each request its slice of the output (`complete`), which runs its DDIM update and emits
   its step event.

Because approximated steps are free, an EC-Diff request asks for the UNet about once per
iteration like every other running request, so requests at different steps and with different
strategies share calls without being phased by hand. A batch of one is exactly `sample()`'s call;
larger batches differ only by the rounding of batched arithmetic (tests state the tolerance).

Admission: a full queue refuses (`QueueFull`); a request whose estimated end (its model calls plus
the queue's ahead, at the measured iteration time) passes its deadline is refused
(`DeadlineUnmeetable`), unless load-adaptive quality is on (`EngineConfig.adaptive_quality`) and it
offers cheaper plans (`EngineWork.cheaper`): then the most accurate one whose estimated end meets
the deadline is served instead, as it is when `adaptive_queue` or more requests wait. The choice
is made once, at submission, and reported (`EngineResult.downgrade`, `EngineStats.downgraded`).
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Optional

import torch

from ..conditioning import Conditioning
from ..denoiser import denoiser_for
from ..preparation import PreparedRun
from ..sampling import ApproxRun, ModelCall, SamplingRequest, StepRecord
from ..strategies import StepKind
from .config import EngineConfig
from .timing import IterationTimer
from .work import (Cancelled, DeadlineExceeded, DeadlineUnmeetable, Downgrade, EngineResult, EngineTicket, EngineWork,
                   QueueFull)

log = logging.getLogger(__name__)


@dataclass
class EngineStats:
    """Counters since start, read by the metrics exporter and the load benchmark."""

    unet_calls: int = 0
    batched_samples: int = 0  # sum of batch sizes over UNet calls
    batch_sizes: Counter = field(default_factory=Counter)
    approximated_steps: int = 0
    finished: Counter = field(default_factory=Counter)  # "ok" | "cancelled" | "deadline" | "error"
    refused: Counter = field(default_factory=Counter)  # "queue_full" | "deadline"
    downgraded: Counter = field(default_factory=Counter)  # served a cheaper plan, by Downgrade.cause
    # Seconds of iterations with a UNet call (on the model's device: engine/timing.py), and of whole requests
    # (submission to end, wall time).
    iteration_seconds: "Histogram" = field(default_factory=lambda: Histogram(ITERATION_BUCKETS))
    request_seconds: "Histogram" = field(default_factory=lambda: Histogram(REQUEST_BUCKETS))


@dataclass(frozen=True)
class EngineSnapshot:
    """The engine's gauges and counters at one moment: what the metrics exporter reads."""

    queued: int
    running: int
    stats: EngineStats


ITERATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
REQUEST_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 60.0, 120.0)


@dataclass
class Histogram:
    """Cumulative-bucket counts, as Prometheus histograms keep them (the exporter reads them as is)."""

    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        self.counts = [0] * len(self.bounds)

    def observe(self, value: float) -> None:
        self.total += value
        self.count += 1
        for i, bound in enumerate(self.bounds):
            if value <= bound:
                self.counts[i] += 1


@dataclass
class _Active:
    ticket: EngineTicket
    run: PreparedRun  # the served one: the work's own, or the cheaper plan chosen at submission
    request: SamplingRequest
    model_calls_left: int
    records: list[StepRecord] = field(default_factory=list)
    started: Optional[float] = None
    last_served: int = -1  # iteration of its last model call: who waited longest goes first

    @property
    def work(self) -> EngineWork:
        return self.ticket.work


class DenoisingEngine:
    def __init__(self, unet, config: EngineConfig = EngineConfig(), *, name: str = "cloud") -> None:
        self.denoiser = denoiser_for(unet)  # a UNet, or a CogVideoX transformer
        self.config, self.name = config, name
        self.stats = EngineStats()
        self._cv = threading.Condition()
        self._queue: deque[_Active] = deque()
        self._running: list[_Active] = []
        self._closed = False
        self._iteration = 0
        self._iteration_seconds: Optional[float] = None  # moving average over all batch sizes
        # Moving average per batch size: a batch of 16 costs several times a batch of 1, so an
        # estimate made while batches fill must not use the small batches' time.
        self._seconds_by_batch: dict[int, float] = {}
        self._timer = IterationTimer(getattr(unet, "device", None))  # None: a stand-in model, timed on the host
        self._thread = threading.Thread(target=self._loop, name=f"ecdiff-engine-{name}", daemon=True)
        self._thread.start()

    # --- callers' side (any thread) ---------------------------------------------------------

    def submit(self, work: EngineWork) -> EngineTicket:
        """Queue `work` (or the cheaper plan it is to be served with: `work.downgrade` says which);
        raises QueueFull or DeadlineUnmeetable (nothing queued), ValueError on bad work."""
        self._check(work)
        calls = [_model_calls(work.run, work.stop), *(_model_calls(plan.run, plan.stop) for plan in work.cheaper)]
        records: list[StepRecord] = []
        request = work.run.sampler().request(work.run.initial_state(), work.stop, work.on_step, records, work.on_state)
        with self._cv:
            if self._closed:
                raise RuntimeError(f"the {self.name} engine is stopped")
            if len(self._queue) >= self.config.max_queue:
                self.stats.refused["queue_full"] += 1
                raise QueueFull(f"{self.name} engine queue full: {len(self._queue)} requests waiting and "
                                f"{len(self._running)} running; retry later")
            work.downgrade = self._plan_to_serve(work, calls)
            run, stop = work.served
            served_calls = calls[0]
            if work.downgrade is not None:
                self.stats.downgraded[work.downgrade.cause] += 1
                request = run.sampler().request(run.initial_state(), stop, work.on_step, records, work.on_state)
                served_calls = calls[1 + work.downgrade.index]
            active = _Active(EngineTicket(work), run, request, served_calls, records)
            self._queue.append(active)
            self._cv.notify()
        return active.ticket

    @property
    def queued(self) -> int:
        return len(self._queue)

    @property
    def running(self) -> int:
        return len(self._running)

    @property
    def iteration_seconds(self) -> Optional[float]:
        """The moving average of a UNet iteration's wall time that deadline estimates use; None
        before the first one was timed."""
        return self._iteration_seconds

    @property
    def alive(self) -> bool:
        """The engine thread runs (health checks: a dead engine serves nothing)."""
        return self._thread.is_alive()

    def snapshot(self) -> EngineSnapshot:
        """A private copy of the stats (to send to another process: a Ray replica's metrics)."""
        attempts = 3
        while True:
            attempts -= 1
            try:
                with self._cv:
                    return EngineSnapshot(len(self._queue), len(self._running), copy.deepcopy(self.stats))
            except RuntimeError:  # a Counter got a new key on the engine thread mid-copy: copy again
                if not attempts:
                    raise

    def close(self) -> None:
        """Stop: every queued and running request ends with Cancelled; the engine thread is joined."""
        with self._cv:
            self._closed = True
            self._cv.notify()
        self._thread.join()

    # --- the engine thread ------------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            with self._cv:
                while not (self._queue or self._running or self._closed):
                    self._cv.wait()
                if self._closed:
                    for active in [*self._running, *self._queue]:
                        self._end(active, Cancelled(f"the {self.name} engine stopped"))
                    self._running.clear()
                    self._queue.clear()
                    return
                while self._queue and len(self._running) < self.config.max_running:
                    self._running.append(self._queue.popleft())
            started = self._timer.start()
            batch = self._iterate()
            if batch:
                self._timer.stop(started, batch)
            # Timed on the model's device (`IterationTimer`): on CUDA read back an iteration or more later,
            # without waiting, except once nothing runs any more.
            for size, took in self._timer.finished() if self._running else self._timer.drain():
                self.stats.iteration_seconds.observe(took)
                self._iteration_seconds = _moving_average(self._iteration_seconds, took)
                self._seconds_by_batch[size] = _moving_average(self._seconds_by_batch.get(size), took)

    def _iterate(self) -> int:
        """One iteration; the size of its UNet call's batch, 0 when it made none."""
        self._iteration += 1
        now = time.monotonic()
        calls: list[tuple[_Active, ModelCall]] = []
        for active in list(self._running):
            if active.ticket.cancelled:
                self._retire(active, Cancelled("cancelled"))
                continue
            if active.work.deadline is not None and now > active.work.deadline:
                self._retire(active, DeadlineExceeded(f"deadline passed at step {active.request.state.step}"))
                continue
            try:
                if active.started is None:
                    active.started = time.monotonic()
                need = active.request.next()
                while isinstance(need, ApproxRun):
                    active.request.approximate()
                    self.stats.approximated_steps += need.stop - need.start
                    need = active.request.next()
            except BaseException as exc:  # noqa: BLE001 - a request's failure (its callback included) is its own
                self._retire(active, exc)
                continue
            if need is None:
                self._retire(active, None)
            else:
                calls.append((active, need))
        if not calls:
            return 0
        calls.sort(key=lambda c: (c[0].last_served, c[0].work.id))
        first = calls[0][1].model_input
        batch = [(a, n) for a, n in calls
                 if n.model_input.shape[1:] == first.shape[1:] and n.model_input.dtype == first.dtype]
        batch = batch[: self.config.max_batch]
        self._call(batch)
        return len(batch)

    def _call(self, batch: list[tuple[_Active, ModelCall]]) -> None:
        actives = [a for a, _ in batch]
        try:
            out = self.denoiser(torch.cat([n.model_input for _, n in batch]),
                                torch.stack([n.timestep.reshape(()) for _, n in batch]),
                                Conditioning.concat([a.run.cloud.conditioning for a in actives]))
        except BaseException as exc:  # noqa: BLE001 - a failed model call fails its batch, not the engine
            log.exception("%s engine: UNet call failed for %d requests", self.name, len(actives))
            for active in actives:
                self._retire(active, exc)
            return
        self.stats.unet_calls += 1
        self.stats.batched_samples += len(batch)
        self.stats.batch_sizes[len(batch)] += 1
        offset = 0
        for active, need in batch:
            rows = need.model_input.shape[0]
            active.last_served = self._iteration
            active.model_calls_left -= 1
            try:
                active.request.complete(out[offset:offset + rows])
            except BaseException as exc:  # noqa: BLE001
                self._retire(active, exc)
            offset += rows

    def _retire(self, active: _Active, error: Optional[BaseException]) -> None:
        self._running.remove(active)
        if error is None:
            started = active.started if active.started is not None else time.monotonic()
            outcome: EngineResult | BaseException = EngineResult(
                active.request.state, tuple(active.records), started - active.work.submitted,
                time.monotonic() - started, active.work.downgrade)
        else:
            outcome = error
        self._end(active, outcome)

    def _end(self, active: _Active, outcome) -> None:
        kind = ("ok" if isinstance(outcome, EngineResult) else "cancelled" if isinstance(outcome, Cancelled)
                else "deadline" if isinstance(outcome, DeadlineExceeded) else "error")
        self.stats.finished[kind] += 1
        self.stats.request_seconds.observe(time.monotonic() - active.work.submitted)
        try:
            active.work.on_end(outcome)
        except Exception:  # noqa: BLE001 - a caller's broken callback must not stop the engine
            log.exception("%s engine: on_end of request %s failed", self.name, active.work.request_id)

    # --- helpers ----------------------------------------------------------------------------

    def _check(self, work: EngineWork) -> None:
        for run, stop in ((work.run, work.stop), *((plan.run, plan.stop) for plan in work.cheaper)):
            plan = run.strategy.plan(run.num_steps)
            if StepKind.EDGE in plan[run.start_step:stop]:
                raise ValueError(f"steps [{run.start_step}, {stop}) include edge steps; the {self.name} engine "
                                 "runs only its own model's steps")
            if StepKind.CLOUD in plan[run.start_step:stop]:
                if run.cloud is None or run.cloud.denoiser.unet is not self.denoiser.unet:
                    raise ValueError(f"the run was not prepared for this engine's model ({self.name})")

    def _plan_to_serve(self, work: EngineWork, calls: list[int]) -> Optional[Downgrade]:
        """Under the lock: None to serve the work's own plan, else which cheaper plan and why; raises
        DeadlineUnmeetable when no plan it may be served with meets its deadline. `calls`: the model
        calls of its own plan, then of each cheaper one."""
        now = time.monotonic()
        estimates = [self._estimate_seconds(n) for n in calls]
        meets = [work.deadline is None or e is None or now + e <= work.deadline for e in estimates]
        waiting, running = len(self._queue), len(self._running)
        crowded = 0 < self.config.adaptive_queue <= waiting
        adaptive = self.config.adaptive_quality and work.cheaper
        if adaptive and (crowded or not meets[0]):
            index = next((i for i, ok in enumerate(meets[1:]) if ok), None)
            if index is not None:
                cause = "deadline" if not meets[0] else "queue"
                seen = (f"its own plan needs about {estimates[0]:.2f} s with {waiting} requests queued and "
                        f"{running} running, {work.deadline - now:.2f} s left" if cause == "deadline"
                        else f"{waiting} requests queued (adaptive_queue {self.config.adaptive_queue})")
                return Downgrade(index, cause, f"{self.name} engine under load: {seen}")
        if meets[0]:
            return None
        self.stats.refused["deadline"] += 1
        tried = f"; nor can its cheapest of {len(work.cheaper)} cheaper plans" if adaptive else ""
        raise DeadlineUnmeetable(
            f"deadline cannot be met: about {estimates[0]:.2f} s needed with {waiting} requests queued "
            f"and {running} running, {max(0.0, work.deadline - now):.2f} s left{tried}")

    def _estimate_seconds(self, model_calls: int) -> Optional[float]:
        """Time until a request of `model_calls` calls submitted now would end; None before the first
        iteration was timed. Batches are shared like a processor: every running or queued request
        takes batch rows beside it until the shorter of the two is done, at `max_batch` rows per
        iteration (counting only the queue ignored the running requests: a full engine admitted
        requests that then missed their deadlines), and each iteration costs what a batch of that
        many requests measured (the overall average is a small batch's time while batches fill)."""
        if self._iteration_seconds is None:
            return None
        sharing = [a for a in (*self._running, *self._queue) if a.model_calls_left]
        shared = sum(min(a.model_calls_left, model_calls) for a in sharing)
        iterations = max(model_calls, (model_calls + shared) / self.config.max_batch)
        return iterations * self._batch_seconds(min(self.config.max_batch, 1 + len(sharing)))

    def _batch_seconds(self, size: int) -> float:
        """An iteration's time at batch `size`: measured, else interpolated (or extrapolated) linearly
        between the nearest measured sizes; with one size measured, that size's time (as before)."""
        known = self._seconds_by_batch
        if size in known or len(known) < 2:
            return known.get(size, self._iteration_seconds)
        sizes = sorted(known)
        below = [b for b in sizes if b < size]
        above = [b for b in sizes if b > size]
        low, high = ((below[-1], above[0]) if below and above else (sizes[0], sizes[1]) if above
                     else (sizes[-2], sizes[-1]))
        slope = (known[high] - known[low]) / (high - low)
        return max(known[low] + slope * (size - low), min(known.values()))


def _moving_average(average: Optional[float], value: float) -> float:
    return value if average is None else 0.8 * average + 0.2 * value


def _model_calls(run: PreparedRun, stop: int) -> int:
    return sum(kind == StepKind.CLOUD for kind in run.strategy.plan(run.num_steps)[run.start_step:stop])
