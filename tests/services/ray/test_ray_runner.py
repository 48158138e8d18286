"""The front end's resume policy (services/ray_runner.py) without a Ray instance: a stand-in handle
replays a real replica's events (CloudPhaseRunner or RefinePhaseRunner on the tiny cloud) and loses the
replica where a test says, with Ray's own exception."""

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest
import torch
from ray.exceptions import ActorDiedError, RayTaskError

from ecdiff.diffusionx.refine import RefineConfig, Refinement, Refiner
from ecdiff.engine.core import DenoisingEngine
from ecdiff.engine.work import Downgrade
from ecdiff.services.cloud_phase import CloudHandoff, CloudJob, CloudPhaseLost, CloudPhaseRunner, CloudStep
from ecdiff.services.ray_runner import RayCloudPhaseRunner, RayRefinePhaseRunner
from ecdiff.services.refine_phase import RefineJob, RefinePhaseRunner
from ecdiff.strategies import ECDiff

STEPS = 12
JOB = CloudJob("a small red circle at the top left", 3, STEPS, ECDiff(2, 2, 0.5, 10))
REFINE_JOB = RefineJob("a small red circle at the top left", 3, 1,
                       torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(5)), 0.75, True)


@pytest.fixture(scope="module")
def runners(tiny_pair):
    """A replica's runners (checkpoints every 3 steps) on one engine."""
    cloud = tiny_pair[0]
    engine = DenoisingEngine(cloud.pipe.unet)
    with ThreadPoolExecutor(1) as executor:
        refiner = Refiner(cloud.pipe, cloud.guidance, RefineConfig(num_steps=STEPS))
        yield (CloudPhaseRunner(cloud, engine, executor, checkpoint_every=3),
               RefinePhaseRunner(refiner, engine, executor, checkpoint_every=3))
    engine.close()


def streamed(runner, job, resume=None):
    async def collect():
        return [event async for event in runner.run(job, resume=resume)]

    return asyncio.run(collect())


@pytest.fixture(scope="module")
def replica(runners):
    """What a replica streams for JOB, from the start or from a checkpoint."""
    return lambda resume=None: streamed(runners[0], JOB, resume)


@pytest.fixture(scope="module")
def refining_replica(runners):
    """What a replica streams for REFINE_JOB, from the start or from a checkpoint."""
    return lambda resume=None: streamed(runners[1], REFINE_JOB, resume)


class Response:
    """One streaming call: its events (one per list, as a replica sends events that were not ready
    together), then `error` if given (the replica lost mid-stream)."""

    def __init__(self, events, error=None):
        self.events, self.error, self.cancelled = events, error, False

    def __aiter__(self):
        return self._stream()

    async def _stream(self):
        for event in self.events:
            yield [event]
        if self.error is not None:
            raise self.error

    def cancel(self):
        self.cancelled = True


class Handle:
    """`handle.options(stream=True).denoise.remote(...)` (or `.refine`): each call takes the next scripted
    response."""

    def __init__(self, *responses):
        self.responses, self.calls, self.jobs = list(responses), [], []

    def options(self, stream):
        return self

    @property
    def denoise(self):
        return self

    refine = denoise

    def remote(self, job, timeout_s, request_id, resume):
        self.calls.append(resume)
        self.jobs.append(job)
        return self.responses.pop(0)


def through(runner, job=JOB):
    async def collect():
        return [event async for event in runner.run(job)]

    return asyncio.run(collect())


def test_a_lost_replica_resumes_from_its_last_checkpoint_and_the_stream_is_whole(replica):
    whole = replica()
    lost_after = 9  # steps 0..8 streamed; checkpoints after steps 3 and 6 (ends of approximated runs)
    checkpoint = whole[6].checkpoint
    assert [e.checkpoint is not None for e in whole[:lost_after]] == [i in (3, 6) for i in range(lost_after)]
    responses = [Response(whole[:lost_after], ActorDiedError()), Response(replica(resume=checkpoint))]
    handle = Handle(*responses)
    events = through(RayCloudPhaseRunner(handle, max_resumes=2))
    assert handle.calls == [None, checkpoint] and all(response.cancelled for response in responses)
    # Every step once and in order, though steps 7 and 8 ran twice; the handoff is the uninterrupted one's.
    assert [e.record.index for e in events[:-1]] == list(range(10))
    handoff, expected = events[-1], whole[-1]
    assert isinstance(handoff, CloudHandoff) and torch.equal(handoff.latents, expected.latents)
    assert handoff.timesteps == expected.timesteps
    assert (handoff.cloud_calls, handoff.approx_steps, handoff.resumed_at) == (
        expected.cloud_calls, expected.approx_steps, (7,))
    assert expected.resumed_at == ()


def test_a_lost_replica_that_served_a_cheaper_plan_resumes_that_plan_and_the_handoff_still_says_so(replica):
    """The lost replica's engine served JOB's strategy as the cheaper plan of a job that asked for another
    (its checkpoints say so): the survivor gets that plan as the job's own, with no cheaper plans, and
    the handoff reports the downgrade the first engine chose."""
    whole = replica()
    served = Downgrade(0, "queue", "cloud engine under load: 1 requests queued (adaptive_queue 1)")
    asked = replace(JOB, strategy=ECDiff(2, 1, 0.5, 11), cheaper=(JOB.strategy,))
    first = [replace(e, downgrade=served) if isinstance(e, CloudStep) and e.checkpoint is not None else e
             for e in whole[:9]]
    handle = Handle(Response(first, ActorDiedError()), Response(replica(resume=whole[6].checkpoint)))
    events = through(RayCloudPhaseRunner(handle, max_resumes=1), asked)
    assert handle.jobs == [asked, JOB] and handle.calls == [None, whole[6].checkpoint]
    assert [e.record.index for e in events[:-1]] == list(range(10))
    handoff = events[-1]
    assert handoff.downgrade == served and handoff.resumed_at == (7,) and handoff.step == whole[-1].step
    assert torch.equal(handoff.latents, whole[-1].latents)


def test_without_a_checkpoint_it_starts_again_and_past_max_resumes_the_loss_is_reported(replica):
    whole = replica()
    handle = Handle(Response(whole[:2], ActorDiedError()), Response(whole))
    events = through(RayCloudPhaseRunner(handle, max_resumes=1))
    assert handle.calls == [None, None] and events[-1].resumed_at == (0,)
    assert [e.record.index for e in events[:-1]] == list(range(10))
    lost = [Response(whole[:1], ActorDiedError()) for _ in range(2)]
    with pytest.raises(CloudPhaseLost, match="lost mid-stream: ActorDiedError"):
        through(RayCloudPhaseRunner(Handle(*lost), max_resumes=1))
    assert all(response.cancelled for response in lost)
    with pytest.raises(CloudPhaseLost):
        through(RayCloudPhaseRunner(Handle(Response([], ActorDiedError())), max_resumes=0))


def test_a_replicas_own_error_is_not_resumed(replica):
    handle = Handle(Response(replica()[:3], RayTaskError("denoise", "traceback", ValueError("bad latent"))))
    with pytest.raises(ValueError, match="bad latent"):
        through(RayCloudPhaseRunner(handle, max_resumes=2))
    assert len(handle.calls) == 1


def test_a_lost_refinement_resumes_from_its_last_checkpoint_with_its_strength(refining_replica):
    whole = refining_replica()
    start = whole[-1].start_step  # 3 of 12
    checkpoint = whole[5 - start].checkpoint  # entering step 6: 3 steps after the start
    assert [e.record.index for e in whole[:-1] if e.checkpoint is not None] == [5, 8]
    lost_after = 8 - start  # steps 3..7 streamed
    responses = [Response(whole[:lost_after], ActorDiedError()), Response(refining_replica(resume=checkpoint))]
    handle = Handle(*responses)
    events = through(RayRefinePhaseRunner(handle, max_resumes=1), REFINE_JOB)
    assert handle.calls == [None, checkpoint] and all(response.cancelled for response in responses)
    # Every step once and in order, though steps 6 and 7 ran twice; the refinement is the uninterrupted one's.
    assert [e.record.index for e in events[:-1]] == list(range(start, STEPS))
    refined, expected = events[-1], whole[-1]
    assert isinstance(refined, Refinement) and torch.equal(refined.latents, expected.latents)
    assert (refined.strength, refined.start_step, refined.cloud_calls, refined.approx_steps) == (
        expected.strength, expected.start_step, expected.cloud_calls, expected.approx_steps)
    assert (refined.resumed_at, expected.resumed_at) == ((6,), ())
    lost = [Response(whole[:2], ActorDiedError()) for _ in range(2)]
    with pytest.raises(CloudPhaseLost, match="lost mid-stream: ActorDiedError"):
        through(RayRefinePhaseRunner(Handle(*lost), max_resumes=1), REFINE_JOB)
