"""The transport-free service logic, driven in process: cloud phase + edge phase == `sample`."""

import pytest
import torch

from ecdiff.images import decode_images, png_bytes
from ecdiff.services.cloud_phase import CloudHandoff, CloudJob, CloudPhaseRunner, CloudStep
from ecdiff.services.edge_phase import EdgeJob, EdgeOutcome, EdgePhaseRunner, EdgeStep
from ecdiff.services.threads import Stopped
from ecdiff.strategies import HybridSD
from ecdiff.strategy_config import StrategyDefaults

STEPS = 10


def run_split(pair, name, params, prompt, seed, latents_every=0):
    cloud, edge = pair
    strategy, resolved = StrategyDefaults.load().resolve(name, STEPS, params)
    events = []
    handoff = CloudPhaseRunner(cloud).run(CloudJob(prompt, seed, STEPS, name, strategy, resolved, latents_every), events.append)
    assert events[-1] is handoff and isinstance(handoff, CloudHandoff)
    edge_events = []
    outcome = EdgePhaseRunner(edge).finish(
        EdgeJob(prompt, seed, STEPS, strategy, handoff.step, handoff.latents, cloud.guidance), edge_events.append)
    assert edge_events[-1] is outcome and isinstance(outcome, EdgeOutcome)
    return strategy, events[:-1], handoff, edge_events, outcome


@pytest.mark.parametrize("name, params", [
    ("ecdiff", {"pre_steps": 3, "k": 2, "alpha": 0.5, "switch_step": 8}),
    ("ecdiff", {"pre_steps": 2, "k": 3, "alpha": 0.35, "switch_step": 10}),
    ("hybrid", {"cloud_steps": 4}),
    ("cloud", {}),
    ("edge", {}),
])
def test_cloud_then_edge_equals_in_process_sample_bit_for_bit(tiny_pair, reference, name, params):
    prompt, seed = "a small red circle at the top left", 11
    strategy, steps, handoff, edge_events, outcome = run_split(tiny_pair, name, params, prompt, seed)
    expected = reference(strategy, prompt, seed, STEPS)
    assert torch.equal(handoff.latents, expected.handoff)
    assert torch.equal(outcome.latents, expected.latents)
    assert outcome.image_png == png_bytes(decode_images(tiny_pair[1].pipe, expected.latents)[0])
    assert [e.record.index for e in steps] == list(range(handoff.step))
    assert [e.record.kind for e in steps + [s for s in edge_events if isinstance(s, EdgeStep)]] == list(strategy.plan(STEPS))
    assert (handoff.cloud_calls, handoff.approx_steps, outcome.edge_calls) == (
        expected.cloud_calls, expected.approx_steps, expected.edge_calls)


@pytest.mark.parametrize("every", [1, 2, 3])
def test_asking_for_latents_never_changes_numbers(tiny_pair, reference, every):
    params = {"pre_steps": 2, "k": 3, "alpha": 0.5, "switch_step": 9}
    prompt, seed = "a blue square", 5
    strategy, steps, handoff, _, outcome = run_split(tiny_pair, "ecdiff", params, prompt, seed, latents_every=every)
    expected = reference(strategy, prompt, seed, STEPS)
    assert torch.equal(handoff.latents, expected.handoff) and torch.equal(outcome.latents, expected.latents)
    # A wanted step inside a run of approximated steps is served by the run's last step.
    plan = strategy.plan(STEPS)
    served = set()
    for i in range(handoff.step):
        if (i + 1) % every == 0:
            while plan[i] == "approx" and i + 1 < len(plan) and plan[i + 1] == "approx":
                i += 1
            served.add(i)
    sent = [e.record.index for e in steps if e.latents is not None]
    assert sent == sorted(i for i in served if i + 1 < handoff.step)


def test_degraded_edge_finish_from_a_checkpoint_uses_the_edge_from_there(tiny_pair, reference):
    cloud, edge = tiny_pair
    prompt, seed = "a yellow triangle", 3
    steps = []
    strategy, resolved = StrategyDefaults.load().resolve("cloud", STEPS, {})
    CloudPhaseRunner(cloud).run(CloudJob(prompt, seed, STEPS, "cloud", strategy, resolved, latents_every=4), steps.append)
    checkpoint = next(e for e in steps if isinstance(e, CloudStep) and e.latents is not None)  # after step 3
    assert checkpoint.record.index == 3
    outcome = EdgePhaseRunner(edge).finish(
        EdgeJob(prompt, seed, STEPS, HybridSD(4), 4, checkpoint.latents, edge.guidance), lambda e: None)
    # The same as the in-process HybridSD(4): cloud for steps 0..3, edge from 4 on.
    expected = reference(HybridSD(4), prompt, seed, STEPS)
    assert torch.equal(outcome.latents, expected.latents) and outcome.edge_calls == STEPS - 4


def test_emit_raising_stops_the_loop_within_one_step(tiny_pair):
    cloud, _ = tiny_pair
    calls = []
    handle = cloud.pipe.unet.register_forward_hook(lambda *a: calls.append(1))
    strategy, resolved = StrategyDefaults.load().resolve("cloud", STEPS, {})

    def emit(event):
        if isinstance(event, CloudStep) and event.record.index == 2:
            raise Stopped()

    try:
        with pytest.raises(Stopped):
            CloudPhaseRunner(cloud).run(CloudJob("x", 0, STEPS, "cloud", strategy, resolved), emit)
    finally:
        handle.remove()
    assert len(calls) == 3  # steps 0, 1, 2 ran; step 3 never started
