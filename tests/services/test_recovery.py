"""The edge's fault-recovery policy on plain values: no server, no model."""

import pytest
import torch

from ecdiff.strategies import EdgeOnly, HybridSD
from ecdiff.strategy_config import StrategyDefaults
from ecdiff.services.accounting import CloudStreamTally, Downgraded, ReceivedHandoff
from ecdiff.services.recovery import CloudRequired, plan_edge_phase
from ecdiff.services.validation import RequestLimits, validate_request

CLOUD = "127.0.0.1:9"
EDGE_GUIDANCE = 7.0
LATENTS = torch.zeros(1, 4, 8, 8)


def _valid(strategy="hybrid", steps=10, **params):
    return validate_request("a red circle", 7, steps, strategy, params, RequestLimits(100, 50), StrategyDefaults.load())


def _plan(valid, tally, require_cloud=False):
    return plan_edge_phase(valid, tally, cloud_target=CLOUD, edge_guidance=EDGE_GUIDANCE, preview_every=2,
                           require_cloud=require_cloud)


def test_handoff_present_continues_from_it_with_the_clouds_guidance():
    valid = _valid(cloud_steps=4)
    handoff = ReceivedHandoff(step=4, latents=LATENTS, guidance=5.5, cloud_calls=4, approx_steps=0,
                              compute_seconds=1.0, model_name="cloud-model")
    plan = _plan(valid, CloudStreamTally(handoff=handoff, events=5))
    assert plan.degraded_reason == ""
    job = plan.job
    assert (job.strategy, job.start, job.latents, job.guidance) == (valid.strategy, 4, LATENTS, 5.5)
    assert (job.prompt, job.seed, job.num_steps, job.preview_every) == ("a red circle", 7, 10, 2)


def test_a_handoff_of_a_cheaper_point_continues_with_the_point_served():
    valid = _valid("ecdiff", pre_steps=3, k=1, alpha=0.5, switch_step=8)
    served = _valid("ecdiff", pre_steps=2, k=1, alpha=0.5, switch_step=5)
    handoff = ReceivedHandoff(step=5, latents=LATENTS, guidance=5.5, cloud_calls=3, approx_steps=2, compute_seconds=1.0,
                              model_name="cloud-model", downgraded=Downgraded(served.strategy, served.params, "busy"))
    plan = _plan(valid, CloudStreamTally(handoff=handoff, events=6))
    assert (plan.job.strategy, plan.job.start, plan.degraded_reason) == (served.strategy, 5, "")


def test_broke_after_a_checkpoint_finishes_from_it_on_the_edge():
    valid = _valid(cloud_steps=6)
    tally = CloudStreamTally(checkpoint=(3, LATENTS), events=3, failure="UNAVAILABLE: gone")
    plan = _plan(valid, tally, require_cloud=True)  # the cloud was reached: require_cloud does not apply
    assert (plan.job.strategy, plan.job.start, plan.job.latents, plan.job.guidance) == (HybridSD(3), 3, LATENTS,
                                                                                       EDGE_GUIDANCE)
    assert plan.degraded_reason == ("cloud stream broke mid-way (UNAVAILABLE: gone); the edge finished from the "
                                    "last latent it received (entering step 3 of 10)")


def test_broke_before_any_latent_is_edge_only():
    plan = _plan(_valid(cloud_steps=6), CloudStreamTally(events=2, failure="UNAVAILABLE: gone"), require_cloud=True)
    assert (plan.job.strategy, plan.job.start, plan.job.latents) == (EdgeOnly(), 0, None)
    assert plan.degraded_reason == (f"cloud {CLOUD} sent no usable latent (UNAVAILABLE: gone); "
                                    "generated edge-only")


def test_latents_that_proved_unusable_are_dropped_and_the_edge_generates_alone():
    handoff = ReceivedHandoff(step=4, latents=LATENTS, guidance=5.5, cloud_calls=4, approx_steps=0,
                              compute_seconds=1.0, model_name="cloud")
    tally = CloudStreamTally(handoff=handoff, checkpoint=(3, LATENTS), events=5)
    tally.distrust("NaN from the cloud's latent")
    plan = _plan(_valid(cloud_steps=6), tally, require_cloud=True)
    assert (plan.job.strategy, plan.job.start, plan.job.latents) == (EdgeOnly(), 0, None)
    assert plan.degraded_reason == f"cloud {CLOUD} sent no usable latent (NaN from the cloud's latent); generated edge-only"


def test_unreachable_without_require_cloud_is_edge_only_with_a_notice():
    plan = _plan(_valid(cloud_steps=6), CloudStreamTally(failure="UNAVAILABLE: refused"))
    assert (plan.job.strategy, plan.job.start, plan.job.latents) == (EdgeOnly(), 0, None)
    assert plan.degraded_reason == f"cloud {CLOUD} unreachable (UNAVAILABLE: refused); generated edge-only"


def test_unreachable_with_require_cloud_is_refused():
    with pytest.raises(CloudRequired, match=rf"cloud {CLOUD} unreachable \(UNAVAILABLE: refused\) and require_cloud"):
        _plan(_valid(cloud_steps=6), CloudStreamTally(failure="UNAVAILABLE: refused"), require_cloud=True)


def test_edge_only_strategy_never_needed_the_cloud():
    valid = _valid("edge")
    plan = _plan(valid, CloudStreamTally(), require_cloud=True)
    assert plan.degraded_reason == ""
    assert (plan.job.strategy, plan.job.start, plan.job.latents, plan.job.guidance) == (valid.strategy, 0, None,
                                                                                       EDGE_GUIDANCE)
