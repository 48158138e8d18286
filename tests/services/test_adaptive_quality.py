"""Load-adaptive quality through both services on the tiny pair, and the queue time in the accounting.

The cloud runs one request at a time (max batch 1, max running 1) with `adaptive_queue` 1, so the
third of three requests finds one waiting and is served with the frontier's first cheaper point.
Independent of speed: the first request's UNet call is held until the other two wait in the queue."""

import logging
import threading
import time
import urllib.request

import grpc
import pytest
import torch
from prometheus_client.parser import text_string_to_metric_families

from ecdiff.images import decode_images, png_bytes
from ecdiff.services.background import BackgroundServices
from ecdiff.services.config import CloudConfig, EdgeConfig
from ecdiff.services.logs import JsonFormatter
from ecdiff.strategies import ECDiff
from ecdiff.v1 import cloud_pb2, cloud_pb2_grpc, edge_pb2_grpc, strategy_pb2
from ecdiff.wire.tensors import from_proto
from support.exact_requests import exact_generate_request
from support.tiny_ladder import ASKED, SERVED, STEPS, write_tiny_ladder
from support.unet_calls import UNetCalls, wait_until

PROMPT = "a small red circle at the top left"
HOLD_S = 0.3  # the queued requests wait at least this long


@pytest.fixture(scope="module")
def services(tiny_pair, tmp_path_factory):
    path = write_tiny_ladder(tmp_path_factory.mktemp("frontier") / "frontier.toml")
    cloud = CloudConfig(max_batch=1, max_running=1, adaptive_quality=True, adaptive_queue=1, frontier_config=str(path),
                        metrics_port=0, predictors="none")
    with BackgroundServices(*tiny_pair, cloud, EdgeConfig(max_concurrency=4, predictors="none",
                                                          session_db=":memory:")) as running:
        yield running


class JsonLines(logging.Handler):
    """The services' log records as `ecdiff serve` writes them (formatted where they are emitted)."""

    def __init__(self):
        super().__init__()
        self.setFormatter(JsonFormatter())
        self.lines = []

    def emit(self, record):
        self.lines.append(self.format(record))


def generate(services, seed, **fields):
    with grpc.insecure_channel(services.edge_target, options=[("grpc.max_receive_message_length", 16 << 20)]) as ch:
        call = edge_pb2_grpc.EdgeDenoiserStub(ch).Generate(exact_generate_request(
            ASKED, prompt=PROMPT, seed=seed, num_steps=STEPS, strategy="ecdiff", return_latents=True, **fields),
            timeout=120)
        events = list(call)
        return events, dict(call.initial_metadata())["x-request-id"]


def denoise(services, seed, **fields):
    with grpc.insecure_channel(services.cloud_target) as ch:
        events = list(cloud_pb2_grpc.CloudDenoiserStub(ch).Denoise(cloud_pb2.DenoiseRequest(
            prompt=PROMPT, seed=seed, num_steps=STEPS, strategy="ecdiff", params=strategy_pb2.StrategyParams(**ASKED),
            **fields), timeout=120))
        return events, None


def crowded(services, tiny_pair, third):
    """Two requests through the edge, then `third()` once one waits: the results in that order."""
    engine = services.cloud.servicer.runner.engine
    results = [None, None, None]
    with UNetCalls(tiny_pair[0].pipe.unet, hold_at=1) as held:
        threads = []
        for index, (call, waiting) in enumerate(((lambda: generate(services, 1), 0), (lambda: generate(services, 2), 1),
                                                 (third, 2))):
            threads.append(threading.Thread(target=lambda i=index, c=call: results.__setitem__(i, c())))
            threads[-1].start()
            wait_until(lambda w=waiting: held.held.is_set() and engine.queued == w, f"{waiting} requests wait")
        time.sleep(HOLD_S)
        held.release.set()
        for thread in threads:
            thread.join(120)
    return results


def scrape(port):
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    return {sample.name + str(sorted(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def downgrades(services):
    return scrape(services.cloud.metrics_port).get("ecdiff_downgraded_total[('reason', 'queue')]", 0)


def test_a_request_meeting_a_long_queue_is_served_the_cheaper_point_and_says_so(services, tiny_pair, reference):
    edge = tiny_pair[1]
    before = downgrades(services)
    log, logger = JsonLines(), logging.getLogger("ecdiff")
    level = logger.level
    logger.addHandler(log)
    logger.setLevel(logging.INFO)
    try:
        first, second, (events, rid) = crowded(services, tiny_pair, lambda: generate(services, 3))
    finally:
        logger.removeHandler(log)
        logger.setLevel(level)
    for other, _ in (first, second):
        assert not other[-1].result.summary.downgraded
    summary = events[-1].result.summary
    assert summary.downgraded and summary.served_params == strategy_pb2.StrategyParams(**SERVED, cloud_steps=5)
    assert summary.params == strategy_pb2.StrategyParams(**ASKED, cloud_steps=5)  # what was asked for
    assert "1 requests queued (adaptive_queue 1)" in summary.downgrade_reason and not summary.degraded
    assert (summary.handoff_step, summary.cloud_calls, summary.edge_calls) == (8, 4, 2)
    notices = [e.notice.message for e in events if e.HasField("notice")]
    assert any("cheaper EC-Diff point" in n and "p 2, k 2, s 8" in n for n in notices)
    # The picture is exactly the in-process one of the point served (the engine ran a batch of one).
    expected = reference(ECDiff(**SERVED), PROMPT, 3, STEPS)
    assert torch.equal(from_proto(events[-1].result.latents, max_elements=1 << 16), expected.latents)
    assert events[-1].result.image_png == png_bytes(decode_images(edge.pipe, expected.latents)[0])
    # The cloud counted and logged it under the request's id.
    assert downgrades(services) == before + 1
    lines = [line for line in log.lines if rid in line and '"msg": "downgraded"' in line]
    assert len(lines) == 1 and '"cause": "queue"' in lines[0] and '"switch_step": 8' in lines[0]


def test_a_request_that_forbids_it_runs_its_own_point(services, tiny_pair, reference):
    before = downgrades(services)
    *_, (events, _) = crowded(services, tiny_pair, lambda: generate(services, 4, exact_strategy=True))
    summary = events[-1].result.summary
    assert not summary.downgraded and not summary.HasField("served_params") and summary.downgrade_reason == ""
    assert (summary.handoff_step, summary.cloud_calls) == (9, 5)
    assert torch.equal(from_proto(events[-1].result.latents, max_elements=1 << 16), reference(ECDiff(**ASKED), PROMPT, 4, STEPS).latents)
    assert downgrades(services) == before


@pytest.mark.parametrize("allow", [True, False])
def test_the_handoff_says_what_was_served_and_an_old_client_is_never_downgraded(services, tiny_pair, allow):
    *_, (events, _) = crowded(services, tiny_pair, lambda: denoise(services, 5, allow_downgrade=allow))
    handoff = events[-1].handoff
    asked = strategy_pb2.StrategyParams(**ASKED, cloud_steps=5)
    if allow:
        assert handoff.downgraded and handoff.requested_params == asked
        assert handoff.params == strategy_pb2.StrategyParams(**SERVED, cloud_steps=5)
        assert (handoff.step, handoff.cloud_calls, len(events) - 1) == (8, 4, 8)
        assert handoff.downgrade_reason.startswith("cloud engine under load")
    else:  # unset, as every client before the field sends it
        assert not handoff.downgraded and not handoff.HasField("requested_params") and handoff.params == asked
        assert (handoff.step, handoff.cloud_calls) == (9, 5)


def test_queue_time_is_reported_apart_from_compute(services, tiny_pair):
    """The queued requests waited at least HOLD_S in the engine's queue: reported as queueing, not compute,
    and not counted as transfer by the edge either."""
    first, second, third = crowded(services, tiny_pair, lambda: generate(services, 6, exact_strategy=True))
    for events, _ in (second, third):
        summary = events[-1].result.summary
        assert summary.cloud_queue_seconds >= HOLD_S
        assert summary.cloud_queue_seconds + summary.cloud_compute_seconds + summary.transfer_seconds <= summary.total_seconds
