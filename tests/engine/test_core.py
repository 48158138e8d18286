"""The denoising engine on the tiny pair: exactness, batching, join/leave, cancel, queue, deadlines,
load-adaptive quality."""

import queue
import threading
import time

import pytest
import torch

from ecdiff.diffusionx.rounds import round_noise
from ecdiff.engine.config import EngineConfig
from ecdiff.engine.core import DenoisingEngine
from ecdiff.engine.work import (Cancelled, CheaperPlan, DeadlineExceeded, DeadlineUnmeetable, EngineResult,
                                EngineWork, QueueFull)
from ecdiff.preparation import Img2ImgStart, prepare_run
from ecdiff.strategies import CloudOnly, ECDiff, HybridSD
from ecdiff.tiny_models import tiny_pipelines

PROMPTS = ["a small red circle at the top left on a white background",
           "a large blue square in the middle on a black background",
           "a small green triangle at the bottom right on a grey background",
           "a large yellow diamond at the top right on a white background"]


@pytest.fixture(scope="module")
def cloud():
    return tiny_pipelines(seed=0)[0]


def runs(cloud):
    """Requests that differ in strategy, extrapolation rule, steps, guidance, seed, prompt and kind
    (txt2img, img2img)."""
    return [
        prepare_run(ECDiff(2, 2, 0.4, 7), prompts=PROMPTS[0], num_steps=8, guidance=3.0, cloud=cloud, seeds=1),
        prepare_run(CloudOnly(), prompts=PROMPTS[1], num_steps=6, guidance=1.0, cloud=cloud, seeds=2),
        prepare_run(ECDiff(3, 1, 0.7, 10), prompts=PROMPTS[2], num_steps=10, guidance=5.0, cloud=cloud, seeds=3),
        prepare_run(CloudOnly(), prompts=PROMPTS[3], num_steps=10, guidance=3.0, cloud=cloud,
                    img2img=Img2ImgStart(torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(9)),
                                         round_noise(4, 1, (1, 4, 8, 8)), 0.5)),
        *(prepare_run(ECDiff(3, 2, 0.0, 10, rule=rule, beta=0.6), prompts=PROMPTS[n], num_steps=12, guidance=3.0,
                      cloud=cloud, seeds=10 + n) for n, rule in enumerate(("slope", "lsq", "quadratic"))),
    ]


def alone(run):
    """The in-process result of the run's cloud steps."""
    stop = run.strategy.handoff_step(run.num_steps)
    return run.sampler().run(run.initial_state(), max(stop, run.start_step)).latents


class Collector:
    def __init__(self):
        self.ends = queue.Queue()
        self.steps = []

    def work(self, run, **kwargs):
        stop = kwargs.pop("stop", max(run.strategy.handoff_step(run.num_steps), run.start_step))
        return EngineWork(run, stop, lambda record, latents: self.steps.append(record), self.ends.put, **kwargs)

    def results(self, n, timeout=60):
        return [self.ends.get(timeout=timeout) for _ in range(n)]


def submit_all(engine, cloud, collector, prepared, **kwargs):
    """Submit while the engine is held, so every request is admitted before the first iteration."""
    gate = threading.Event()
    blocker = prepare_run(CloudOnly(), prompts=PROMPTS[0], num_steps=1, guidance=1.0, cloud=cloud, seeds=0)
    held = EngineWork(blocker, 1, lambda record, latents: gate.wait(30), lambda _: None)
    engine.submit(held)
    tickets = [engine.submit(collector.work(run, **kwargs)) for run in prepared]
    gate.set()
    return tickets


def engine_for(cloud, **config):
    return DenoisingEngine(cloud.unet, EngineConfig(**config))


def run_all(cloud, **config):
    """Every request of `runs` on a fresh engine, all admitted before the first iteration."""
    engine = engine_for(cloud, **config)
    try:
        prepared = runs(cloud)
        collector = Collector()
        submit_all(engine, cloud, collector, prepared)
        return engine, prepared, collector.results(len(prepared))
    finally:
        engine.close()


def test_batch_of_one_is_bit_identical_to_sample(cloud):
    engine, prepared, ends = run_all(cloud, max_batch=1, max_running=4)
    assert all(isinstance(e, EngineResult) for e in ends)
    assert engine.stats.batch_sizes.keys() == {1}
    expected = [alone(run) for run in prepared]
    for end in ends:  # each result is bit-identical to exactly one request's own run
        assert sum(torch.equal(end.state.latents, x) for x in expected) == 1


def test_requests_at_different_steps_share_unet_calls(cloud):
    engine, prepared, ends = run_all(cloud, max_batch=8, max_running=8)
    assert all(isinstance(e, EngineResult) for e in ends)
    calls_alone = sum(run.sampler().plan[run.start_step:].count("cloud") for run in prepared)
    assert engine.stats.unet_calls < calls_alone - 5  # shared (the held request adds one)
    assert max(engine.stats.batch_sizes) >= 3
    expected = [alone(run) for run in prepared]
    for end in ends:
        # Batched rounding only: each result is close to exactly one request's own result.
        close = [torch.allclose(end.state.latents, x, rtol=1e-4, atol=1e-5) for x in expected]
        assert sum(close) == 1


def test_a_request_joins_and_another_leaves_at_step_boundaries(cloud):
    engine = engine_for(cloud, max_batch=8, max_running=8)
    collector = Collector()
    late = prepare_run(ECDiff(2, 1, 0.5, 8), prompts=PROMPTS[1], num_steps=8, guidance=3.0, cloud=cloud, seeds=5)
    joined = []

    def on_step(record, latents):
        if record.index == 2 and not joined:  # join while the first request is mid-way
            joined.append(engine.submit(collector.work(late)))

    try:
        first = prepare_run(CloudOnly(), prompts=PROMPTS[0], num_steps=8, guidance=3.0, cloud=cloud, seeds=4)
        engine.submit(EngineWork(first, 8, on_step, collector.ends.put))
        ends = collector.results(2)
    finally:
        engine.close()
    assert all(isinstance(e, EngineResult) for e in ends)
    assert engine.stats.batch_sizes[2] >= 1 and engine.stats.batch_sizes[1] >= 1
    for end in ends:
        assert any(torch.allclose(end.state.latents, alone(r), rtol=1e-4, atol=1e-5) for r in (first, late))


def test_cancel_leaves_within_one_iteration(cloud):
    engine = engine_for(cloud, max_batch=4, max_running=4)
    collector = Collector()
    run = prepare_run(CloudOnly(), prompts=PROMPTS[0], num_steps=40, guidance=3.0, cloud=cloud, seeds=1)
    box = {}

    def on_step(record, latents):
        if record.index == 3:
            box["ticket"].cancel()
        collector.steps.append(record)

    try:
        box["ticket"] = engine.submit(EngineWork(run, 40, on_step, collector.ends.put))
        (end,) = collector.results(1)
    finally:
        engine.close()
    assert isinstance(end, Cancelled)
    assert max(r.index for r in collector.steps) == 3  # no step after the one that cancelled


def test_a_callback_that_raises_ends_only_its_request(cloud):
    engine = engine_for(cloud, max_batch=4, max_running=4)
    collector = Collector()

    def broken(record, latents):
        raise ConnectionError("the caller went away")

    try:
        good, bad = runs(cloud)[:2]
        engine.submit(EngineWork(bad, 6, broken, collector.ends.put))
        engine.submit(collector.work(good))
        ends = collector.results(2)
    finally:
        engine.close()
    assert sum(isinstance(e, ConnectionError) for e in ends) == 1
    assert sum(isinstance(e, EngineResult) for e in ends) == 1


def test_a_full_queue_refuses_and_says_so(cloud):
    engine = engine_for(cloud, max_batch=1, max_running=1, max_queue=1)
    gate = threading.Event()
    collector = Collector()
    try:
        hold = prepare_run(CloudOnly(), prompts=PROMPTS[0], num_steps=2, guidance=1.0, cloud=cloud, seeds=0)
        engine.submit(EngineWork(hold, 2, lambda r, x: gate.wait(30), collector.ends.put))
        deadline = time.monotonic() + 10
        while engine.running == 0 and time.monotonic() < deadline:  # the held request occupies the slot
            time.sleep(0.005)
        engine.submit(collector.work(runs(cloud)[1]))  # waits in the queue
        with pytest.raises(QueueFull, match="queue full: 1 requests waiting and 1 running"):
            engine.submit(collector.work(runs(cloud)[1]))
        assert engine.stats.refused["queue_full"] == 1
        gate.set()
        ends = collector.results(2)
    finally:
        gate.set()
        engine.close()
    assert all(isinstance(e, EngineResult) for e in ends)


def test_deadlines(cloud):
    engine = engine_for(cloud, max_batch=2, max_running=2)
    collector = Collector()
    try:
        slow = prepare_run(CloudOnly(), prompts=PROMPTS[0], num_steps=30, guidance=3.0, cloud=cloud, seeds=1)
        passed = threading.Event()
        engine.submit(EngineWork(slow, 30, lambda r, x: passed.wait(0.05) if r.index == 1 else None,
                                 collector.ends.put, deadline=time.monotonic() + 0.02))
        (end,) = collector.results(1)
        assert isinstance(end, DeadlineExceeded)
        # Once an iteration was timed, a deadline shorter than the work is refused at submission.
        with pytest.raises(DeadlineUnmeetable, match="deadline cannot be met"):
            engine.submit(collector.work(slow, deadline=time.monotonic() + 1e-6))
        assert engine.stats.refused["deadline"] == 1
    finally:
        engine.close()


def test_edge_steps_and_foreign_runs_are_refused(cloud):
    engine = engine_for(cloud)
    other = tiny_pipelines(seed=0)[1]
    try:
        hybrid = prepare_run(HybridSD(2), prompts=PROMPTS[0], num_steps=4, guidance=3.0, cloud=cloud, edge=other,
                             seeds=1)
        with pytest.raises(ValueError, match="edge steps"):
            engine.submit(EngineWork(hybrid, 4, lambda r, x: None, lambda e: None))
        foreign = prepare_run(CloudOnly(), prompts=PROMPTS[0], num_steps=4, guidance=3.0, cloud=other, seeds=1)
        with pytest.raises(ValueError, match="not prepared for this engine's model"):
            engine.submit(EngineWork(foreign, 4, lambda r, x: None, lambda e: None))
    finally:
        engine.close()


def test_close_cancels_what_is_left(cloud):
    engine = engine_for(cloud, max_batch=1, max_running=1)
    collector = Collector()
    gate = threading.Event()
    hold = prepare_run(CloudOnly(), prompts=PROMPTS[0], num_steps=3, guidance=1.0, cloud=cloud, seeds=0)
    engine.submit(EngineWork(hold, 3, lambda r, x: gate.wait(0.2), collector.ends.put))
    engine.submit(collector.work(runs(cloud)[1]))
    engine.close()
    ends = collector.results(2)
    assert sum(isinstance(e, Cancelled) for e in ends) >= 1
    with pytest.raises(RuntimeError, match="stopped"):
        engine.submit(collector.work(runs(cloud)[1]))


def test_asyncio_callers_stream_events_and_cancel_by_leaving(cloud):
    import asyncio

    from ecdiff.engine.aio import engine_events

    engine = engine_for(cloud, max_batch=4, max_running=4)

    async def main():
        run = runs(cloud)[0]
        events = [e async for e in engine_events(engine, run, 7, keep_latents=lambda r, x, stop: r.index == 1)]
        assert [e.record.index for e in events[:-1]] == list(range(7))
        assert isinstance(events[-1], EngineResult) and torch.equal(events[-1].state.latents, alone(run))
        assert events[1].latents is not None and events[0].latents is None
        long = prepare_run(CloudOnly(), prompts=PROMPTS[0], num_steps=40, guidance=3.0, cloud=cloud, seeds=1)
        stream = engine_events(engine, long, 40)
        async for event in stream:
            if event.record.index == 2:
                break
        await stream.aclose()
        for _ in range(200):  # the request leaves at its next step boundary
            if engine.running == 0:
                break
            await asyncio.sleep(0.01)
        assert engine.running == 0 and engine.stats.finished["cancelled"] == 1

    try:
        asyncio.run(main())
    finally:
        engine.close()


def test_a_streamed_request_is_freed_when_it_ends_without_waiting_for_the_garbage_collector(cloud):
    """No reference cycle keeps a finished request's run (its tensors, scheduler, conditioning) until a
    full collection: on a busy cloud that was minutes of requests' memory (about 3 MB a minute)."""
    import asyncio
    import gc
    import weakref

    from ecdiff.engine.aio import engine_events

    engine = engine_for(cloud)

    async def stream_one():
        run = prepare_run(ECDiff(2, 2, 0.4, 7), prompts=PROMPTS[0], num_steps=8, guidance=3.0, cloud=cloud, seeds=1)
        events = [e async for e in engine_events(engine, run, 7, keep_latents=lambda r, x, stop: True,
                                                 keep_state=lambda state: True)]
        assert isinstance(events[-1], EngineResult)
        return weakref.ref(run)

    gc.collect()
    gc.disable()  # only reference counting frees it now
    try:
        run = asyncio.run(stream_one())
        deadline = time.monotonic() + 10  # the engine thread may still be returning from the end callback
        while run() is not None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert run() is None
    finally:
        gc.enable()
        engine.close()


def test_kept_states_resume_a_run_bit_identically_on_another_engine(cloud):
    """`keep_state` hands out private copies of the loop's state with the step they follow; a run
    prepared from one on another engine ends exactly as the uninterrupted run."""
    import asyncio

    from ecdiff.engine.aio import engine_events

    first, second = engine_for(cloud, max_batch=1), engine_for(cloud, max_batch=1)
    common = dict(prompts=PROMPTS[2], num_steps=12, guidance=3.0, cloud=cloud)
    strategy = ECDiff(3, 2, 0.0, 12, rule="lsq", beta=0.6)  # approximated runs and real noises to carry

    async def events_of(run):
        return [e async for e in engine_events(first if run.resumed is None else second, run, 12,
                                               keep_state=lambda s: s.step % 2 == 0)]

    try:
        run = prepare_run(strategy, seeds=5, **common)
        events = asyncio.run(events_of(run))
        whole = events[-1].state.latents
        kept = [(e.record, e.state) for e in events[:-1] if e.state is not None]
        assert kept and all(state.step == record.index + 1 and state.step % 2 == 0 for record, state in kept)
        assert all(e.state is None for e in events[:-1] if e.record.index + 1 not in {s.step for _, s in kept})
        for _, state in kept[:-1]:
            resumed = asyncio.run(events_of(prepare_run(strategy, state=state, **common)))
            assert [e.record.index for e in resumed[:-1]] == list(range(state.step, 12))
            assert torch.equal(resumed[-1].state.latents, whole), state.step
    finally:
        first.close()
        second.close()


# --- load-adaptive quality ------------------------------------------------------------------------

class SlowUNet:
    """Every UNet call sleeps `seconds` first, so the engine's measured iteration time is at least
    that: deadlines can then be set with wide margins on both sides of an estimate."""

    def __init__(self, unet, seconds):
        self.unet, self.seconds, self.handle = unet, seconds, None

    def __enter__(self):
        self.handle = self.unet.register_forward_pre_hook(lambda *_: time.sleep(self.seconds))
        return self

    def __exit__(self, *exc):
        self.handle.remove()


ITERATION_S = 0.5  # at least: scheduling noise stays small beside the margins below


def primed_engine(cloud, **config):
    """An engine whose iteration time was measured on slowed UNet calls (ITERATION_S or more); deadlines
    below are set in multiples of it, with margins of at least half an iteration to every estimate."""
    engine = engine_for(cloud, **config)
    collector = Collector()
    with SlowUNet(cloud.unet, ITERATION_S):
        engine.submit(collector.work(prepare_run(CloudOnly(), prompts=PROMPTS[0], num_steps=1, guidance=1.0,
                                                 cloud=cloud, seeds=0)))
        (end,) = collector.results(1)
    assert isinstance(end, EngineResult)
    return engine


def ladder_runs(cloud):
    """A request of 6 model calls and two cheaper plans of it, 3 and 2 calls (same prompt, seed, steps)."""
    common = dict(prompts=PROMPTS[2], num_steps=10, guidance=3.0, cloud=cloud, seeds=21)
    own = prepare_run(ECDiff(2, 1, 0.5, 10, rule="lsq", beta=0.3), **common)
    cheaper = [prepare_run(ECDiff(2, 1, 0.5, s, rule="lsq", beta=0.3), **common) for s in (4, 2)]
    return own, cheaper


def cheaper_plans(runs):
    return tuple(CheaperPlan(run, run.strategy.handoff_step(run.num_steps)) for run in runs)


def test_a_request_that_would_miss_its_deadline_is_served_with_the_most_accurate_cheaper_plan_that_meets_it(cloud):
    engine = primed_engine(cloud, max_batch=1, max_running=1, adaptive_quality=True)
    own, cheaper = ladder_runs(cloud)
    collector = Collector()
    try:
        # Own plan 6 iterations, the first cheaper plan 3, the second 2: the deadline, 4.5, lies between.
        ticket = engine.submit(collector.work(own, deadline=time.monotonic() + 4.5 * engine.iteration_seconds,
                                              cheaper=cheaper_plans(cheaper)))
        (end,) = collector.results(1)
    finally:
        engine.close()
    assert isinstance(end, EngineResult)
    assert end.downgrade.index == 0 and end.downgrade.cause == "deadline"
    assert "own plan needs about" in end.downgrade.reason and ticket.work.downgrade == end.downgrade
    # Exactly the served plan's in-process result (a batch of one), handed over at its switch step.
    assert torch.equal(end.state.latents, alone(cheaper[0]))
    assert [r.index for r in end.records] == list(range(4))
    assert engine.stats.downgraded == {"deadline": 1} and engine.stats.refused == {}


@pytest.mark.parametrize("adaptive, offered", [(True, False), (False, True)])
def test_without_cheaper_plans_or_with_adaptive_quality_off_a_late_request_is_refused_as_before(
        cloud, adaptive, offered):
    engine = primed_engine(cloud, max_batch=1, max_running=1, adaptive_quality=adaptive)
    own, cheaper = ladder_runs(cloud)
    try:
        with pytest.raises(DeadlineUnmeetable, match="deadline cannot be met") as refused:
            engine.submit(Collector().work(own, deadline=time.monotonic() + 4.5 * engine.iteration_seconds,
                                           cheaper=cheaper_plans(cheaper) if offered else ()))
    finally:
        engine.close()
    assert "cheaper" not in str(refused.value)
    assert engine.stats.downgraded == {} and engine.stats.refused == {"deadline": 1}


def test_a_request_that_even_its_cheapest_plan_cannot_serve_in_time_is_refused_saying_so(cloud):
    engine = primed_engine(cloud, max_batch=1, max_running=1, adaptive_quality=True)
    own, cheaper = ladder_runs(cloud)
    try:
        with pytest.raises(DeadlineUnmeetable, match="nor can its cheapest of 2 cheaper plans"):
            engine.submit(Collector().work(own, deadline=time.monotonic() + 1.5 * engine.iteration_seconds,
                                           cheaper=cheaper_plans(cheaper)))
    finally:
        engine.close()


@pytest.mark.parametrize("deadline_s", [None, 100.0])
def test_a_request_its_own_plan_serves_in_time_is_not_downgraded(cloud, deadline_s):
    engine = primed_engine(cloud, max_batch=1, max_running=1, adaptive_quality=True)
    own, cheaper = ladder_runs(cloud)
    collector = Collector()
    try:
        engine.submit(collector.work(own, deadline=None if deadline_s is None else time.monotonic() + deadline_s,
                                     cheaper=cheaper_plans(cheaper)))
        (end,) = collector.results(1)
    finally:
        engine.close()
    assert isinstance(end, EngineResult) and end.downgrade is None
    assert torch.equal(end.state.latents, alone(own)) and engine.stats.downgraded == {}


@pytest.mark.parametrize("exact", [False, True])
def test_from_adaptive_queue_waiting_requests_on_a_request_is_served_cheaper_unless_it_forbids_it(cloud, exact):
    engine = engine_for(cloud, max_batch=1, max_running=1, adaptive_quality=True, adaptive_queue=1)
    gate, holding = threading.Event(), threading.Event()
    collector = Collector()
    try:
        blocker = prepare_run(CloudOnly(), prompts=PROMPTS[0], num_steps=1, guidance=1.0, cloud=cloud, seeds=0)
        engine.submit(EngineWork(blocker, 1, lambda r, x: (holding.set(), gate.wait(30)), collector.ends.put))
        assert holding.wait(30)  # the blocker runs, so what comes next waits in the queue
        own, cheaper = ladder_runs(cloud)
        first = engine.submit(collector.work(own, cheaper=cheaper_plans(cheaper)))  # the queue was empty
        second = engine.submit(collector.work(own, cheaper=() if exact else cheaper_plans(cheaper)))  # 1 waits
        gate.set()
        ends = collector.results(3)
    finally:
        gate.set()
        engine.close()
    assert all(isinstance(e, EngineResult) for e in ends)
    assert first.work.downgrade is None
    if exact:
        assert second.work.downgrade is None and engine.stats.downgraded == {}
    else:
        assert second.work.downgrade.index == 0 and second.work.downgrade.cause == "queue"
        assert "1 requests queued (adaptive_queue 1)" in second.work.downgrade.reason
        assert engine.stats.downgraded == {"queue": 1}
        assert sum(torch.equal(e.state.latents, alone(cheaper[0])) for e in ends) == 1


def test_cheaper_plans_are_checked_like_the_work_itself(cloud):
    engine = engine_for(cloud, adaptive_quality=True)
    other = tiny_pipelines(seed=0)[1]
    own, _ = ladder_runs(cloud)
    foreign = prepare_run(ECDiff(2, 1, 0.5, 4), prompts=PROMPTS[0], num_steps=10, guidance=3.0, cloud=other, seeds=1)
    try:
        with pytest.raises(ValueError, match="not prepared for this engine's model"):
            engine.submit(Collector().work(own, cheaper=cheaper_plans([foreign])))
    finally:
        engine.close()


@pytest.mark.parametrize("values, fragment", [
    ({"adaptive_queue": 4}, "adaptive_queue \\(4\\) needs adaptive_quality on"),
    ({"adaptive_quality": True, "adaptive_queue": -1}, "adaptive_queue must be an integer >= 0"),
    ({"adaptive_quality": "yes"}, "adaptive_quality must be true or false"),
])
def test_bad_adaptive_settings_are_refused(values, fragment):
    with pytest.raises(ValueError, match=fragment):
        EngineConfig(**values)


def test_the_deadline_estimate_counts_the_running_requests_that_share_the_batches(cloud):
    # max_batch 1: a running request of 6 calls takes every other iteration from a new one of 6 calls,
    # so the new one needs about 12 iterations, not its own 6: a deadline of 9 cannot be met.
    engine = primed_engine(cloud, max_batch=1, max_running=2)
    own, _ = ladder_runs(cloud)
    second, _ = ladder_runs(cloud)
    collector = Collector()
    try:
        with SlowUNet(cloud.unet, ITERATION_S):
            engine.submit(collector.work(own))
            while engine.running < 1:
                time.sleep(0.001)
            with pytest.raises(DeadlineUnmeetable, match="deadline cannot be met: about") as refused:
                engine.submit(Collector().work(second, deadline=time.monotonic() + 9 * engine.iteration_seconds))
            (end,) = collector.results(1)
    finally:
        engine.close()
    assert isinstance(end, EngineResult)
    assert "1 running" in str(refused.value) and engine.stats.refused == {"deadline": 1}


class SlowPerSample(SlowUNet):
    """Every UNet call sleeps `seconds` per sample in it (unguided runs: one row each), so a batch
    of two takes twice a batch of one, as batches roughly do on a CPU."""

    def __enter__(self):
        self.handle = self.unet.register_forward_pre_hook(lambda _, args: time.sleep(self.seconds * args[0].shape[0]))
        return self


def test_the_deadline_estimate_uses_the_time_of_the_batch_size_it_will_share(cloud):
    # Measured: a batch of one 0.5 s, a batch of two 1.0 s. A request of 6 calls arriving beside one
    # with 8 calls left shares batches of two for all its 6 iterations: about 6 s. The average over
    # all iterations (mostly batches of one) would promise about 3.6-4.2 s and admit a 4.8 s deadline.
    engine = engine_for(cloud, max_batch=2, max_running=3)  # 3: the blocker below retires an iteration late
    one_call = dict(prompts=PROMPTS[0], num_steps=1, guidance=1.0, cloud=cloud)
    priming, collector = Collector(), Collector()
    long_run = prepare_run(CloudOnly(), prompts=PROMPTS[1], num_steps=12, guidance=1.0, cloud=cloud, seeds=3)
    own, _ = ladder_runs(cloud)  # 6 model calls
    new = prepare_run(own.strategy, prompts=PROMPTS[2], num_steps=10, guidance=1.0, cloud=cloud, seeds=4)
    try:
        with SlowPerSample(cloud.unet, ITERATION_S):
            gate, holding = threading.Event(), threading.Event()
            engine.submit(EngineWork(prepare_run(CloudOnly(), seeds=0, **one_call), 1,
                                     lambda r, x: (holding.set(), gate.wait(30)), priming.ends.put))
            assert holding.wait(30)  # a batch of one ran; the next two wait together
            for seed in (1, 2):
                engine.submit(priming.work(prepare_run(CloudOnly(), seeds=seed, **one_call)))
            gate.set()
            priming.results(3)
            assert engine.stats.batch_sizes == {1: 1, 2: 1}
            engine.submit(collector.work(long_run))
            while engine.stats.unet_calls < 6:  # 4 of its 12 calls, alone: batches of one again
                time.sleep(0.001)
            assert 6 * engine.iteration_seconds < 8.5 * ITERATION_S  # what the overall average promises
            with pytest.raises(DeadlineUnmeetable, match="deadline cannot be met: about 6"):
                engine.submit(Collector().work(new, deadline=time.monotonic() + 9.6 * ITERATION_S))
            (end,) = collector.results(1)
    finally:
        engine.close()
    assert isinstance(end, EngineResult)
