"""The transport-free service logic, driven in process: cloud phase (on the engine) + edge phase == `sample`."""

import asyncio
import dataclasses
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

from ecdiff.diffusionx.refine import RefineConfig, Refiner
from ecdiff.engine.config import EngineConfig
from ecdiff.engine.core import DenoisingEngine
from ecdiff.images import decode_images, png_bytes
from ecdiff.services.cloud_phase import CloudHandoff, CloudJob, CloudPhaseRunner, CloudStep
from ecdiff.services.edge_phase import EdgeJob, EdgeOutcome, EdgePhaseRunner, EdgeStep
from ecdiff.services.refine_phase import RefineJob, RefinePhaseRunner
from ecdiff.strategies import CloudOnly, HybridSD
from ecdiff.strategy_config import StrategyDefaults

from support.unet_calls import UNetCalls, wait_until

STEPS = 10


@pytest.fixture(scope="module")
def cloud_runner(tiny_pair):
    engine = DenoisingEngine(tiny_pair[0].pipe.unet)
    with ThreadPoolExecutor(1) as executor:
        yield CloudPhaseRunner(tiny_pair[0], engine, executor)
    engine.close()


def cloud_events(runner, job):
    async def collect():
        return [event async for event in runner.run(job)]

    return asyncio.run(collect())


def run_split(pair, runner, name, params, prompt, seed, latents_every=0):
    cloud, edge = pair
    strategy, _ = StrategyDefaults.load().resolve(name, STEPS, params)
    events = cloud_events(runner, CloudJob(prompt, seed, STEPS, strategy, latents_every))
    handoff = events[-1]
    assert isinstance(handoff, CloudHandoff)
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
def test_cloud_then_edge_equals_in_process_sample_bit_for_bit(tiny_pair, cloud_runner, reference, name, params):
    prompt, seed = "a small red circle at the top left", 11
    strategy, steps, handoff, edge_events, outcome = run_split(tiny_pair, cloud_runner, name, params, prompt, seed)
    expected = reference(strategy, prompt, seed, STEPS)
    assert torch.equal(handoff.latents, expected.handoff)
    assert torch.equal(outcome.latents, expected.latents)
    assert outcome.image_png == png_bytes(decode_images(tiny_pair[1].pipe, expected.latents)[0])
    assert [e.record.index for e in steps] == list(range(handoff.step))
    assert [e.record.kind for e in steps + [s for s in edge_events if isinstance(s, EdgeStep)]] == list(strategy.plan(STEPS))
    assert (handoff.cloud_calls, handoff.approx_steps, outcome.edge_calls) == (
        expected.cloud_calls, expected.approx_steps, expected.edge_calls)


@pytest.mark.parametrize("every", [1, 2, 3])
def test_asking_for_latents_never_changes_numbers(tiny_pair, cloud_runner, reference, every):
    params = {"pre_steps": 2, "k": 3, "alpha": 0.5, "switch_step": 9}
    prompt, seed = "a blue square", 5
    strategy, steps, handoff, _, outcome = run_split(tiny_pair, cloud_runner, "ecdiff", params, prompt, seed,
                                                     latents_every=every)
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


def test_degraded_edge_finish_from_a_checkpoint_uses_the_edge_from_there(tiny_pair, cloud_runner, reference):
    cloud, edge = tiny_pair
    prompt, seed = "a yellow triangle", 3
    strategy, _ = StrategyDefaults.load().resolve("cloud", STEPS, {})
    steps = cloud_events(cloud_runner, CloudJob(prompt, seed, STEPS, strategy, latents_every=4))
    checkpoint = next(e for e in steps if isinstance(e, CloudStep) and e.latents is not None)  # after step 3
    assert checkpoint.record.index == 3
    outcome = EdgePhaseRunner(edge).finish(
        EdgeJob(prompt, seed, STEPS, HybridSD(4), 4, checkpoint.latents, edge.guidance), lambda e: None)
    # The same as the in-process HybridSD(4): cloud for steps 0..3, edge from 4 on.
    expected = reference(HybridSD(4), prompt, seed, STEPS)
    assert torch.equal(outcome.latents, expected.latents) and outcome.edge_calls == STEPS - 4


def test_checkpoints_resume_the_cloud_phase_exactly(tiny_pair, cloud_runner, reference):
    """A runner with `checkpoint_every` attaches the loop's state to a step about every n steps (the
    first materialised step n or more after the last), never at the handoff; `run(job, resume=...)`
    from any of them continues to the same handoff, bit for bit, streaming only the steps after it."""
    strategy, _ = StrategyDefaults.load().resolve("ecdiff", STEPS, {"pre_steps": 2, "k": 2, "alpha": 0.5,
                                                                     "switch_step": 9, "rule": "lsq", "beta": 0.6})
    job = CloudJob("a green diamond", 8, STEPS, strategy)
    runner = CloudPhaseRunner(tiny_pair[0], cloud_runner.engine, cloud_runner.executor, checkpoint_every=3)
    events = cloud_events(runner, job)
    handoff = events[-1]
    assert torch.equal(handoff.latents, reference(strategy, job.prompt, job.seed, STEPS).handoff)
    checkpoints = [e.checkpoint for e in events[:-1] if e.checkpoint is not None]
    # Plan: real 0-1, approx 2-3, real 4, approx 5-6, real 7, approx 8; latents exist after 0, 1, 3, 4, 6, 7, 8.
    assert [c.step for c in checkpoints] == [4, 7]  # (the state after step 8 is the handoff's)
    for checkpoint in checkpoints:
        async def resumed():
            return [event async for event in runner.run(job, resume=checkpoint)]

        rest = asyncio.run(resumed())
        assert [e.record.index for e in rest[:-1]] == list(range(checkpoint.step, handoff.step))
        assert torch.equal(rest[-1].latents, handoff.latents) and rest[-1].timesteps == handoff.timesteps
    # A job that offers cheaper plans, served its own: the same checkpoints, naming no cheaper plan.
    offered = cloud_events(runner, dataclasses.replace(job, cheaper=(CHEAPER,)))
    assert offered[-1].downgrade is None
    assert [(e.checkpoint.step, e.downgrade) for e in offered[:-1] if e.checkpoint is not None] == [(4, None), (7, None)]


CHEAPER = StrategyDefaults.load().resolve("ecdiff", STEPS, {"pre_steps": 2, "k": 3, "alpha": 0.5, "switch_step": 8})[0]


def test_a_downgraded_job_is_checkpointed_with_the_plan_served_and_resumes_that_plan_exactly(tiny_pair, reference):
    """The engine chose the cheaper plan (a request waited: adaptive_queue 1): each checkpoint says so,
    and the job resumed with that plan as its own continues to the same handoff, bit for bit."""
    cloud = tiny_pair[0]
    own, _ = StrategyDefaults.load().resolve("ecdiff", STEPS, {"pre_steps": 2, "k": 2, "alpha": 0.5, "switch_step": 9})
    job = CloudJob("a green diamond", 8, STEPS, own, cheaper=(CHEAPER,))
    engine = DenoisingEngine(cloud.pipe.unet, EngineConfig(max_batch=1, max_running=1, adaptive_quality=True,
                                                           adaptive_queue=1))
    try:
        with ThreadPoolExecutor(2) as executor:
            runner = CloudPhaseRunner(cloud, engine, executor, checkpoint_every=3)
            results = {}
            with UNetCalls(cloud.pipe.unet, hold_at=1) as held:
                threads = []
                for name, queued, one in (("first", 0, CloudJob("a red circle", 1, STEPS, CloudOnly())),
                                          ("second", 1, CloudJob("a red circle", 2, STEPS, CloudOnly())),
                                          ("job", None, job)):
                    threads.append(threading.Thread(target=lambda n=name, j=one: results.__setitem__(n, cloud_events(runner, j))))
                    threads[-1].start()
                    if queued is not None:  # the first runs (held at its first call), then the second waits
                        wait_until(lambda q=queued: held.held.is_set() and engine.queued == q, f"{queued} requests wait")
                wait_until(lambda: engine.queued == 2, "the job waits behind the second")
                held.release.set()
                for thread in threads:
                    thread.join(120)
            events = results["job"]
            handoff = events[-1]
            assert handoff.downgrade is not None and handoff.downgrade.index == 0 and handoff.step == 8
            assert torch.equal(handoff.latents, reference(CHEAPER, job.prompt, job.seed, STEPS).handoff)  # batches of one
            kept = [e for e in events[:-1] if e.checkpoint is not None]
            assert kept and all(e.downgrade == handoff.downgrade for e in kept)
            for step in kept:
                async def resumed():
                    served_as_own = dataclasses.replace(job, strategy=CHEAPER, cheaper=())
                    return [event async for event in runner.run(served_as_own, resume=step.checkpoint)]

                rest = asyncio.run(resumed())
                assert [e.record.index for e in rest[:-1]] == list(range(step.checkpoint.step, 8))
                assert torch.equal(rest[-1].latents, handoff.latents) and rest[-1].downgrade is None
    finally:
        engine.close()


@pytest.mark.parametrize("approximate", [False, True])
def test_checkpoints_resume_a_refinement_exactly(tiny_pair, cloud_runner, approximate):
    """As for the cloud phase: a refinement runner with `checkpoint_every` attaches the refinement's state
    (and strength) to a step about every n steps; `run(job, resume=...)` from any of them ends with the
    same refinement, bit for bit, streaming only the steps after it."""
    cloud = tiny_pair[0]
    refiner = Refiner(cloud.pipe, cloud.guidance, RefineConfig(num_steps=STEPS))
    runner = RefinePhaseRunner(refiner, cloud_runner.engine, cloud_runner.executor, checkpoint_every=3)
    latents = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(4))
    job = RefineJob("a green diamond", 8, 1, latents, 0.8, approximate)

    def refine(resume=None):
        async def collect():
            return [event async for event in runner.run(job, resume=resume)]

        return asyncio.run(collect())

    events = refine()
    whole = events[-1]
    # The engine ran it alone: the in-process refinement, from step 2 of 10.
    expected = refiner.refine(job.prompt, job.seed, job.round_index, latents, job.strength, approximate)
    assert torch.equal(whole.latents, expected.latents) and whole.start_step == 2
    checkpoints = [e.checkpoint for e in events[:-1] if e.checkpoint is not None]
    assert [c.step for c in checkpoints] == [5, 8]  # every step's latent exists (k 1): 3 steps apart, from 2
    for checkpoint in checkpoints:
        rest = refine(checkpoint)
        assert [e.record.index for e in rest[:-1]] == list(range(checkpoint.step, STEPS))
        assert torch.equal(rest[-1].latents, whole.latents)
        assert (rest[-1].cloud_calls, rest[-1].approx_steps, rest[-1].strength, rest[-1].start_step) == (
            whole.cloud_calls, whole.approx_steps, 0.8, 2)
    # A plain cloud's runner checkpoints nothing.
    plain = RefinePhaseRunner(refiner, cloud_runner.engine, cloud_runner.executor)

    async def unchecked():
        return [event async for event in plain.run(job)]

    assert all(e.checkpoint is None for e in asyncio.run(unchecked())[:-1])


def test_leaving_the_stream_stops_the_request_after_the_call_in_flight(tiny_pair, cloud_runner):
    """Independent of speed: the third UNet call (step 2) is held until the consumer has left; the
    engine finishes that call and starts no other."""
    cloud, _ = tiny_pair
    calls, in_third, release = [], threading.Event(), threading.Event()

    def hook(*_):
        calls.append(1)
        if len(calls) == 3:
            in_third.set()
            release.wait(30)

    handle = cloud.pipe.unet.register_forward_hook(hook)
    strategy, _ = StrategyDefaults.load().resolve("cloud", STEPS, {})

    async def leave_during_step_2():
        events = cloud_runner.run(CloudJob("x", 0, STEPS, strategy))
        async for event in events:
            if event.record.index == 1:
                break
        await asyncio.to_thread(in_third.wait, 30)
        await events.aclose()  # cancels the request
        release.set()
        engine = cloud_runner.engine
        for _ in range(1000):
            if engine.running == 0:
                return
            await asyncio.sleep(0.01)

    try:
        asyncio.run(leave_during_step_2())
    finally:
        release.set()
        handle.remove()
    assert len(calls) == 3 and cloud_runner.engine.running == 0


def test_a_refinement_reports_its_waiting_apart_from_its_compute(tiny_pair):
    """As a cloud phase does: the time waiting for a preparing thread (or in the engine's queue) is
    queueing, not compute; the edge takes both from its wall time to get the transfer."""
    cloud = tiny_pair[0]
    hold_s = 0.4
    engine = DenoisingEngine(cloud.pipe.unet)
    try:
        with ThreadPoolExecutor(1) as executor:
            runner = RefinePhaseRunner(Refiner(cloud.pipe, cloud.guidance, RefineConfig(num_steps=STEPS)), engine, executor)
            job = RefineJob("a green diamond", 8, 1, torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(4)),
                            0.8, False)

            async def refine():
                executor.submit(time.sleep, hold_s)  # the only preparing thread is busy
                started = time.perf_counter()
                events = [event async for event in runner.run(job)]
                return events[-1], time.perf_counter() - started

            refinement, wall = asyncio.run(refine())
    finally:
        engine.close()
    assert refinement.queue_seconds >= hold_s
    assert 0 < refinement.compute_seconds and refinement.compute_seconds + refinement.queue_seconds <= wall
