"""A real `ecdiff serve cloud` child process, killed (or stopped with SIGTERM) mid-stream: the edge
still returns an image, finished from the last latent it received (or edge-only), marked degraded."""

import asyncio
import json
import signal
import threading
import time

import grpc
import pytest
import torch

from ecdiff.services.config import EdgeConfig
from ecdiff.services.process import ServiceProcess
from ecdiff.services.server import start_edge
from ecdiff.wire.tensors import from_proto
from ecdiff.strategies import EdgeOnly, HybridSD
from ecdiff.v1 import edge_pb2, edge_pb2_grpc

STEPS = 40
PROMPT = "a small yellow triangle at the bottom right"


@pytest.fixture
def loop():
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def on(loop, coroutine):
    return asyncio.run_coroutine_threadsafe(coroutine, loop).result(120)


@pytest.mark.slow
def test_cloud_process_killed_mid_stream(tiny_pair, reference, loop):
    cloud = ServiceProcess("cloud", ["--model", "tiny", "--torch-threads", "1"])
    edge = None
    try:
        edge = on(loop, start_edge(EdgeConfig(port=0, cloud=cloud.target, checkpoint_every=2), tiny_pair[1]))
        with grpc.insecure_channel(edge.target) as channel:
            call = edge_pb2_grpc.EdgeDenoiserStub(channel).Generate(edge_pb2.GenerateRequest(
                prompt=PROMPT, seed=5, num_steps=STEPS, strategy="cloud", return_latents=True), timeout=300)
            events = []
            for event in call:
                events.append(event)
                if event.HasField("progress") and event.progress.phase == edge_pb2.PHASE_CLOUD and event.progress.step == 6:
                    cloud.kill()
        result = events[-1].result
        s = result.summary
        assert result.image_png and s.degraded and "broke mid-way" in s.degraded_reason
        notices = [e.notice.message for e in events if e.HasField("notice")]
        assert notices == [s.degraded_reason]
        # Latents arrive after steps 1, 3, 5, 7, ...; the kill came after step 6's event, so the
        # edge resumed at an even step >= 6 and ran every remaining step itself.
        j = s.handoff_step
        assert j >= 6 and j % 2 == 0 and s.edge_calls == STEPS - j
        expected = reference(HybridSD(j), PROMPT, 5, STEPS)
        assert torch.equal(from_proto(result.latents, max_elements=1 << 16), expected.latents)
    finally:
        cloud.kill()
        if edge is not None:
            on(loop, edge.stop(0))


@pytest.mark.slow
def test_sigterm_stops_the_cloud_within_its_grace_period_and_the_edge_still_answers(tiny_pair, reference, loop):
    grace = 0.5
    cloud = ServiceProcess("cloud", ["--model", "tiny", "--torch-threads", "1", "--grace-seconds", str(grace)])
    edge = None
    try:
        edge = on(loop, start_edge(EdgeConfig(port=0, cloud=cloud.target, checkpoint_every=0), tiny_pair[1]))
        with grpc.insecure_channel(edge.target) as channel:
            call = edge_pb2_grpc.EdgeDenoiserStub(channel).Generate(edge_pb2.GenerateRequest(
                prompt=PROMPT, seed=5, num_steps=100, strategy="cloud", return_latents=True), timeout=300)
            events, stopped_at = [], None
            for event in call:
                events.append(event)
                if stopped_at is None and event.HasField("progress") and event.progress.step == 3:
                    cloud.proc.send_signal(signal.SIGTERM)
                    stopped_at = time.time()
        # The 100-step stream cannot finish in the grace period: it is cancelled, the process exits 0.
        # The server stops (stream cancelled, worker joined) within the grace period plus a
        # margin for a loaded machine; the process then exits 0 (interpreter teardown of torch
        # and diffusers alone takes seconds here, so the exit itself is not timed).
        assert cloud.proc.wait(120) == 0
        stopped = [json.loads(line) for line in cloud.log_text().splitlines()
                   if line.startswith("{") and '"msg": "stopped"' in line]
        assert len(stopped) == 1 and stopped[0]["ts"] - stopped_at < grace + 5, cloud.log_text()
        s = events[-1].result.summary
        # No latent was asked for (checkpoint_every=0), so the edge generated edge-only.
        assert s.degraded and "generated edge-only" in s.degraded_reason and s.edge_calls == 100
        expected = reference(EdgeOnly(), PROMPT, 5, 100)
        assert torch.equal(from_proto(events[-1].result.latents, max_elements=1 << 16), expected.latents)
    finally:
        cloud.kill()
        if edge is not None:
            on(loop, edge.stop(0))


@pytest.mark.slow
def test_cloud_stalled_mid_stream_times_out_and_the_edge_finishes(tiny_pair, reference, loop):
    # SIGSTOP freezes the cloud without closing its socket: only the edge's event timeout can notice.
    timeout_s = 1.0
    cloud = ServiceProcess("cloud", ["--model", "tiny", "--torch-threads", "1"])
    edge = None
    try:
        edge = on(loop, start_edge(EdgeConfig(port=0, cloud=cloud.target, checkpoint_every=2,
                                              cloud_event_timeout_s=timeout_s), tiny_pair[1]))
        with grpc.insecure_channel(edge.target) as channel:
            call = edge_pb2_grpc.EdgeDenoiserStub(channel).Generate(edge_pb2.GenerateRequest(
                prompt=PROMPT, seed=5, num_steps=STEPS, strategy="cloud", return_latents=True), timeout=300)
            events, stopped_at, resumed_at = [], None, None
            for event in call:
                events.append(event)
                if stopped_at is None and event.HasField("progress") and event.progress.phase == edge_pb2.PHASE_CLOUD \
                        and event.progress.step == 6:
                    cloud.proc.send_signal(signal.SIGSTOP)
                    stopped_at = time.time()
                if resumed_at is None and event.HasField("notice"):
                    resumed_at = time.time()
        s = events[-1].result.summary
        assert s.degraded and f"no event from the cloud for {timeout_s:g} s" in s.degraded_reason
        assert timeout_s <= resumed_at - stopped_at < timeout_s + 30  # not a hang until the RPC deadline
        j = s.handoff_step
        assert j >= 6 and j % 2 == 0 and s.edge_calls == STEPS - j
        expected = reference(HybridSD(j), PROMPT, 5, STEPS)
        assert torch.equal(from_proto(events[-1].result.latents, max_elements=1 << 16), expected.latents)
    finally:
        cloud.proc.send_signal(signal.SIGCONT)
        cloud.kill()
        if edge is not None:
            on(loop, edge.stop(0))
