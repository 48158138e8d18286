"""The one denoising loop: cloud calls, k-step noise approximation, edge calls.

Algorithm 1 of EC-Diff, with steps i = 0..T-1 in denoising order, p = pre_steps, s = switch step:

1. Real cloud call at step i: eps_i = cloud(x_i, t_i).
   - i == p - 1: the gradient starts, delta = eps_{p-1} - eps_{p-2}.
   - i >  p - 1: delta = alpha * (eps_i - eps_{i-1}), eps_{i-1} being the noise used at i - 1
     (real or approximated).
2. Approximated step i: eps_hat_i = eps_{i-1} + delta (no model call).
3. Edge step i >= s: eps_i = edge(x_i, t_i); same scheduler, same timesteps.
4. Every step: x_{i+1} = scheduler update with the noise used at step i.

DDIM schedulers without clipping/thresholding use the coefficient form (x' = f_i x - g_i eps,
see `ecdiff.schedules`) through the fused ops of `ecdiff.kernels`: a run of consecutive
approximated steps is one `approx_steps` call, a real step one `correct_step` call.
Every other diffusers scheduler goes through `scheduler.step` one step at a time.

The loop is resumable: `Sampler.run(state, stop)` continues from a `SamplerState` (latent, noise
used at the previous step, gradient), which is how the cloud phase and the edge phase can run in
different processes and still equal the in-process `sample` bit for bit.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Optional, Protocol

import torch

from .kernels import SUPPORTED_DTYPES as KERNEL_DTYPES
from .kernels import approx_steps, correct_step
from .schedules import DDIMCoefficients, coefficient_form_unsupported_reason, ddim_coefficients
from .strategies import ECDiff, Plan, PlanCounts, StepKind, Strategy

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


class _Updater(Protocol):
    def model_input(self, i: int, latents: torch.Tensor) -> torch.Tensor: ...

    def real_step(self, i: int, latents: torch.Tensor, model_output: torch.Tensor,
                  eps_prev: Optional[torch.Tensor], alpha: float
                  ) -> tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
        """(next latents, noise used, alpha * (noise used - eps_prev) or None without eps_prev)."""
        ...

    def approx_run(self, start: int, stop: int, latents: torch.Tensor, eps: torch.Tensor,
                   delta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...


class _CoefficientUpdater:
    """DDIM, linear form, through the fused kernels: a run of approximated steps is one
    `approx_steps` call, a real step one `correct_step` call. float64 latents (which the kernels
    do not take) use the same formulas in plain torch."""

    def __init__(self, coefficients: DDIMCoefficients) -> None:
        self.c = coefficients

    def model_input(self, i: int, latents: torch.Tensor) -> torch.Tensor:
        return latents

    def real_step(self, i, latents, model_output, eps_prev, alpha):
        eps = self.c.to_eps(i, model_output, latents)
        if latents.dtype in KERNEL_DTYPES:
            return correct_step(latents, eps, None, 1.0, eps_prev, alpha, float(self.c.f[i]), float(self.c.g[i]))
        delta = None if eps_prev is None else alpha * (eps - eps_prev)
        return self.c.step(i, latents, eps), eps, delta

    def approx_run(self, start, stop, latents, eps, delta):
        if latents.dtype in KERNEL_DTYPES:
            return approx_steps(latents, eps, delta, self.c.f[start:stop], self.c.g[start:stop])
        for i in range(start, stop):
            eps = eps + delta
            latents = self.c.step(i, latents, eps)
        return latents, eps


class _SchedulerStepUpdater:
    """Any diffusers scheduler through its own `scale_model_input` and `step`."""

    def __init__(self, scheduler) -> None:
        self.scheduler = scheduler

    def model_input(self, i: int, latents: torch.Tensor) -> torch.Tensor:
        return self.scheduler.scale_model_input(latents, self.scheduler.timesteps[i])

    def real_step(self, i, latents, model_output, eps_prev, alpha):
        delta = None if eps_prev is None else alpha * (model_output - eps_prev)
        return self.scheduler.step(model_output, self.scheduler.timesteps[i], latents).prev_sample, model_output, delta

    def approx_run(self, start, stop, latents, eps, delta):
        for i in range(start, stop):
            eps = eps + delta
            latents = self.scheduler.step(eps, self.scheduler.timesteps[i], latents).prev_sample
        return latents, eps


class Sampler:
    """One prepared run of a strategy on a scheduler: plan, timesteps and update rule fixed."""

    def __init__(
        self,
        strategy: Strategy,
        scheduler,
        cloud: Optional[Denoiser],
        edge: Optional[Denoiser],
        *,
        num_steps: int,
        device: torch.device | str | None = None,
    ) -> None:
        self.plan: Plan = strategy.plan(num_steps)
        self.counts = PlanCounts.of(self.plan)
        self.switch_step = strategy.handoff_step(num_steps)
        self.strategy = strategy
        self.cloud, self.edge = cloud, edge
        self.num_steps = num_steps
        scheduler.set_timesteps(num_steps, device=device)
        self.scheduler = scheduler
        self.timesteps = scheduler.timesteps
        if coefficient_form_unsupported_reason(scheduler) is None:
            self.updater: _Updater = _CoefficientUpdater(ddim_coefficients(scheduler))
        else:
            self.updater = _SchedulerStepUpdater(scheduler)
        if isinstance(strategy, ECDiff):
            self._pre_steps, self._alpha = strategy.pre_steps, strategy.alpha
        else:
            self._pre_steps, self._alpha = None, 1.0
        # The gradient only matters if an approximated step is still ahead.
        last_approx = max((i for i, kind in enumerate(self.plan) if kind == StepKind.APPROX), default=-1)
        self._gradient_until = last_approx

    def initial_state(self, latents: torch.Tensor) -> SamplerState:
        _check_latents(latents)
        return SamplerState(step=0, latents=latents)

    def run(self, state: SamplerState, stop: Optional[int] = None, on_step: Optional[StepCallback] = None,
            records: Optional[list[StepRecord]] = None) -> SamplerState:
        """Run steps [state.step, stop) and return the state entering `stop`."""
        stop = self.num_steps if stop is None else stop
        if not 0 <= state.step <= stop <= self.num_steps:
            raise ValueError(f"cannot run steps [{state.step}, {stop}) of a {self.num_steps}-step plan")
        _check_latents(state.latents)
        for kind, model in ((StepKind.CLOUD, self.cloud), (StepKind.EDGE, self.edge)):
            if model is None and kind in self.plan[state.step:stop]:
                raise ValueError(f"steps [{state.step}, {stop}) of {self.strategy!r} need the {kind} model, but it is None")
        x, eps_prev, delta = state.latents, state.eps_prev, state.delta
        i = state.step
        while i < stop:
            kind = self.plan[i]
            started = time.perf_counter()
            if kind == StepKind.APPROX:
                if eps_prev is None or delta is None:
                    raise ValueError(f"step {i} is approximated but the state carries no noise gradient")
                run_end = i
                while run_end < stop and self.plan[run_end] == StepKind.APPROX:
                    run_end += 1
                x, eps_prev = self.updater.approx_run(i, run_end, x, eps_prev, delta)
                share = (time.perf_counter() - started) / (run_end - i)
                for j in range(i, run_end):
                    self._emit(records, on_step, j, kind, share, x if j == run_end - 1 else None)
                i = run_end
                continue
            model = self.cloud if kind == StepKind.CLOUD else self.edge
            out = model(self.updater.model_input(i, x), self.timesteps[i])
            _check_model_output(out, x, kind, i)
            alpha = self._gradient_alpha(i, kind)
            x_next, eps, new_delta = self.updater.real_step(i, x, out, eps_prev if alpha is not None else None, alpha or 1.0)
            if new_delta is not None:
                delta = new_delta
            x, eps_prev = x_next, eps
            self._emit(records, on_step, i, kind, time.perf_counter() - started, x)
            i += 1
        return SamplerState(step=stop, latents=x, eps_prev=eps_prev, delta=delta)

    def _gradient_alpha(self, i: int, kind: StepKind) -> Optional[float]:
        """Smoothing for the gradient after the real call at step i, or None when no gradient is
        formed there (before p - 1, on the edge, or with no approximated step ahead)."""
        if kind != StepKind.CLOUD or self._pre_steps is None or i >= self._gradient_until:
            return None
        if i < self._pre_steps - 1:
            return None
        return 1.0 if i == self._pre_steps - 1 else self._alpha

    def _emit(self, records, on_step, i, kind, seconds, latents) -> None:
        record = StepRecord(index=i, timestep=int(self.timesteps[i]), kind=kind, seconds=seconds)
        if records is not None:
            records.append(record)
        if on_step is not None:
            on_step(record, latents)


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
) -> SampleResult:
    """Run `strategy` from `latents` to the end; the whole loop in this process.

    `start_step` > 0 runs only steps [start_step, num_steps) of the plan, `latents` being the
    latent entering that step (img2img: see `ecdiff.img2img`).
    """
    _check_latents(latents)
    sampler = Sampler(strategy, scheduler, cloud, edge, num_steps=num_steps, device=latents.device)
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
