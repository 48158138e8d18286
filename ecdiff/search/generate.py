"""One timed generation: prompt -> seeded latents -> a strategy's plan -> decoded picture.

Built only from the core (`prepare_run`, `decode_images`), so the search, the noise curve and the
benchmarks produce exactly what the library produces.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from PIL import Image

from ..images import Video, decode_images
from ..loading import ModelPair
from ..preparation import prepare_run
from ..strategies import PlanCounts, StepKind, Strategy
from .costs import TimedPicture


@dataclass(frozen=True)
class Generated:
    image: Image.Image | Video
    latency_s: float  # prompt encoding + sampling + decoding, in this process
    cloud_calls: int
    edge_calls: int
    approx_steps: int
    transfer_bytes: int  # the latent handed from cloud to edge (raw tensor bytes); 0 without handoff
    # the sampler's seconds per step kind, summed over the picture; timed to the device's completion (a GPU
    # runs asynchronously), so the search's step costs are the steps' and not their launches'
    step_seconds: dict[StepKind, float]

    def timed(self) -> TimedPicture:
        return TimedPicture(self.latency_s, PlanCounts(self.cloud_calls, self.approx_steps, self.edge_calls),
                            self.step_seconds)


def generate(pair: ModelPair, strategy: Strategy, prompt: str, seed: int, num_steps: int,
             scheduler: str | None = None) -> Generated:
    """`scheduler`: a kind of `fresh_scheduler` ("ddim", "euler", "dpm++"), or None for the pair's own, which
    is what the services run."""
    plan = strategy.plan(num_steps)
    started = time.perf_counter()
    result = prepare_run(strategy, prompts=prompt, num_steps=num_steps, guidance=pair.guidance, cloud=pair.cloud,
                         edge=pair.edge, seeds=seed, scheduler=scheduler).sample(synchronize=True)
    # The picture is decoded where the last step ran: on the edge whenever the edge finishes.
    image = decode_images(pair.edge if plan[-1] == StepKind.EDGE else pair.cloud, result.latents)[0]
    latency = time.perf_counter() - started
    handoff = 0 < result.handoff_step < num_steps
    return Generated(
        image=image,
        latency_s=latency,
        cloud_calls=result.cloud_calls,
        edge_calls=result.edge_calls,
        approx_steps=result.approx_steps,
        transfer_bytes=result.handoff.numel() * result.handoff.element_size() if handoff else 0,
        step_seconds={kind: sum(r.seconds for r in result.steps if r.kind == kind) for kind in StepKind},
    )
