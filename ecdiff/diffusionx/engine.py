"""The edge's side of a DiffusionX session, transport-free: previews, history, the refinement input.

`PreviewEngine.start(prompt, seed)` makes round 0 (txt2img preview, `preview_steps` DDIM steps on
the edge model) and opens a session in the `SessionStore`; `revise(session_id, prompt, strength)`
makes round r > 0 by img2img from round r - 1's latent, at the given strength, else the edge
predictor's (from both prompts and the previous preview), else `default_strength`; `finalize_input(session_id)` is what the edge sends to the
cloud. Everything a later round needs lives in the store, so a restarted edge continues a session.
Unknown or expired sessions raise `SessionNotFound`, bad input `ValueError`.

Previews use 25 DDIM steps by default: half the 50 of a full generation (the paper's previews are
likewise cheaper than the final image); img2img at strength s runs int(25 s) of them (>= 1).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from typing import Optional

import torch

from ecdiff.conditioning import pipeline_device
from ecdiff.conventions import MAX_PROMPT_CHARS, check_prompt, check_seed
from ecdiff.images import decode_images, png_bytes
from ecdiff.sampling import StepCallback

from .choosers import EdgeStrengthFn
from .embeddings import preview_images
from .rounds import RoundSpec, run_round
from .store import Round, SessionStore

DEFAULT_PREVIEW_STEPS = 25
DEFAULT_STRENGTH = 0.6


@dataclass(frozen=True)
class PreviewConfig:
    num_steps: int = DEFAULT_PREVIEW_STEPS
    default_strength: float = DEFAULT_STRENGTH  # revisions without a request strength or predictor
    max_prompt_chars: int = MAX_PROMPT_CHARS

    def __post_init__(self) -> None:
        if isinstance(self.num_steps, bool) or not isinstance(self.num_steps, int) or not 1 <= self.num_steps <= 1000:
            raise ValueError(f"preview num_steps must be an integer in [1, 1000], got {self.num_steps!r}")
        check_strength(self.default_strength)
        if self.max_prompt_chars < 1:
            raise ValueError(f"max_prompt_chars must be >= 1, got {self.max_prompt_chars}")


def check_strength(strength: float) -> float:
    if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not math.isfinite(strength) \
            or not 0.0 < strength <= 1.0:
        raise ValueError(f"strength must be a number in (0, 1], got {strength!r}")
    return float(strength)


@dataclass(frozen=True)
class RoundOutcome:
    session_id: str
    round_index: int
    prompt: str
    strength: Optional[float]  # None for the txt2img round
    strength_source: str  # "txt2img" | "request" | "predictor" | "default"
    latents: torch.Tensor
    image_png: bytes
    steps_run: int
    num_steps: int
    compute_seconds: float  # denoising (and choosing the strength, for a predicted one)
    decode_seconds: float  # VAE decode + PNG


@dataclass(frozen=True)
class FinalizeInput:
    prompt: str
    seed: int
    round_index: int  # the refinement's round index (= number of preview rounds)
    latents: torch.Tensor


class PreviewEngine:
    def __init__(self, pipe, guidance: float, store: SessionStore, config: PreviewConfig = PreviewConfig(),
                 predictor: Optional[EdgeStrengthFn] = None) -> None:
        self.pipe, self.guidance, self.store, self.config, self.predictor = pipe, guidance, store, config, predictor

    def check_start(self, prompt: str, seed: int) -> None:
        """Raise what `start` would refuse (ValueError) without computing, so a server can answer
        it before waiting for compute, whatever its load."""
        check_prompt(prompt, self.config.max_prompt_chars)
        check_seed(seed)

    def start(self, prompt: str, seed: int, on_step: Optional[StepCallback] = None) -> RoundOutcome:
        self.check_start(prompt, seed)
        outcome = self._round(RoundSpec(prompt, seed, 0, self.config.num_steps), "txt2img", on_step)
        session_id = self.store.create(seed)
        self.store.append_round(session_id, prompt, None, outcome.latents)
        return _with_id(outcome, session_id)

    def check_revision(self, session_id: str, prompt: str, strength: Optional[float] = None) -> None:
        """Raise what `revise` would refuse without computing: a bad prompt or strength or a session
        at its round limit (ValueError), an unknown or expired session (SessionNotFound). A server
        answers these before waiting for compute, whatever its load."""
        self._revisable(session_id, prompt, strength)

    def revise(self, session_id: str, prompt: str, strength: Optional[float] = None,
               on_step: Optional[StepCallback] = None) -> RoundOutcome:
        seed, last = self._revisable(session_id, prompt, strength)  # refuse before computing, not after
        started = time.perf_counter()
        if strength is not None:
            strength, source = float(strength), "request"
        else:
            chosen = None
            if self.predictor is not None:
                previous = preview_images(self.pipe, last.latents.to(pipeline_device(self.pipe)))
                chosen = self.predictor(last.prompt, prompt, previous)
            # The predictor abstains (None) where it cannot read the prompt.
            strength, source = (chosen, "predictor") if chosen is not None else (self.config.default_strength, "default")
        choosing = time.perf_counter() - started
        spec = RoundSpec(prompt, seed, last.index + 1, self.config.num_steps, strength, last.latents)
        outcome = self._round(spec, source, on_step)
        self.store.append_round(session_id, prompt, strength, outcome.latents)
        # Edge compute includes choosing the strength (decoding the previous preview, the predictor).
        return replace(_with_id(outcome, session_id), compute_seconds=outcome.compute_seconds + choosing)

    def finalize_input(self, session_id: str) -> FinalizeInput:
        seed, last = self._last(session_id)
        return FinalizeInput(last.prompt, seed, last.index + 1, last.latents)

    def decode(self, latents: torch.Tensor) -> bytes:
        return png_bytes(decode_images(self.pipe, latents.to(pipeline_device(self.pipe)))[0])

    def _revisable(self, session_id: str, prompt: str, strength: Optional[float]) -> tuple[int, Round]:
        check_prompt(prompt, self.config.max_prompt_chars)
        if strength is not None:
            check_strength(strength)
        seed, last = self._last(session_id)
        if last.index + 1 >= self.store.config.max_rounds:
            raise ValueError(f"session {session_id} already has the maximum of {self.store.config.max_rounds} rounds")
        return seed, last

    def _last(self, session_id: str) -> tuple[int, Round]:
        rounds = self.store.rounds(session_id)  # raises SessionNotFound
        if not rounds:
            raise ValueError(f"session {session_id!r} has no rounds")
        return self.store.seed(session_id), rounds[-1]

    def _round(self, spec: RoundSpec, source: str, on_step: Optional[StepCallback]) -> RoundOutcome:
        started = time.perf_counter()
        result = run_round(self.pipe, self.guidance, spec, role="edge", on_step=on_step)
        compute = time.perf_counter() - started
        latents = result.latents.detach().to("cpu", torch.float32)
        decode_started = time.perf_counter()
        image = self.decode(latents)
        return RoundOutcome("", spec.round_index, spec.prompt, spec.strength, source, latents, image,
                            result.edge_calls, spec.num_steps, compute, time.perf_counter() - decode_started)


def _with_id(outcome: RoundOutcome, session_id: str) -> RoundOutcome:
    return replace(outcome, session_id=session_id)
