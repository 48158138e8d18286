"""The edge's fault-recovery policy, transport-free: what to run on the edge once the cloud
stream is over, however it ended.

The handoff arrived: continue from it. The stream broke (or sent a malformed event) after a
checkpoint latent: finish from that latent with the edge model (`HybridSD(step)` puts every later
step on the edge), degraded. No usable latent at all: edge-only, degraded, unless the cloud was unreachable and the caller required
it (`CloudRequired`). The result never costs the user the image otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

from ecdiff.strategies import EdgeOnly, HybridSD

from .accounting import CloudStreamTally
from .edge_phase import EdgeJob
from .validation import ValidRequest


class CloudRequired(Exception):
    """The cloud was unreachable and the request did not allow an edge-only result."""


@dataclass(frozen=True)
class EdgePlan:
    job: EdgeJob
    degraded_reason: str = ""  # also the notice streamed to the caller; empty when not degraded


def plan_edge_phase(valid: ValidRequest, tally: CloudStreamTally, *, cloud_target: str, edge_guidance: float,
                    preview_every: int, require_cloud: bool) -> EdgePlan:
    common = dict(prompt=valid.prompt, seed=valid.seed, num_steps=valid.num_steps, preview_every=preview_every)
    if valid.switch_step == 0:
        return EdgePlan(EdgeJob(strategy=valid.strategy, start=0, latents=None, guidance=edge_guidance, **common))
    handoff = tally.handoff
    if handoff is not None:  # continued with the plan the cloud served (a cheaper one, when downgraded)
        strategy = valid.strategy if handoff.downgraded is None else handoff.downgraded.strategy
        return EdgePlan(EdgeJob(strategy=strategy, start=handoff.step, latents=handoff.latents,
                                guidance=handoff.guidance, **common))
    if tally.checkpoint is not None:
        step, latents = tally.checkpoint
        reason = (f"cloud stream broke mid-way ({tally.failure}); the edge finished from the last latent it "
                  f"received (entering step {step} of {valid.num_steps})")
        return EdgePlan(EdgeJob(strategy=HybridSD(step), start=step, latents=latents, guidance=edge_guidance,
                                **common), reason)
    if tally.events == 0 and require_cloud:
        raise CloudRequired(f"cloud {cloud_target} unreachable ({tally.failure}) and require_cloud is set")
    where = "unreachable" if tally.events == 0 else "sent no usable latent"
    reason = f"cloud {cloud_target} {where} ({tally.failure}); generated edge-only"
    return EdgePlan(EdgeJob(strategy=EdgeOnly(), start=0, latents=None, guidance=edge_guidance, **common), reason)
