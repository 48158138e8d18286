"""The edge's tally of the cloud stream and the request summary, on plain values."""

from dataclasses import replace

import torch

from ecdiff.sampling import StepRecord
from ecdiff.strategies import ECDiff, StepKind
from ecdiff.strategy_config import StrategyDefaults
from ecdiff.services.accounting import CloudStreamTally, Downgraded, ReceivedHandoff, summarize, transfer_seconds
from ecdiff.services.edge_phase import EdgeOutcome

EDGE = EdgeOutcome(latents=torch.zeros(1), image_png=b"png", edge_calls=6, compute_seconds=2.0, decode_seconds=0.5)
HANDOFF = ReceivedHandoff(step=4, latents=torch.zeros(1), guidance=7.0, cloud_calls=3, approx_steps=1,
                          compute_seconds=1.25, model_name="cloud-model")


def _streamed(*kinds, seconds=0.5):
    tally = CloudStreamTally()
    for index, kind in enumerate(kinds):
        tally.add_step(StepRecord(index, 999 - index, kind, seconds), None)
    return tally


def test_steps_are_counted_by_kind_and_a_latent_becomes_the_checkpoint():
    tally = _streamed(StepKind.CLOUD, StepKind.APPROX, StepKind.APPROX)
    latents = torch.ones(1)
    tally.add_step(StepRecord(3, 996, StepKind.CLOUD, 0.5), latents)
    assert (tally.events, tally.cloud_calls, tally.approx_steps, tally.step_seconds) == (4, 2, 2, 2.0)
    assert tally.checkpoint == (4, latents)  # the latent after step 3 enters step 4
    tally.add_handoff(HANDOFF)
    assert tally.events == 5 and tally.handoff is HANDOFF


def test_counts_come_from_the_handoff_when_present():
    tally = _streamed(StepKind.CLOUD, StepKind.CLOUD)
    tally.add_handoff(HANDOFF)
    tally.wall_seconds, tally.bytes_to_cloud, tally.bytes_from_cloud = 2.0, 100, 2000
    summary = summarize(tally, EDGE, handoff_step=4, degraded_reason="", contacted_cloud=True, total_seconds=5.0)
    assert (summary.cloud_calls, summary.approx_steps, summary.cloud_compute_seconds) == (3, 1, 1.25)
    assert summary.transfer_seconds == 0.75
    assert (summary.cloud_model, summary.degraded, summary.degraded_reason) == ("cloud-model", False, "")
    assert (summary.edge_calls, summary.edge_compute_seconds, summary.decode_seconds) == (6, 2.0, 0.5)
    assert (summary.bytes_to_cloud, summary.bytes_from_cloud, summary.handoff_step, summary.total_seconds) == (
        100, 2000, 4, 5.0)


def test_counts_come_from_the_step_events_without_a_handoff():
    tally = _streamed(StepKind.CLOUD, StepKind.APPROX, StepKind.CLOUD)
    tally.wall_seconds = 3.0
    summary = summarize(tally, EDGE, handoff_step=3, degraded_reason="broke", contacted_cloud=True, total_seconds=5.0)
    assert (summary.cloud_calls, summary.approx_steps, summary.cloud_compute_seconds) == (2, 1, 1.5)
    assert summary.transfer_seconds == 1.5
    assert (summary.cloud_model, summary.degraded, summary.degraded_reason) == ("", True, "broke")


def test_the_clouds_queue_time_is_neither_compute_nor_transfer():
    tally = CloudStreamTally()
    tally.add_handoff(replace(HANDOFF, queue_seconds=0.5))
    tally.wall_seconds = 2.0
    summary = summarize(tally, EDGE, handoff_step=4, degraded_reason="", contacted_cloud=True, total_seconds=5.0)
    assert (summary.cloud_compute_seconds, summary.cloud_queue_seconds, summary.transfer_seconds) == (1.25, 0.5, 0.25)
    assert transfer_seconds(1.0, 0.75, 0.5) == 0.0  # never negative


def test_a_downgrade_is_reported_and_is_not_a_degraded_result():
    downgraded = Downgraded(ECDiff(2, 2, 0.5, 4), StrategyDefaults.load().params, "engine under load")
    tally = CloudStreamTally(handoff=replace(HANDOFF, downgraded=downgraded))
    summary = summarize(tally, EDGE, handoff_step=4, degraded_reason="", contacted_cloud=True, total_seconds=5.0)
    assert (summary.downgraded, summary.downgrade_reason, summary.degraded) == (True, "engine under load", False)
    plain = summarize(CloudStreamTally(handoff=HANDOFF), EDGE, handoff_step=4, degraded_reason="",
                      contacted_cloud=True, total_seconds=5.0)
    assert (plain.downgraded, plain.downgrade_reason, plain.cloud_queue_seconds) == (False, "", 0.0)


def test_transfer_time_is_never_negative():
    tally = CloudStreamTally()
    tally.add_handoff(HANDOFF)  # the cloud reports more compute than the edge's wall time
    tally.wall_seconds = 1.0
    summary = summarize(tally, EDGE, handoff_step=4, degraded_reason="", contacted_cloud=True, total_seconds=5.0)
    assert summary.transfer_seconds == 0.0


def test_a_handoff_from_elsewhere_has_no_transfer_time():
    summary = summarize(CloudStreamTally(handoff=HANDOFF), EDGE, handoff_step=4, degraded_reason="",
                        contacted_cloud=False, total_seconds=5.0)
    assert (summary.transfer_seconds, summary.cloud_compute_seconds, summary.cloud_calls) == (0.0, 1.25, 3)
    assert (summary.bytes_to_cloud, summary.bytes_from_cloud) == (0, 0)
