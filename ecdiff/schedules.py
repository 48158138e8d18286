"""DDIM in coefficient form: x_{t_prev} = f_i * x_t - g_i * eps (eta = 0).

diffusers' `DDIMScheduler.step` computes, with a_t = alphas_cumprod[t] and
a_prev = alphas_cumprod[t - T_train // n] (or `final_alpha_cumprod` when that is negative):

    x0_hat  = (x_t - sqrt(1 - a_t) * eps) / sqrt(a_t)
    x_prev  = sqrt(a_prev) * x0_hat + sqrt(1 - a_prev) * eps

which is linear in (x_t, eps):

    f_i = sqrt(a_prev / a_t)
    g_i = sqrt(a_prev) * sqrt(1 - a_t) / sqrt(a_t) - sqrt(1 - a_prev)

The previous timestep is diffusers' own choice (`t - num_train_timesteps // num_inference_steps`),
for every `timestep_spacing`, so the edge reproduces the cloud's schedule exactly. A v-prediction
output is converted to eps first (eps = sqrt(a_t) * v + sqrt(1 - a_t) * x_t). The linear form does
not hold with `clip_sample` or `thresholding`: such schedulers, and every non-DDIM scheduler, go
through `scheduler.step`.

CogVideoX's `CogVideoXDDIMScheduler.step` writes the same update differently,
x_prev = a * x_t + b * x0_hat with a = sqrt((1 - a_prev) / (1 - a_t)), b = sqrt(a_prev) - sqrt(a_t) * a,
which expands to the same f_i and g_i; its alphas_cumprod carry the SNR shift
(a / (s + (1 - s) * a)) and, with `rescale_betas_zero_snr`, a zero terminal SNR. Its step never
clips or thresholds (whatever its config says), so it takes the coefficient form too, except on a
schedule that visits a timestep where a_t = 0 (zero terminal SNR with "trailing" spacing, as the
CogVideoX folders ship): f_i = sqrt(a_prev / a_t) is infinite there, so such runs (on either DDIM
class) go through `scheduler.step`.
"""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from dataclasses import dataclass

import torch
from diffusers import CogVideoXDDIMScheduler, DDIMScheduler, DPMSolverMultistepScheduler, EulerDiscreteScheduler


@dataclass(frozen=True)
class DDIMCoefficients:
    """Per-step coefficients, float64, indexed by the step i (position in `timesteps`)."""

    timesteps: torch.Tensor  # int64 [T], denoising order
    prev_timesteps: torch.Tensor  # int64 [T]; negative means `final_alpha_cumprod`
    f: torch.Tensor  # float64 [T]
    g: torch.Tensor  # float64 [T]
    alpha_prod: torch.Tensor  # float64 [T], a_t of each step (for v -> eps)
    prediction_type: str

    def __len__(self) -> int:
        return int(self.timesteps.numel())

    def to_eps(self, i: int, model_output: torch.Tensor, sample: torch.Tensor) -> torch.Tensor:
        """The model's output at step i as predicted noise."""
        if self.prediction_type == "epsilon":
            return model_output
        a_t = float(self.alpha_prod[i])
        return (a_t**0.5) * model_output + ((1.0 - a_t) ** 0.5) * sample

    def step(self, i: int, sample: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """One DDIM step in the sample's dtype: f_i * x - g_i * eps."""
        return float(self.f[i]) * sample - float(self.g[i]) * eps


def coefficient_form_unsupported_reason(scheduler: object) -> str | None:
    """Why `scheduler` cannot use the linear form, or None when it can. With timesteps set, the
    schedule itself is checked too (a timestep of zero SNR)."""
    if not isinstance(scheduler, (DDIMScheduler, CogVideoXDDIMScheduler)):
        return f"{type(scheduler).__name__} is not a DDIMScheduler"
    config = scheduler.config
    if isinstance(scheduler, DDIMScheduler):  # CogVideoXDDIMScheduler.step has neither
        if config.clip_sample:
            return "clip_sample=True makes the DDIM update non-linear"
        if config.thresholding:
            return "thresholding=True makes the DDIM update non-linear"
    if config.prediction_type not in ("epsilon", "v_prediction"):
        return f"prediction_type={config.prediction_type!r} is not supported by the coefficient form"
    if scheduler.num_inference_steps is not None:
        zero = [int(t) for t in scheduler.timesteps if float(scheduler.alphas_cumprod[int(t)]) == 0.0]
        if zero:
            return (f"alphas_cumprod is 0 at timestep {zero[0]} (zero terminal SNR): the noise form "
                    "x' = f x - g eps is singular there")
    return None


def ddim_coefficients(scheduler: DDIMScheduler | CogVideoXDDIMScheduler) -> DDIMCoefficients:
    """Coefficients of a DDIM scheduler on which `set_timesteps` has been called."""
    if scheduler.num_inference_steps is None:
        raise ValueError("call scheduler.set_timesteps(num_steps) before computing DDIM coefficients")
    reason = coefficient_form_unsupported_reason(scheduler)
    if reason is not None:
        raise ValueError(f"DDIM coefficient form unavailable: {reason}; use scheduler.step instead")

    timesteps = scheduler.timesteps.detach().to("cpu", torch.int64)
    stride = scheduler.config.num_train_timesteps // scheduler.num_inference_steps
    prev_timesteps = timesteps - stride
    alphas_cumprod = scheduler.alphas_cumprod.detach().to("cpu", torch.float64)
    final = float(scheduler.final_alpha_cumprod)

    a_t = alphas_cumprod[timesteps]
    a_prev = torch.where(
        prev_timesteps >= 0,
        alphas_cumprod[prev_timesteps.clamp(min=0)],
        torch.full_like(a_t, final),
    )
    f = torch.sqrt(a_prev / a_t)
    g = torch.sqrt(a_prev) * torch.sqrt(1.0 - a_t) / torch.sqrt(a_t) - torch.sqrt(1.0 - a_prev)
    return DDIMCoefficients(
        timesteps=timesteps,
        prev_timesteps=prev_timesteps,
        f=f,
        g=g,
        alpha_prod=a_t,
        prediction_type=scheduler.config.prediction_type,
    )


# Stable Diffusion 1.x's DDIM configuration: the embedded pair and the tiny test models use it.
SD_DDIM_CONFIG = dict(
    num_train_timesteps=1000,
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    clip_sample=False,
    set_alpha_to_one=False,
    steps_offset=1,
    prediction_type="epsilon",
)


def sd_ddim_scheduler(**overrides) -> DDIMScheduler:
    return DDIMScheduler(**{**SD_DDIM_CONFIG, **overrides})


# Schedulers whose update at step i depends only on i, the latent and the model output at step i, so
# a fresh copy continues a run handed over between processes exactly. Multistep solvers (DPM-Solver++,
# UniPC, PNDM, ...) also use earlier steps' model outputs, which a handoff does not carry.
HANDOFF_SCHEDULERS = ("DDIMScheduler", "EulerDiscreteScheduler", "CogVideoXDDIMScheduler")


def handoff_unsupported_reason(scheduler) -> str | None:
    """Why a run on `scheduler` cannot be handed over mid-schedule to another process, or None."""
    name = type(scheduler).__name__
    if name in HANDOFF_SCHEDULERS:
        return None
    return (f"{name} is not one of the schedulers a handoff continues exactly ({', '.join(HANDOFF_SCHEDULERS)}): "
            "a multistep solver keeps earlier steps' model outputs, which the handoff does not carry")


SCHEDULER_KINDS = ("ddim", "euler", "dpm++")


def fresh_scheduler(pipe, kind: str | None = None):
    """A new scheduler on `pipe`'s noise schedule: its own class, or `kind` (one of SCHEDULER_KINDS).
    Every run gets its own: `set_timesteps` mutates a scheduler, and stateful ones (DPM-Solver++)
    carry history from step to step."""
    config = pipe.scheduler.config
    if kind is None:
        return new_scheduler(type(pipe.scheduler), config)
    if kind == "ddim":
        return new_scheduler(DDIMScheduler, config)
    if kind == "euler":
        return new_scheduler(EulerDiscreteScheduler, config)
    if kind == "dpm++":
        return new_scheduler(DPMSolverMultistepScheduler, config, algorithm_type="dpmsolver++")
    raise ValueError(f"unknown scheduler {kind!r}; expected one of {', '.join(SCHEDULER_KINDS)}")


_PRISTINE_KEPT = 32  # (class, config) pairs: a process meets a handful
_pristine: OrderedDict = OrderedDict()  # (class, config, overrides) -> a scheduler never stepped, least recent first
_pristine_lock = threading.Lock()


def new_scheduler(cls, config, **overrides):
    """`cls.from_config(config, **overrides)`, as a deep copy of one made once and never stepped:
    diffusers' `from_config` inspects call signatures (about 0.9 ms with the GIL held, twice per served
    request, on threads beside the engine's), a copy about a seventh of that, equal to a new one."""
    key = (cls, repr(dict(config)), repr(sorted(overrides.items())))
    with _pristine_lock:
        pristine = _pristine.get(key)
        if pristine is None:
            pristine = _pristine[key] = cls.from_config(config, **overrides)
            if len(_pristine) > _PRISTINE_KEPT:
                _pristine.popitem(last=False)
        else:
            _pristine.move_to_end(key)
    return copy.deepcopy(pristine)  # only read, so copies may run concurrently
