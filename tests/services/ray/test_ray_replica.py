import asyncio
import time

import pytest

from ecdiff.engine.work import QueueFull
from ecdiff.placement import PlacementError
from ecdiff.services.ray_replica import _batches, replica_device
from ecdiff.services.ray_server import unused_gpus


class Source:
    """An event stream: `bursts` of events ready together, each burst after the consumer's next wait;
    then `error`, if given. Records whether it was closed."""

    def __init__(self, bursts, error=None, then_wait=False):
        self.bursts, self.error, self.then_wait, self.closed = bursts, error, then_wait, False

    async def stream(self):
        try:
            for burst in self.bursts:
                await asyncio.sleep(0.01)  # the engine's next iteration
                for event in burst:
                    yield event
            if self.error is not None:
                raise self.error
            if self.then_wait:  # a request still running on the engine
                await asyncio.Event().wait()
        finally:
            self.closed = True


def batches_of(source, take=None, window_s=0.0):
    """The batches taken, and whether the source was closed when the stream was (asyncio.run would
    close it later anyway)."""
    async def collect():
        out = []
        stream = _batches(source.stream(), window_s)
        async for batch in stream:
            out.append(batch)
            if take is not None and len(out) == take:
                break
        await stream.aclose()
        return out, source.closed

    return asyncio.run(asyncio.wait_for(collect(), 10))


def test_events_ready_together_travel_as_one_item_in_order():
    source = Source([[0, 1, 2], [3], [4, 5]])
    assert batches_of(source) == ([[0, 1, 2], [3], [4, 5]], True)


def test_the_replicas_exception_comes_after_the_events_before_it():
    source = Source([[0, 1], [2]], error=QueueFull("queue full"))

    async def collect(seen):
        async for batch in _batches(source.stream()):
            seen.extend(batch)

    seen = []
    with pytest.raises(QueueFull, match="queue full"):
        asyncio.run(collect(seen))
    assert seen == [0, 1, 2]


def test_leaving_early_closes_the_source_so_the_engine_request_is_cancelled():
    source = Source([[0]], then_wait=True)
    assert batches_of(source, take=1) == ([[0]], True)


def test_a_window_joins_the_events_of_several_engine_iterations_and_never_holds_back_the_end():
    source = Source([[0, 1], [2], [3, 4]])  # 10 ms apart
    started = time.monotonic()
    assert batches_of(source, window_s=5.0) == ([[0, 1, 2, 3, 4]], True)
    assert time.monotonic() - started < 2.5  # the end went at once, not at the window's close


def test_a_window_sends_what_it_holds_when_it_closes():
    source = Source([[0], [1]], then_wait=True)  # a request still running after two iterations
    assert batches_of(source, take=1, window_s=0.2) == ([[0, 1]], True)


def test_with_a_window_the_replicas_exception_still_comes_after_the_events_before_it():
    source = Source([[0, 1], [2]], error=QueueFull("queue full"))

    async def collect(seen):
        async for batch in _batches(source.stream(), 5.0):
            seen.append(batch)

    seen = []
    with pytest.raises(QueueFull, match="queue full"):
        asyncio.run(asyncio.wait_for(collect(seen), 2.5))
    assert seen == [[0, 1, 2]]


def test_a_replica_uses_a_gpu_only_when_ray_gave_it_one():
    assert replica_device("auto", [0]) == "auto" and replica_device("cuda:0", ["0"]) == "cuda:0"
    assert replica_device("auto", []) == "cpu" and replica_device(" AUTO ", []) == "cpu"
    assert replica_device("cpu", []) == "cpu"
    for device in ("cuda", "cuda:1"):
        with pytest.raises(PlacementError, match="reserved no GPU for this replica.*--replica-gpus"):
            replica_device(device, [])


def test_the_front_end_says_when_replicas_leave_the_clusters_gpus_unused():
    assert "has 2 GPU(s)" in unused_gpus(0.0, 2.0, "auto") and "--replica-gpus 1" in unused_gpus(0.0, 1.0, "cuda")
    assert unused_gpus(0.5, 1.0, "auto") is None  # they reserve some
    assert unused_gpus(0.0, 0, "auto") is None  # no GPU to leave
    assert unused_gpus(0.0, 1.0, "cpu") is None  # the CPU was asked for
