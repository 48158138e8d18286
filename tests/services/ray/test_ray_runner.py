"""The front end's resume policy (services/ray_runner.py) without a Ray instance: a stand-in handle
replays a real replica's events (CloudPhaseRunner on the tiny cloud) and loses the replica where a
test says, with Ray's own exception."""

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
from ray.exceptions import ActorDiedError, RayTaskError

from ecdiff.engine.core import DenoisingEngine
from ecdiff.services.cloud_phase import CloudHandoff, CloudJob, CloudPhaseLost, CloudPhaseRunner, CloudStep
from ecdiff.services.ray_runner import RayCloudPhaseRunner
from ecdiff.strategies import ECDiff

STEPS = 12
JOB = CloudJob("a small red circle at the top left", 3, STEPS, ECDiff(2, 2, 0.5, 10))


@pytest.fixture(scope="module")
def replica(tiny_pair):
    """What a replica streams (checkpoints every 3 steps), from the start or from a checkpoint."""
    engine = DenoisingEngine(tiny_pair[0].pipe.unet)
    with ThreadPoolExecutor(1) as executor:
        runner = CloudPhaseRunner(tiny_pair[0], engine, executor, checkpoint_every=3)

        def events(resume=None):
            async def collect():
                return [event async for event in runner.run(JOB, resume=resume)]

            return asyncio.run(collect())

        yield events
    engine.close()


class Response:
    """One streaming call: its events, then `error` if given (the replica lost mid-stream)."""

    def __init__(self, events, error=None):
        self.events, self.error, self.cancelled = events, error, False

    def __aiter__(self):
        return self._stream()

    async def _stream(self):
        for event in self.events:
            yield event
        if self.error is not None:
            raise self.error

    def cancel(self):
        self.cancelled = True


class Handle:
    """`handle.options(stream=True).denoise.remote(...)`: each call takes the next scripted response."""

    def __init__(self, *responses):
        self.responses, self.calls = list(responses), []

    def options(self, stream):
        return self

    @property
    def denoise(self):
        return self

    def remote(self, job, timeout_s, request_id, resume):
        self.calls.append(resume)
        return self.responses.pop(0)


def through(runner):
    async def collect():
        return [event async for event in runner.run(JOB)]

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
