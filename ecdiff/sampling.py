"""The one denoising loop: cloud calls, k-step noise approximation, edge calls.

Algorithm 1 of EC-Diff, with steps i = 0..T-1 in denoising order, p = pre_steps, s = switch step:

1. Real cloud call at step i: eps_i = cloud(x_i, t_i).
   - i == p - 1: the gradient starts, delta = eps_{p-1} - eps_{p-2}.
   - i >  p - 1: delta = alpha * (eps_i - eps_{i-1}), eps_{i-1} being the noise used at i - 1
     (real or approximated).
   (The paper's rule; the strategy's other extrapolation rules form delta, and for the quadratic
   rule a curvature, from the last real noises instead: `ecdiff.strategies.Fit`.)
2. Approximated step i: eps_hat_i = eps_{i-1} + delta (no model call); with a curvature, delta
   grows by it first.
3. Edge step i >= s: eps_i = edge(x_i, t_i); same scheduler, same timesteps.
4. Every step: x_{i+1} = scheduler update with the noise used at step i.

DDIM schedulers without clipping/thresholding use the coefficient form (x' = f_i x - g_i eps,
see `ecdiff.schedules`) through the fused ops of `ecdiff.kernels`: a run of consecutive
approximated steps is one `approx_steps` (or `approx_steps_curved`) call, a real step one
`correct_step` call (and one `fit_gradient` call when its rule reads the last real noises).
Every other diffusers scheduler goes through `scheduler.step` one step at a time.

The loop is a per-request state machine driven from outside (`SamplingRequest`: what do you need
next, a model call or a run of approximated steps? here is the model's output, advance), the
way vLLM's engine drives its requests; the strategy's `step_rules` carry each step's kind and
gradient rule, so this module knows no strategy class. `Sampler.run` and `sample` are its simplest
drivers. A request continues from a `SamplerState` (latent, noise used at the previous step,
gradient, curvature, the last real noises its rules read), which is how the cloud phase and the edge phase can run in different processes and
still equal the in-process `sample` bit for bit.

Step seconds (`StepRecord.seconds`) are host wall time. On a GPU the loop only enqueues work, so
there they are the host's share unless the sampler is asked to `synchronize`: then it waits for
the device before reading the clock at each step's start and end, a host synchronisation per step
that timing runs ask for (the search's step-cost calibration, `ecdiff.search.generate`) and the
serving loop never does (its engine times iterations with CUDA events instead: `ecdiff.engine`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Optional, Protocol

import torch

from .kernels import SUPPORTED_DTYPES as KERNEL_DTYPES
from .kernels import approx_steps, approx_steps_curved, correct_step, fit_gradient
from .schedules import DDIMCoefficients, coefficient_form_unsupported_reason, ddim_coefficients, new_scheduler
from .strategies import Fit, Plan, PlanCounts, StepKind, StepRules, Strategy

Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""eps = denoiser(latents, timestep): the (already guided) model output for a batch of latents."""


@dataclass(frozen=True)
class StepRecord:
    index: int
    timestep: int
    kind: StepKind
    seconds: float


@dataclass
class SamplerState:
    """Everything needed to continue the loop at `step`."""

    step: int
    latents: torch.Tensor
    eps_prev: Optional[torch.Tensor] = None  # noise used at step - 1
    delta: Optional[torch.Tensor] = None  # current noise gradient
    curvature: Optional[torch.Tensor] = None  # what delta grows by per approximated step (quadratic rule)
    real_noises: tuple[torch.Tensor, ...] = ()  # the last real noises, most recent first, as many as the rules read

    def map(self, f: Callable[[torch.Tensor], torch.Tensor]) -> "SamplerState":
        """The same state with every tensor passed through `f` (a copy, another device)."""
        def each(x: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
            return None if x is None else f(x)

        return SamplerState(self.step, f(self.latents), each(self.eps_prev), each(self.delta), each(self.curvature),
                            tuple(f(x) for x in self.real_noises))


@dataclass
class SampleResult:
    latents: torch.Tensor
    steps: list[StepRecord]
    cloud_calls: int
    edge_calls: int
    handoff: torch.Tensor  # latent entering the switch step (the edge's first step)
    handoff_step: int

    @property
    def approx_steps(self) -> int:
        return sum(record.kind == StepKind.APPROX for record in self.steps)


StepCallback = Callable[[StepRecord, Optional[torch.Tensor]], None]
"""Called after every step with its record and the latent after it, or None when that latent was
never materialised (inside a fused run of approximated steps)."""

StateCallback = Callable[["SamplerState"], None]
"""Called after every step whose latent was materialised, before that step's `StepCallback`, with
the loop's whole state entering the next step: what a run resumed elsewhere starts from
(`ecdiff.preparation.prepare_run(state=...)`). The tensors are the loop's own: copy what you keep."""


class _Updater(Protocol):
    def model_input(self, i: int, latents: torch.Tensor) -> torch.Tensor: ...

    def real_step(self, i: int, latents: torch.Tensor, model_output: torch.Tensor,
                  eps_prev: Optional[torch.Tensor], alpha: float
                  ) -> tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
        """(next latents, noise used, alpha * (noise used - eps_prev) or None without eps_prev)."""
        ...

    def approx_run(self, start: int, stop: int, latents: torch.Tensor, eps: torch.Tensor, delta: torch.Tensor,
                   curvature: Optional[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(latents, noise used at stop - 1, delta used at stop - 1)."""
        ...

    def fit(self, noises: tuple[torch.Tensor, ...], fit: Fit) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """(delta, curvature or None) of `fit` over the real noises, most recent first."""
        ...


def _fit_in_torch(noises, fit: Fit):
    """`Fit`'s sums in the noises' own dtype, for what the kernels do not take."""
    def combine(weights):
        return sum(weight * noise for weight, noise in zip(weights, noises))

    return combine(fit.slope), None if fit.curvature is None else combine(fit.curvature)


def _approx_in_torch(step, start, stop, latents, eps, delta, curvature):
    """Approximated steps one at a time with `step(i, latents, eps)`, for what the kernels do not take."""
    for i in range(start, stop):
        if curvature is not None:
            delta = delta + curvature
        eps = eps + delta
        latents = step(i, latents, eps)
    return latents, eps, delta


class _CoefficientUpdater:
    """DDIM, linear form, through the fused kernels: a run of approximated steps is one
    `approx_steps` call, a real step one `correct_step` call. float64 latents (which the kernels
    do not take) use the same formulas in plain torch."""

    def __init__(self, coefficients: DDIMCoefficients, device: torch.device) -> None:
        self.c = coefficients
        # The Triton op reads f and g on the GPU: copied there once, not once per approximated run
        # (a blocking host-to-device copy waits for the queued work).
        self.f_run, self.g_run = ((coefficients.f, coefficients.g) if device.type != "cuda" else
                                  (coefficients.f.to(device, torch.float32), coefficients.g.to(device, torch.float32)))

    def model_input(self, i: int, latents: torch.Tensor) -> torch.Tensor:
        return latents

    def real_step(self, i, latents, model_output, eps_prev, alpha):
        eps = self.c.to_eps(i, model_output, latents)
        if latents.dtype in KERNEL_DTYPES:
            return correct_step(latents, eps, None, 1.0, eps_prev, alpha, float(self.c.f[i]), float(self.c.g[i]))
        delta = None if eps_prev is None else alpha * (eps - eps_prev)
        return self.c.step(i, latents, eps), eps, delta

    def approx_run(self, start, stop, latents, eps, delta, curvature):
        if latents.dtype not in KERNEL_DTYPES:
            return _approx_in_torch(self.c.step, start, stop, latents, eps, delta, curvature)
        f, g = self.f_run[start:stop], self.g_run[start:stop]
        if curvature is None:
            return *approx_steps(latents, eps, delta, f, g), delta
        return approx_steps_curved(latents, eps, delta, curvature, f, g)

    def fit(self, noises, fit):
        if noises[0].dtype not in KERNEL_DTYPES:
            return _fit_in_torch(noises, fit)
        return fit_gradient(noises, fit.slope, fit.curvature)


class _SchedulerStepUpdater:
    """Any diffusers scheduler through its own `scale_model_input` and `step`."""

    def __init__(self, scheduler) -> None:
        self.scheduler = scheduler

    def model_input(self, i: int, latents: torch.Tensor) -> torch.Tensor:
        return self.scheduler.scale_model_input(latents, self.scheduler.timesteps[i])

    def real_step(self, i, latents, model_output, eps_prev, alpha):
        delta = None if eps_prev is None else alpha * (model_output - eps_prev)
        return self.scheduler.step(model_output, self.scheduler.timesteps[i], latents).prev_sample, model_output, delta

    def approx_run(self, start, stop, latents, eps, delta, curvature):
        return _approx_in_torch(self._step, start, stop, latents, eps, delta, curvature)

    def _step(self, i, latents, eps):
        return self.scheduler.step(eps, self.scheduler.timesteps[i], latents).prev_sample

    def fit(self, noises, fit):
        return _fit_in_torch(noises, fit)


@dataclass(frozen=True)
class ModelCall:
    """The request needs the `kind` model's output for `model_input` at `timestep` (step `step`)."""

    kind: StepKind
    step: int
    timestep: torch.Tensor
    model_input: torch.Tensor


@dataclass(frozen=True)
class ApproxRun:
    """The request's steps [start, stop) are approximated: no model call, only the kernels."""

    start: int
    stop: int


Need = ModelCall | ApproxRun | None
"""What a request needs next; None when it has reached its stop step."""


class SamplingRequest:
    """One request's way through steps [state.step, stop) of a prepared plan, driven from outside.

    The driver asks `next()` what the request needs: a `ModelCall` (answer with `complete(output)`),
    an `ApproxRun` (let it run with `approximate()`), or None (done; `state` is the state entering
    `stop`). Steps are emitted to `on_step` / `records` as they complete. A driver may interleave
    any number of requests, which is how a batching engine shares one model call between them.
    """

    def __init__(self, sampler: "Sampler", state: SamplerState, stop: int,
                 on_step: Optional[StepCallback] = None, records: Optional[list[StepRecord]] = None,
                 on_state: Optional[StateCallback] = None) -> None:
        if not 0 <= state.step <= stop <= sampler.num_steps:
            raise ValueError(f"cannot run steps [{state.step}, {stop}) of a {sampler.num_steps}-step plan")
        _check_latents(state.latents)
        self.sampler, self.stop = sampler, stop
        self.on_step, self.records, self.on_state = on_step, records, on_state
        self._x, self._eps_prev, self._delta, self._i = state.latents, state.eps_prev, state.delta, state.step
        self._curvature, self._real_noises = state.curvature, state.real_noises
        self._need: Need = None
        self._started = 0.0
        self._clock = sampler.clock

    @property
    def state(self) -> SamplerState:
        return SamplerState(step=self._i, latents=self._x, eps_prev=self._eps_prev, delta=self._delta,
                            curvature=self._curvature, real_noises=self._real_noises)

    def next(self) -> Need:
        if self._need is not None:
            return self._need
        i, rules = self._i, self.sampler.rules
        if i >= self.stop:
            return None
        self._started = self._clock()
        kind = rules[i].kind
        if kind == StepKind.APPROX:
            if self._eps_prev is None or self._delta is None:
                raise ValueError(f"step {i} is approximated but the state carries no noise gradient")
            run_end = i
            while run_end < self.stop and rules[run_end].kind == StepKind.APPROX:
                run_end += 1
            self._need = ApproxRun(i, run_end)
        else:
            sampler = self.sampler
            self._need = ModelCall(kind, i, sampler.timesteps[i], sampler.updater.model_input(i, self._x))
        return self._need

    def complete(self, model_output: torch.Tensor) -> None:
        """Advance past the pending model call with the model's output for it."""
        call = self._need
        if not isinstance(call, ModelCall):
            raise RuntimeError(f"step {self._i} of this request is not waiting for a model call")
        i, x = call.step, self._x
        _check_model_output(model_output, x, call.kind, i)
        gradient, updater = self.sampler.rules[i].gradient, self.sampler.updater
        if isinstance(gradient, Fit):
            x_next, eps, _ = updater.real_step(i, x, model_output, None, 1.0)
            older = gradient.depth - 1
            if len(self._real_noises) < older:
                raise ValueError(f"step {i}'s extrapolation reads {gradient.depth} real noises but the state carries "
                                 f"{len(self._real_noises)} earlier ones")
            self._delta, self._curvature = updater.fit((eps,) + self._real_noises[:older], gradient)
        else:
            x_next, eps, delta = updater.real_step(
                i, x, model_output, None if gradient is None else self._eps_prev, 1.0 if gradient is None else gradient)
            if delta is not None:
                self._delta, self._curvature = delta, None
        if self.sampler.real_noises_kept:
            self._real_noises = ((eps,) + self._real_noises)[:self.sampler.real_noises_kept]
        self._x, self._eps_prev, self._i, self._need = x_next, eps, i + 1, None
        self._emit(i, call.kind, self._clock() - self._started, x_next)

    def approximate(self) -> None:
        """Run the pending approximated steps (one fused kernel call on the DDIM path)."""
        run = self._need
        if not isinstance(run, ApproxRun):
            raise RuntimeError(f"step {self._i} of this request is not an approximated run")
        self._x, self._eps_prev, self._delta = self.sampler.updater.approx_run(
            run.start, run.stop, self._x, self._eps_prev, self._delta, self._curvature)
        self._i, self._need = run.stop, None
        share = (self._clock() - self._started) / (run.stop - run.start)
        for j in range(run.start, run.stop):
            self._emit(j, StepKind.APPROX, share, self._x if j == run.stop - 1 else None)

    def _emit(self, i: int, kind: StepKind, seconds: float, latents: Optional[torch.Tensor]) -> None:
        record = StepRecord(index=i, timestep=self.sampler.timestep_values[i], kind=kind, seconds=seconds)
        if self.records is not None:
            self.records.append(record)
        if latents is not None and self.on_state is not None:
            self.on_state(self.state)
        if self.on_step is not None:
            self.on_step(record, latents)


class Sampler:
    """One prepared run of a strategy: step rules, timesteps and update rule fixed.

    The sampler works on its own copy of `scheduler` (`set_timesteps` mutates a scheduler, and
    stateful ones such as DPM-Solver++ must not be shared); the caller's is left as it was.
    `request(state, stop)` gives the per-request state machine; `run` is its simplest driver.
    """

    def __init__(
        self,
        strategy: Strategy,
        scheduler,
        cloud: Optional[Denoiser],
        edge: Optional[Denoiser],
        *,
        num_steps: int,
        device: torch.device | str | None = None,
        synchronize: bool = False,
    ) -> None:
        self.clock = step_clock(device, synchronize)
        self.rules: StepRules = strategy.step_rules(num_steps)
        self.plan: Plan = tuple(rule.kind for rule in self.rules)
        # the earlier real noises a later `Fit` reads (0 under the paper's rule: none are kept)
        self.real_noises_kept = max((rule.gradient.depth - 1 for rule in self.rules if isinstance(rule.gradient, Fit)),
                                    default=0)
        self.counts = PlanCounts.of(self.plan)
        self.switch_step = strategy.handoff_step(num_steps)
        self.strategy = strategy
        self.cloud, self.edge = cloud, edge
        self.num_steps = num_steps
        self.scheduler = new_scheduler(type(scheduler), scheduler.config)
        # Timesteps and DDIM tables are read on the host once, here: the loop itself never reads a
        # device tensor back (no per-step synchronisation on a GPU).
        self.scheduler.set_timesteps(num_steps)
        self.timestep_values: tuple[int, ...] = tuple(int(t) for t in self.scheduler.timesteps.tolist())
        coefficients = (ddim_coefficients(self.scheduler)
                        if coefficient_form_unsupported_reason(self.scheduler) is None else None)
        if device is not None and torch.device(device).type != "cpu":
            self.scheduler.set_timesteps(num_steps, device=device)
        self.timesteps = self.scheduler.timesteps
        if coefficients is not None:
            self.updater: _Updater = _CoefficientUpdater(coefficients, self.timesteps.device)
        else:
            self.updater = _SchedulerStepUpdater(self.scheduler)

    def initial_state(self, latents: torch.Tensor) -> SamplerState:
        _check_latents(latents)
        return SamplerState(step=0, latents=latents)

    def request(self, state: SamplerState, stop: Optional[int] = None, on_step: Optional[StepCallback] = None,
                records: Optional[list[StepRecord]] = None, on_state: Optional[StateCallback] = None) -> SamplingRequest:
        return SamplingRequest(self, state, self.num_steps if stop is None else stop, on_step, records, on_state)

    def run(self, state: SamplerState, stop: Optional[int] = None, on_step: Optional[StepCallback] = None,
            records: Optional[list[StepRecord]] = None, on_state: Optional[StateCallback] = None) -> SamplerState:
        """Run steps [state.step, stop) and return the state entering `stop`."""
        request = self.request(state, stop, on_step, records, on_state)
        for kind, model in ((StepKind.CLOUD, self.cloud), (StepKind.EDGE, self.edge)):
            if model is None and kind in self.plan[state.step:request.stop]:
                raise ValueError(f"steps [{state.step}, {request.stop}) of {self.strategy!r} need the {kind} model, "
                                 "but it is None")
        while (need := request.next()) is not None:
            if isinstance(need, ApproxRun):
                request.approximate()
            else:
                model = self.cloud if need.kind == StepKind.CLOUD else self.edge
                request.complete(model(need.model_input, need.timestep))
        return request.state


def sample(
    strategy: Strategy,
    scheduler,
    cloud: Optional[Denoiser],
    edge: Optional[Denoiser],
    latents: torch.Tensor,
    *,
    num_steps: int,
    on_step: Optional[StepCallback] = None,
    start_step: int = 0,
    synchronize: bool = False,
) -> SampleResult:
    """Run `strategy` from `latents` to the end; the whole loop in this process.

    `start_step` > 0 runs only steps [start_step, num_steps) of the plan, `latents` being the
    latent entering that step (img2img: see `ecdiff.img2img`). `synchronize`: time each step to the
    device's completion (see the module's note on step seconds).
    """
    _check_latents(latents)
    sampler = Sampler(strategy, scheduler, cloud, edge, num_steps=num_steps, device=latents.device,
                      synchronize=synchronize)
    if isinstance(start_step, bool) or not isinstance(start_step, int) or not 0 <= start_step < num_steps:
        raise ValueError(f"start_step must be an integer in [0, num_steps={num_steps}), got {start_step!r}")
    records: list[StepRecord] = []
    switch = max(sampler.switch_step, start_step)
    state = sampler.run(SamplerState(step=start_step, latents=latents), switch, on_step, records)
    handoff = state.latents.clone()
    state = sampler.run(state, num_steps, on_step, records)
    return SampleResult(
        latents=state.latents,
        steps=records,
        cloud_calls=sum(r.kind == StepKind.CLOUD for r in records),
        edge_calls=sum(r.kind == StepKind.EDGE for r in records),
        handoff=handoff,
        handoff_step=switch,
    )


def step_clock(device: torch.device | str | None, synchronize: bool) -> Callable[[], float]:
    """The loop's step clock: wall time, read after the device finished its queued work when asked to."""
    if not synchronize or device is None or torch.device(device).type != "cuda":
        return time.perf_counter  # the CPU runs each step before the clock is read

    def synchronized() -> float:
        torch.cuda.synchronize(device)
        return time.perf_counter()

    return synchronized


def _check_latents(latents: object) -> None:
    if not isinstance(latents, torch.Tensor):
        raise ValueError(f"latents must be a torch.Tensor, got {type(latents).__name__}")
    if not latents.is_floating_point():
        raise ValueError(f"latents must be a floating-point tensor, got dtype {latents.dtype}")
    if latents.dim() < 2:
        raise ValueError(f"latents must be batched ([batch, channels, ...]), got shape {tuple(latents.shape)}")


def _check_model_output(out: object, latents: torch.Tensor, kind: StepKind, i: int) -> None:
    if not isinstance(out, torch.Tensor):
        raise ValueError(f"the {kind} model returned {type(out).__name__} at step {i}, expected a tensor")
    if out.shape != latents.shape or out.dtype != latents.dtype:
        raise ValueError(
            f"the {kind} model returned {tuple(out.shape)} {out.dtype} at step {i} "
            f"for latents {tuple(latents.shape)} {latents.dtype}"
        )
