"""A real `ecdiff serve cloud` child process, killed (or stopped with SIGTERM) mid-stream: the edge
still returns an image, finished from the last latent it received (or edge-only), marked degraded.

Independent of speed: the child's UNet is gated (tests/support/pace.py, installed in the child by
a test-only sitecustomize), so its stream cannot finish before the test has broken it, however
fast the model is; nothing is timed against the model.
"""

import asyncio
import json
import signal
import threading
import time

import grpc
import pytest
import torch
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ecdiff.services.config import EdgeConfig
from ecdiff.services.process import ServiceProcess
from ecdiff.services.server import start_edge
from ecdiff.wire.tensors import from_proto
from ecdiff.strategies import EdgeOnly, HybridSD
from ecdiff.v1 import edge_pb2, edge_pb2_grpc
from support.exact_requests import exact_generate_request
from support.pace import child_env
from support.unet_calls import wait_until

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


@pytest.fixture
def gated_cloud(monkeypatch, tmp_path):
    """start(free_calls, extra args) -> a cloud child whose UNet calls after the first `free_calls`
    wait until `open_gate()`; the child is killed at the end."""
    gate = tmp_path / "gate"
    started = []

    def start(free_calls, args=()):
        for name, value in child_env(f"{free_calls}:{gate}").items():
            monkeypatch.setenv(name, value)
        started.append(ServiceProcess("cloud", ["--model", "tiny", "--torch-threads", "1", *args]))
        return started[-1]

    start.open_gate = gate.touch
    yield start
    gate.touch()
    for cloud in started:
        cloud.kill()


def log_records(cloud, msg):
    return [json.loads(line) for line in cloud.log_text().splitlines()
            if line.startswith("{") and f'"msg": "{msg}"' in line]


@pytest.mark.slow
def test_cloud_process_killed_mid_stream(tiny_pair, reference, loop, gated_cloud):
    cloud = gated_cloud(8)  # steps 0..7 run, step 8 waits: the kill after step 6 always lands mid-way
    edge = None
    try:
        edge = on(loop, start_edge(EdgeConfig(port=0, cloud=cloud.target, checkpoint_every=2), tiny_pair[1]))
        with grpc.insecure_channel(edge.target) as channel:
            call = edge_pb2_grpc.EdgeDenoiserStub(channel).Generate(exact_generate_request(
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
def test_sigterm_stops_the_cloud_within_its_grace_period_and_the_edge_still_answers(tiny_pair, reference, loop,
                                                                                      gated_cloud):
    grace = 0.5
    cloud = gated_cloud(5, ["--grace-seconds", str(grace)])  # steps 0..4 run, step 5 waits for the gate
    edge = None
    try:
        edge = on(loop, start_edge(EdgeConfig(port=0, cloud=cloud.target, checkpoint_every=0), tiny_pair[1]))
        with grpc.insecure_channel(edge.target) as channel, grpc.insecure_channel(cloud.target) as cloud_channel:
            watch = health_pb2_grpc.HealthStub(cloud_channel).Watch(health_pb2.HealthCheckRequest(service=""))
            health = [next(watch).status]
            call = edge_pb2_grpc.EdgeDenoiserStub(channel).Generate(exact_generate_request(
                prompt=PROMPT, seed=5, num_steps=100, strategy="cloud", return_latents=True), timeout=300)
            events, signalled = [], False
            for event in call:
                events.append(event)
                if not signalled and event.HasField("progress") and event.progress.step == 3:
                    cloud.proc.send_signal(signal.SIGTERM)
                    signalled = True
                    health.append(next(watch).status)  # the stop begins: NOT_SERVING
                    # The stream cannot finish while the gate is shut: the grace period must end it.
                    wait_until(lambda: log_records(cloud, "grace period over"), "the cloud's grace period is over")
                    gated_cloud.open_gate()  # the engine finishes the call in flight and stops
            watch.cancel()
        assert health == [health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING]
        # The 100-step stream did not finish in the grace period: it was cancelled when the grace
        # period ended (not earlier: the server's own clock), the server stopped, the process exits 0.
        assert cloud.proc.wait(120) == 0
        (stopping,), (over,), (stopped,) = (log_records(cloud, m) for m in ("stopping", "grace period over", "stopped"))
        assert over["cancelled_rpcs"] >= 1 and over["ts"] - stopping["ts"] >= grace - 0.01, cloud.log_text()
        assert stopped["ts"] >= over["ts"]
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
def test_cloud_stalled_mid_stream_times_out_and_the_edge_finishes(tiny_pair, reference, loop, gated_cloud):
    # SIGSTOP freezes the cloud without closing its socket: only the edge's event timeout can notice.
    timeout_s = 1.0
    cloud = gated_cloud(8)  # steps 0..7 run, step 8 waits: the stall after step 6 always lands mid-way
    edge = None
    try:
        edge = on(loop, start_edge(EdgeConfig(port=0, cloud=cloud.target, checkpoint_every=2,
                                              cloud_event_timeout_s=timeout_s), tiny_pair[1]))
        with grpc.insecure_channel(edge.target) as channel:
            call = edge_pb2_grpc.EdgeDenoiserStub(channel).Generate(exact_generate_request(
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
        # The edge's own event timer ended the stream (it waited its timeout_s since the cloud's
        # last event), long before the RPC's 300 s deadline: not a hang.
        assert s.degraded and f"no event from the cloud for {timeout_s:g} s" in s.degraded_reason
        assert resumed_at - stopped_at < timeout_s + 30
        j = s.handoff_step
        assert j >= 6 and j % 2 == 0 and s.edge_calls == STEPS - j
        expected = reference(HybridSD(j), PROMPT, 5, STEPS)
        assert torch.equal(from_proto(events[-1].result.latents, max_elements=1 << 16), expected.latents)
    finally:
        cloud.proc.send_signal(signal.SIGCONT)
        cloud.kill()
        if edge is not None:
            on(loop, edge.stop(0))
