"""The cloud's side of a DiffusionX session, transport-free: refine the edge's last preview.

img2img on the cloud model from the preview latent at a strength given by the caller, else the
cloud predictor's (text + image embedding of the preview), else `default_strength`; the round's
noise is `round_noise(seed, round_index)`, so the refinement is reproducible anywhere.
`approximate=True` runs the refinement with EC-Diff's k-step noise approximation: the first
`pre_steps` refinement steps are real cloud calls, then k approximated steps per real call, so a
refinement of n steps makes about p + (n - p) / (k + 1) cloud calls instead of n.

A refinement resumes from a `RefineCheckpoint` (the loop's whole state after some step, and the
strength chosen at the start) exactly as it would have gone on, in another process if need be:
`prepare(..., resume=plan.checkpoint(state))`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Optional

import torch

from ecdiff.conditioning import pipeline_device
from ecdiff.conventions import DEFAULT_NUM_STEPS, MAX_PROMPT_CHARS, check_prompt
from ecdiff.img2img import img2img_start_step
from ecdiff.preparation import PreparedRun, prepare_run
from ecdiff.sampling import SamplerState, StepCallback
from ecdiff.strategies import CloudOnly, ECDiff, StepKind

from .choosers import CloudStrengthFn
from .embeddings import preview_images
from .engine import check_strength
from .rounds import RoundSpec, prepare_rounds

DEFAULT_REFINE_STRENGTH = 0.5


@dataclass(frozen=True)
class RefineConfig:
    num_steps: int = DEFAULT_NUM_STEPS
    default_strength: float = DEFAULT_REFINE_STRENGTH  # without a request strength or predictor
    # EC-Diff approximation: `pre_steps` real calls from the start step, then k approximated steps per
    # real call. Re-tuned over rules, k and pre_steps on 32 training sessions (`ecdiff bench refine-rules
    # --limit 32 --strength predictor 0.5 0.6 0.7 0.9 ...`, docs/diffusionx.md): this default makes 21 of
    # 40 calls at the predictor's 0.8 (SSIM 0.9980 vs exact, fidelity equal) and 16 of 30 at 0.6
    # (0.9985). The one cheaper candidate as good at 0.8 (lsq beta 0.5, k 2, pre_steps 9: 19 calls,
    # 0.9981) loses 0.002-0.005 SSIM at 0.6, 0.7 and 0.9, so one default for every strength stays this.
    pre_steps: int = 3
    k: int = 1
    alpha: float = 0.3
    rule: str = "paper"  # EC-Diff's extrapolation rule (ecdiff.strategies.RULES), damped by beta unless "paper"
    beta: Optional[float] = None
    max_prompt_chars: int = MAX_PROMPT_CHARS

    def __post_init__(self) -> None:
        if not 1 <= self.num_steps <= 1000:
            raise ValueError(f"refine num_steps must be in [1, 1000], got {self.num_steps}")
        check_strength(self.default_strength)
        # ECDiff validates pre_steps, k, alpha, the rule and beta (at any step count)
        ECDiff(self.pre_steps, self.k, self.alpha, self.pre_steps, rule=self.rule, beta=self.beta)
        if self.rule in ("lsq", "quadratic") and self.pre_steps < 3:
            # their first fit reads three real noises, and steps before the start step never run
            raise ValueError(f"rule {self.rule!r} needs pre_steps >= 3 in a refinement, got {self.pre_steps}")

    def strategy(self, start: int) -> ECDiff:
        """The approximated refinement from img2img start step `start`: `pre_steps` real calls, then
        k approximated steps per real call, to the end."""
        n = self.num_steps
        return ECDiff(pre_steps=min(start + self.pre_steps, n), k=self.k, alpha=self.alpha, switch_step=n,
                      rule=self.rule, beta=self.beta)


@dataclass(frozen=True)
class Refinement:
    latents: torch.Tensor
    strength: float
    strength_source: str  # "request" | "predictor" | "default"
    start_step: int
    num_steps: int
    cloud_calls: int
    approx_steps: int
    compute_seconds: float  # strength prediction + denoising
    queue_seconds: float = 0.0  # a served refinement: waiting for a preparing thread and in the engine's queue
    resumed_at: tuple[int, ...] = ()  # steps from which a served refinement resumed on another replica


@dataclass(frozen=True)
class RefineCheckpoint:
    """A refinement part-way: the loop's state and the strength chosen at its start (which a resumed
    run keeps, whoever chose it)."""

    state: SamplerState
    strength: float
    strength_source: str

    @property
    def step(self) -> int:
        return self.state.step


class Refiner:
    def __init__(self, pipe, guidance: float, config: RefineConfig = RefineConfig(),
                 predictor: Optional[CloudStrengthFn] = None) -> None:
        self.pipe, self.guidance, self.config, self.predictor = pipe, guidance, config, predictor

    def refine(self, prompt: str, seed: int, round_index: int, latents: torch.Tensor,
               strength: Optional[float] = None, approximate: bool = False,
               on_step: Optional[StepCallback] = None) -> Refinement:
        """The whole refinement in this process."""
        plan = self.prepare(prompt, seed, round_index, latents, strength, approximate)
        return plan.refinement(plan.run.sample(on_step).latents)

    def prepare(self, prompt: str, seed: int, round_index: int, latents: torch.Tensor,
                strength: Optional[float] = None, approximate: bool = False,
                resume: Optional[RefineCheckpoint] = None) -> "RefinePlan":
        """Validate, choose the strength (request, predictor, default) and prepare the img2img run;
        `resume`: the same refinement continued from a checkpoint of it (its strength is kept)."""
        check_prompt(prompt, self.config.max_prompt_chars)
        if round_index < 1:
            raise ValueError(f"a refinement follows at least one preview round; round_index must be >= 1, got {round_index}")
        started = time.perf_counter()
        if resume is not None:
            strength, source = check_strength(resume.strength), resume.strength_source
        elif strength is not None:
            strength, source = check_strength(strength), "request"
        elif self.predictor is not None and (chosen := self.predictor(
                prompt, preview_images(self.pipe, latents.to(pipeline_device(self.pipe))))) is not None:
            strength, source = chosen, "predictor"
        else:  # no predictor, or it abstained
            strength, source = self.config.default_strength, "default"
        n = self.config.num_steps
        start = img2img_start_step(n, strength)
        strategy = self.config.strategy(start) if approximate else None
        if resume is None:
            spec = RoundSpec(prompt, seed, round_index, n, strength, latents)
            run = prepare_rounds(self.pipe, self.guidance, [spec], role="cloud", strategy=strategy)
        else:
            if not start <= resume.step < n:
                raise ValueError(f"a checkpoint entering step {resume.step} is not within this refinement's "
                                 f"steps [{start}, {n})")
            run = prepare_run(strategy or CloudOnly(), prompts=prompt, num_steps=n, guidance=self.guidance,
                              cloud=self.pipe, state=resume.state)
        return RefinePlan(run, strength, source, start, started)


@dataclass(frozen=True)
class RefinePlan:
    """A prepared refinement: run it anywhere (in process, or on the cloud's engine), then wrap its end."""

    run: PreparedRun  # from `start_step`, or from a checkpoint's step when resumed
    strength: float
    strength_source: str
    start_step: int  # the img2img start step the strength gives
    started: float  # perf_counter() when preparation began

    def checkpoint(self, state: SamplerState) -> RefineCheckpoint:
        return RefineCheckpoint(state, self.strength, self.strength_source)

    def refinement(self, latents: torch.Tensor) -> Refinement:
        """The finished refinement (its counts are the whole refinement's, resumed or not); NaN or
        infinite latents (from an unsound preview latent) are a ValueError, never a result."""
        if not bool(torch.isfinite(latents).all()):
            raise ValueError("the refinement ended with NaN or infinite latents: the preview latent is not sound")
        run = self.run
        plan = run.strategy.plan(run.num_steps)[self.start_step:]
        return Refinement(latents.detach().to("cpu", torch.float32), self.strength, self.strength_source,
                          self.start_step, run.num_steps, plan.count(StepKind.CLOUD), plan.count(StepKind.APPROX),
                          time.perf_counter() - self.started)
