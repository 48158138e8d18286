"""Both services over real loopback sockets, called through the generated stubs only (as an
outside client written against protos/ would), on the tiny random pair."""

import io
import json
import logging
import re
import threading

import grpc
import pytest
import torch
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from PIL import Image

from ecdiff.images import decode_images, png_bytes
from ecdiff.services.background import BackgroundServices
from ecdiff.services.config import CloudConfig, EdgeConfig
from ecdiff.services.logs import JsonFormatter
from ecdiff.wire.tensors import from_proto
from ecdiff.strategies import ECDiff, EdgeOnly, HybridSD
from ecdiff.v1 import cloud_pb2, cloud_pb2_grpc, edge_pb2, edge_pb2_grpc, strategy_pb2, tensor_pb2
from ecdiff.toyworld.palette import ATTRIBUTES
from support.exact_requests import exact_generate_request
from support.strategy_table import strategy_table
from support.edges import extra_edge, toy_world_named
from support.unet_calls import UNetCalls, wait_until

STEPS = 8
EDGE_SERVICE = "ecdiff.v1.EdgeDenoiser"
CLOUD_SERVICE = "ecdiff.v1.CloudDenoiser"
STRATEGIES = strategy_table(ECDiff(2, 2, 0.5, 6), cloud_steps=3)


@pytest.fixture(scope="module")
def services(tiny_pair):
    with BackgroundServices(*tiny_pair, CloudConfig(), EdgeConfig(max_concurrency=2)) as running:
        yield running


@pytest.fixture(scope="module")
def edge_stub(services):
    with grpc.insecure_channel(services.edge_target, options=[("grpc.max_receive_message_length", 16 << 20)]) as channel:
        yield edge_pb2_grpc.EdgeDenoiserStub(channel)


@pytest.fixture(scope="module")
def cloud_stub(services):
    with grpc.insecure_channel(services.cloud_target) as channel:
        yield cloud_pb2_grpc.CloudDenoiserStub(channel)


def request(strategy="ecdiff", steps=STEPS, prompt="a small red circle at the top left", seed=7, **fields):
    params = fields.pop("params", STRATEGIES[strategy][1] if strategy in STRATEGIES else {})
    return exact_generate_request(prompt=prompt, seed=seed, num_steps=steps, strategy=strategy, params=params,
                                  **fields)


def collect(stream):
    events = list(stream)
    assert events[-1].HasField("result"), "the last event must be the result"
    return events, events[-1].result


def wait_idle(services):
    """The cloud's engine runs and queues nothing, and the edge has released every slot (a slot is
    released only when its loop stopped)."""
    engine = services.cloud.servicer.runner.engine
    wait_until(lambda: engine.running == 0 and engine.queued == 0 and services.edge.servicer.admission.active == 0,
               "the servers hold no request slot")


def wait_cloud_rpcs_ended(services):
    """The cloud's handlers have all ended; a cancelled one has cancelled its engine request first."""
    wait_until(lambda: not services.cloud.interceptor.in_flight, "the cloud's RPCs ended")


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_every_strategy_equals_the_in_process_core(edge_stub, tiny_pair, reference, name):
    strategy, _ = STRATEGIES[name]
    events, result = collect(edge_stub.Generate(request(name, return_latents=True)))
    expected = reference(strategy, "a small red circle at the top left", 7, STEPS)
    assert torch.equal(from_proto(result.latents, max_elements=1 << 16), expected.latents)
    assert result.image_png == png_bytes(decode_images(tiny_pair[1].pipe, expected.latents)[0])
    assert Image.open(io.BytesIO(result.image_png)).size == (64, 64)
    s = result.summary
    assert (s.cloud_calls, s.approx_steps, s.edge_calls) == (expected.cloud_calls, expected.approx_steps, expected.edge_calls)
    assert s.handoff_step == expected.handoff_step and not s.degraded
    phases = [(e.progress.phase, e.progress.step) for e in events if e.HasField("progress")]
    assert phases == ([(edge_pb2.PHASE_CLOUD, i) for i in range(expected.handoff_step)]
                      + [(edge_pb2.PHASE_EDGE, i) for i in range(expected.handoff_step, STEPS)]
                      + [(edge_pb2.PHASE_DECODE, -1)])
    if name == "edge":
        assert s.bytes_from_cloud == 0 and s.cloud_compute_seconds == 0
    else:
        assert s.bytes_from_cloud > 4 * 8 * 8 * 4 and s.bytes_to_cloud > 0 and s.cloud_compute_seconds > 0
    assert s.total_seconds >= s.edge_compute_seconds + s.decode_seconds


@pytest.mark.parametrize("rule", ["paper", "slope", "lsq", "quadratic"])
def test_every_extrapolation_rule_equals_the_in_process_core(edge_stub, cloud_stub, reference, rule):
    # p 3, k 2, s 7 of 8 steps: real calls 0, 1, 2, 5, approximated 3, 4, 6; the rule's fits at 2 and 5
    # (the quadratic's second one with a curvature), alpha 0 for the paper's rule.
    params = dict(pre_steps=3, k=2, alpha=0.0, switch_step=7, rule=rule, beta=0.6)
    strategy = ECDiff(3, 2, 0.0, 7, rule=rule, beta=0.6)
    expected = reference(strategy, "a small red circle at the top left", 7, STEPS)
    _, result = collect(edge_stub.Generate(request(params=params, return_latents=True,
                                                   transfer_dtype=tensor_pb2.DTYPE_FLOAT32)))
    assert torch.equal(from_proto(result.latents, max_elements=1 << 16), expected.latents)
    assert (result.summary.cloud_calls, result.summary.approx_steps) == (4, 3)
    handoff = list(cloud_stub.Denoise(cloud_pb2.DenoiseRequest(
        prompt="a small red circle at the top left", seed=7, num_steps=STEPS, strategy="ecdiff",
        params=strategy_pb2.StrategyParams(**params))))[-1].handoff
    assert torch.equal(from_proto(handoff.latents, max_elements=1 << 16), expected.handoff)


def test_edge_previews_are_small_pngs(edge_stub):
    events, _ = collect(edge_stub.Generate(request("hybrid", preview_every=2)))
    previews = [e.progress for e in events if e.HasField("progress") and e.progress.preview_png]
    # edge steps 3..7: previews after the 2nd and 4th edge step (steps 4 and 6)
    assert [p.step for p in previews] == [4, 6] and all(p.phase == edge_pb2.PHASE_EDGE for p in previews)
    assert Image.open(io.BytesIO(previews[0].preview_png)).size == (64, 64)


@pytest.mark.parametrize("dtype, unit_roundoff", [(tensor_pb2.DTYPE_FLOAT16, 2**-11), (tensor_pb2.DTYPE_BFLOAT16, 2**-8)])
def test_lossy_transfer_stays_within_tolerance_and_halves_the_latent_bytes(edge_stub, reference, dtype, unit_roundoff):
    _, result = collect(edge_stub.Generate(request("hybrid", transfer_dtype=dtype, return_latents=True)))
    _, lossless = collect(edge_stub.Generate(request("hybrid", transfer_dtype=tensor_pb2.DTYPE_FLOAT32)))
    got = from_proto(result.latents, max_elements=1 << 16)
    expected = reference(HybridSD(3), "a small red circle at the top left", 7, STEPS).latents
    # The handoff is rounded to 16 bits (relative error <= the unit roundoff per element); the
    # remaining 5 DDIM steps are contractive in the latent, so the end error stays at that order.
    # 10x headroom.
    rel = float((got - expected).norm() / expected.norm())
    assert 0 < rel < 10 * unit_roundoff
    # Smaller on the wire: the handoff's 1x4x8x8 latent in 2 bytes an element instead of 4.
    s, s32 = result.summary, lossless.summary
    assert s.bytes_to_cloud == s32.bytes_to_cloud and s32.bytes_from_cloud - s.bytes_from_cloud >= 4 * 8 * 8 * 2


def test_int8_transfer_quarters_the_latent_bytes_and_stays_close_to_the_exact_result(edge_stub, reference):
    _, result = collect(edge_stub.Generate(request("hybrid", transfer_encoding=tensor_pb2.ENCODING_INT8_PER_CHANNEL,
                                                   return_latents=True)))
    _, lossless = collect(edge_stub.Generate(request("hybrid", transfer_encoding=tensor_pb2.ENCODING_RAW)))
    got = from_proto(result.latents, max_elements=1 << 16)
    expected = reference(HybridSD(3), "a small red circle at the top left", 7, STEPS).latents
    # Each handoff value is within half a step (its channel's absmax / 254) of the exact one; the 5
    # remaining DDIM steps keep the error at that order: 0.6 % of the norm measured here, 5x headroom.
    rel = float((got - expected).norm() / expected.norm())
    assert 0 < rel < 0.03, rel
    # The 1x4x8x8 handoff: 256 bytes of codes and 4 scales instead of 1024 bytes of float32.
    assert lossless.summary.bytes_from_cloud - result.summary.bytes_from_cloud >= 1024 - 256 - 4 * 4 - 8


def test_the_edges_default_transfer_is_int8(edge_stub):
    unset = request("hybrid")
    unset.ClearField("transfer_encoding")
    _, default = collect(edge_stub.Generate(unset))
    _, int8 = collect(edge_stub.Generate(request("hybrid", transfer_encoding=tensor_pb2.ENCODING_INT8_PER_CHANNEL)))
    assert default.summary.bytes_from_cloud == int8.summary.bytes_from_cloud
    assert default.image_png == int8.image_png


def test_int8_carries_the_step_latents_and_the_handoff_which_an_edge_accepts(cloud_stub, edge_stub):
    events = denoise(cloud_stub, latents_every=1, latents_encoding=tensor_pb2.ENCODING_INT8_PER_CHANNEL)
    handoff, checkpoints = events[-1].handoff, [e.step.latents for e in events[:-1] if e.step.HasField("latents")]
    assert len(checkpoints) == handoff.step - 1  # hybrid: each cloud step's latent; the last one's is the handoff
    for latents in (*checkpoints, handoff.latents):
        assert latents.encoding == tensor_pb2.ENCODING_INT8_PER_CHANNEL and len(latents.data) == 4 * 8 * 8
        assert len(latents.scales) == 4
    _, result = collect(edge_stub.ContinueFromHandoff(edge_pb2.ContinueRequest(handoff=handoff)))
    assert result.image_png


def denoise(cloud_stub, strategy="hybrid", **fields):
    params = strategy_pb2.StrategyParams(**STRATEGIES[strategy][1])
    return list(cloud_stub.Denoise(cloud_pb2.DenoiseRequest(
        prompt="a blue square", seed=3, num_steps=STEPS, strategy=strategy, params=params, **fields)))


def test_continue_from_a_handoff_produced_elsewhere(cloud_stub, edge_stub, reference):
    events = denoise(cloud_stub, "ecdiff", latents_every=2)
    handoff = events[-1].handoff
    assert all(e.HasField("step") for e in events[:-1]) and events[-1].HasField("handoff")
    assert [e.step.index for e in events[:-1] if e.step.HasField("latents")] == [1, 3]
    assert handoff.step == 6 and len(handoff.timesteps) == STEPS and handoff.text_encoder.sha256
    _, result = collect(edge_stub.ContinueFromHandoff(edge_pb2.ContinueRequest(handoff=handoff, return_latents=True)))
    expected = reference(ECDiff(2, 2, 0.5, 6), "a blue square", 3, STEPS)
    assert torch.equal(from_proto(handoff.latents, max_elements=1 << 16), expected.handoff)
    assert torch.equal(from_proto(result.latents, max_elements=1 << 16), expected.latents)


def tampered(handoff, **changes):
    copy = cloud_pb2.Handoff()
    copy.CopyFrom(handoff)
    for path, value in changes.items():
        target = copy
        *parents, leaf = path.split("__")
        for parent in parents:
            target = getattr(target, parent)
        if isinstance(value, list):
            del getattr(target, leaf)[:]
            getattr(target, leaf).extend(value)
        else:
            setattr(target, leaf, value)
    return copy


@pytest.mark.parametrize("changes, code, fragment", [
    ({"scheduler_config_sha256": "0" * 64}, grpc.StatusCode.FAILED_PRECONDITION, "scheduler mismatch"),
    ({"scheduler_class": "EulerDiscreteScheduler"}, grpc.StatusCode.FAILED_PRECONDITION, "scheduler mismatch"),
    ({"text_encoder__sha256": "f" * 64}, grpc.StatusCode.FAILED_PRECONDITION, "text encoder mismatch"),
    ({"latents__shape": [1, 4, 16, 4]}, grpc.StatusCode.FAILED_PRECONDITION, "latent shape mismatch"),
    ({"added_conditioning": "text_time"}, grpc.StatusCode.FAILED_PRECONDITION, "added conditioning mismatch"),
    ({"vae_sha256": "a" * 64}, grpc.StatusCode.FAILED_PRECONDITION, "VAE mismatch"),
    ({"timesteps": list(range(STEPS))}, grpc.StatusCode.FAILED_PRECONDITION, "timesteps mismatch"),
    ({"latents__data": b"\0" * 7}, grpc.StatusCode.INVALID_ARGUMENT, "bytes do not match"),
    ({"step": 2}, grpc.StatusCode.INVALID_ARGUMENT, "not the strategy's switch step"),
    ({"strategy": "turbo"}, grpc.StatusCode.INVALID_ARGUMENT, "unknown strategy"),
    ({"prompt": ""}, grpc.StatusCode.INVALID_ARGUMENT, "prompt is empty"),
])
def test_incompatible_or_malformed_handoffs_are_refused(cloud_stub, edge_stub, changes, code, fragment):
    handoff = denoise(cloud_stub)[-1].handoff
    with pytest.raises(grpc.RpcError) as info:
        list(edge_stub.ContinueFromHandoff(edge_pb2.ContinueRequest(handoff=tampered(handoff, **changes))))
    assert info.value.code() == code and fragment in info.value.details()


BAD_INPUTS = [
    (dict(prompt=""), "prompt is empty"),
    (dict(prompt="   "), "prompt is empty"),
    (dict(prompt="x" * 1001), "prompt has 1001 characters; the limit is 1000"),
    (dict(steps=-1), "num_steps must be in [1, 500]"),
    (dict(steps=501), "num_steps must be in [1, 500]"),
    (dict(strategy="turbo", params={}), "unknown strategy 'turbo'"),
    (dict(params=dict(pre_steps=1)), "pre_steps (p) must be an integer >= 2"),
    (dict(params=dict(k=-1)), "k must be an integer >= 0"),
    (dict(params=dict(alpha=-0.1)), "alpha must be in [0, 1]"),
    (dict(params=dict(alpha=1.5)), "alpha must be in [0, 1]"),
    (dict(params=dict(rule="cubic")), "unknown extrapolation rule 'cubic'; expected one of paper, slope, lsq, quadratic"),
    (dict(params=dict(rule="slope", beta=1.5)), "beta must be in [0, 1]"),
    (dict(params=dict(rule="lsq", beta=float("inf"))), "beta must be a finite number"),
    (dict(params=dict(alpha=float("nan"))), "alpha must be a finite number"),
    (dict(params=dict(switch_step=STEPS + 1)), "must be <= num_steps"),
    (dict(params=dict(pre_steps=5, switch_step=3)), "must be >= pre_steps"),
    (dict(strategy="hybrid", params=dict(cloud_steps=STEPS + 1)), "cloud_steps (9) must be <= num_steps (8)"),
    (dict(transfer_dtype=42), "unknown dtype 42"),
    (dict(transfer_encoding=5), "unknown encoding 5; this peer knows ENCODING_RAW (0) and ENCODING_INT8_PER_CHANNEL (1)"),
]


@pytest.mark.parametrize("fields, fragment", BAD_INPUTS)
def test_bad_input_is_invalid_argument_before_any_model_runs(edge_stub, tiny_pair, fields, fragment):
    with UNetCalls(tiny_pair[0].pipe.unet) as cloud_calls, UNetCalls(tiny_pair[1].pipe.unet) as edge_calls:
        with pytest.raises(grpc.RpcError) as info:
            list(edge_stub.Generate(request(**fields), timeout=30))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, info.value.details()
    assert fragment in info.value.details()
    assert cloud_calls.count == edge_calls.count == 0  # validation happens before any model runs


@pytest.mark.parametrize("fields, fragment", [
    (dict(prompt="", num_steps=STEPS, strategy="cloud"), "prompt is empty"),
    (dict(prompt="x", num_steps=0, strategy="cloud"), "num_steps must be in"),
    (dict(prompt="x", num_steps=STEPS, strategy="cloud", latents_dtype=7), "unknown dtype 7"),
    (dict(prompt="x", num_steps=STEPS, strategy="cloud", latents_encoding=2), "unknown encoding 2"),
])
def test_cloud_refuses_bad_input(cloud_stub, fields, fragment):
    with pytest.raises(grpc.RpcError) as info:
        list(cloud_stub.Denoise(cloud_pb2.DenoiseRequest(**fields)))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and fragment in info.value.details()


def test_oversized_message_is_resource_exhausted_and_the_server_keeps_serving(edge_stub):
    with pytest.raises(grpc.RpcError) as info:
        list(edge_stub.Generate(request(prompt="x" * (2 << 20)), timeout=30))
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    _, result = collect(edge_stub.Generate(request("edge", steps=2)))
    assert result.image_png


@pytest.mark.parametrize("method", ["/ecdiff.v1.EdgeDenoiser/Generate", "/ecdiff.v1.CloudDenoiser/GetModelInfo"])
def test_bytes_that_are_not_a_request_are_invalid_argument_not_unknown(services, method):
    """Found by the fuzzer (test_fuzz.py): gRPC's own deserializer ended such calls as UNKNOWN."""
    target = services.edge_target if "Edge" in method else services.cloud_target
    with grpc.insecure_channel(target) as channel:
        call = (channel.unary_unary if method.endswith("GetModelInfo") else channel.unary_stream)(method)
        with pytest.raises(grpc.RpcError) as info:
            result = call(b"\xff\xff\xff", timeout=30)
            list(result) if not method.endswith("GetModelInfo") else result
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details().startswith("malformed request (3 bytes): Error parsing message")


def test_a_refusal_echoing_a_huge_value_reaches_the_client_cut(edge_stub):
    """Found by the fuzzer: an error naming a 100 KB strategy made trailers the client drops
    (RESOURCE_EXHAUSTED "Stream removed") instead of the INVALID_ARGUMENT."""
    with pytest.raises(grpc.RpcError) as info:
        list(edge_stub.Generate(request(strategy="x" * 100_000, params={}), timeout=30))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details().startswith("unknown strategy 'xxx") and "bytes, cut)" in info.value.details()


def test_health_and_reflection(services):
    for target, service in ((services.edge_target, EDGE_SERVICE), (services.cloud_target, CLOUD_SERVICE)):
        with grpc.insecure_channel(target) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            for name in ("", service):
                assert health.Check(health_pb2.HealthCheckRequest(service=name)).status == health_pb2.HealthCheckResponse.SERVING
            with pytest.raises(grpc.RpcError) as info:
                health.Check(health_pb2.HealthCheckRequest(service="no.such.Service"))
            assert info.value.code() == grpc.StatusCode.NOT_FOUND
            reply = next(reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
                iter([reflection_pb2.ServerReflectionRequest(list_services="")])))
            names = {s.name for s in reply.list_services_response.service}
            assert {service, "grpc.health.v1.Health"} <= names


def test_model_info(cloud_stub, tiny_pair):
    info = cloud_stub.GetModelInfo(cloud_pb2.ModelInfoRequest())
    assert list(info.latent_shape) == [1, 4, 8, 8] and info.scheduler_class == "DDIMScheduler"
    assert info.random_weights and info.model_name == "tiny-cloud" and len(info.scheduler_config_sha256) == 64


def test_request_id_comes_back_as_metadata(edge_stub):
    call = edge_stub.Generate(request("edge", steps=1), metadata=(("x-request-id", "test-123"),))
    list(call)
    assert ("x-request-id", "test-123") in tuple(call.initial_metadata())


@pytest.fixture
def json_logs():
    """() -> the services' log records so far, as the JSON lines `ecdiff serve` writes."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("ecdiff")
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    logger.removeHandler(handler)
    logger.setLevel(previous)


def test_a_missing_request_id_is_generated_returned_forwarded_to_the_cloud_and_logged(edge_stub, json_logs):
    call = edge_stub.Generate(request("hybrid"))  # no x-request-id
    list(call)
    rid = dict(call.initial_metadata())["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{16}", rid)
    generate, denoise = "/ecdiff.v1.EdgeDenoiser/Generate", "/ecdiff.v1.CloudDenoiser/Denoise"

    def ended():
        return {r["method"]: r["status"] for r in json_logs() if r["request_id"] == rid and r["msg"] == "rpc end"}

    wait_until(lambda: len(ended()) == 2, "both services logged the RPC's end")
    assert ended() == {generate: "OK", denoise: "OK"}  # the cloud served it under the edge's id
    mine = [r for r in json_logs() if r["request_id"] == rid]
    assert {r["method"] for r in mine if r["msg"] == "rpc start"} == {generate, denoise}
    assert any(r["msg"] == "denoise" and r["strategy"] == "hybrid" for r in mine)  # the cloud servicer's own line
    again = edge_stub.Generate(request("edge", steps=1))
    list(again)
    assert dict(again.initial_metadata())["x-request-id"] != rid  # one id per request


def _stream_until(call, n_progress):
    seen = 0
    for event in call:
        seen += event.HasField("progress")
        if seen >= n_progress:
            return


def test_cancel_stops_the_denoising_loop_within_one_step(services, edge_stub, tiny_pair):
    """Independent of speed: the cloud's 4th UNet call (step 3, one batched CFG call per step) is
    held until the client's cancel has reached the cloud; the call in flight finishes, no other starts."""
    with UNetCalls(tiny_pair[0].pipe.unet, hold_at=4) as calls:
        call = edge_stub.Generate(request("cloud", steps=400))
        _stream_until(call, 3)
        assert calls.held.wait(60)
        call.cancel()
        wait_cloud_rpcs_ended(services)
        calls.release.set()
        wait_idle(services)
    assert calls.count == 4


def test_deadline_is_honoured_and_stops_the_loop(tiny_pair):
    """The model is held from its 3rd call until the deadline has passed, whatever its speed; a
    fresh cloud (no measured pace yet) so the engine cannot refuse the deadline as unmeetable."""
    with BackgroundServices(*tiny_pair) as services, \
            grpc.insecure_channel(services.edge_target) as channel, \
            UNetCalls(tiny_pair[0].pipe.unet, hold_at=3) as calls:
        with pytest.raises(grpc.RpcError) as info:
            list(edge_pb2_grpc.EdgeDenoiserStub(channel).Generate(request("cloud", steps=400), timeout=1.0))
        assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        wait_cloud_rpcs_ended(services)
        calls.release.set()
        wait_idle(services)
        engine = services.cloud.servicer.runner.engine
        assert engine.stats.finished["cancelled"] + engine.stats.finished["deadline"] == 1
    assert calls.count <= 3  # the held call was the last: the loop stopped


def test_concurrency_is_bounded_with_resource_exhausted(services, edge_stub, tiny_pair):
    """Both slots are held by requests whose cloud phase cannot move (the cloud's model is held)."""
    with UNetCalls(tiny_pair[0].pipe.unet, hold_at=1) as held:
        calls = [edge_stub.Generate(request("cloud", steps=400)) for _ in range(2)]
        try:
            wait_until(lambda: services.edge.servicer.admission.active == 2, "both requests hold a slot")
            with pytest.raises(grpc.RpcError) as info:
                list(edge_stub.Generate(request("edge", steps=2), timeout=30))
            assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "busy" in info.value.details()
        finally:
            for call in calls:
                call.cancel()
            wait_cloud_rpcs_ended(services)
            held.release.set()
    wait_idle(services)
    _, result = collect(edge_stub.Generate(request("edge", steps=2)))
    assert result.image_png


def test_cloud_unreachable_gives_edge_only_or_unavailable(services, tiny_pair, reference, dead_target):
    with extra_edge(services, tiny_pair[1], cloud=dead_target) as edge:
        with grpc.insecure_channel(edge.target) as channel:
            stub = edge_pb2_grpc.EdgeDenoiserStub(channel)
            events, result = collect(stub.Generate(request("ecdiff", return_latents=True)))
            notices = [e.notice.message for e in events if e.HasField("notice")]
            assert len(notices) == 1 and "unreachable" in notices[0] and "edge-only" in notices[0]
            assert result.summary.degraded and result.summary.edge_calls == STEPS
            expected = reference(EdgeOnly(), "a small red circle at the top left", 7, STEPS)
            assert torch.equal(from_proto(result.latents, max_elements=1 << 16), expected.latents)
            with pytest.raises(grpc.RpcError) as info:
                list(stub.Generate(request("ecdiff", require_cloud=True)))
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE and "require_cloud" in info.value.details()


def test_shaped_link_transfer_is_measured(services, tiny_pair, reference):
    mbps, latency_ms = 0.2, 40.0
    with extra_edge(services, tiny_pair[1], bandwidth_mbps=mbps, latency_ms=latency_ms, checkpoint_every=0) as edge, \
            grpc.insecure_channel(edge.target) as channel:
        _, result = collect(edge_pb2_grpc.EdgeDenoiserStub(channel).Generate(request("hybrid", return_latents=True)))
    s = result.summary
    # At least: the request up (latency + serialisation) and the handoff down (its
    # serialisation + latency); the step events before it only add to this.
    handoff_bytes = 4 * 8 * 8 * 4
    lower = 2 * latency_ms / 1000 + (s.bytes_to_cloud + handoff_bytes) * 8 / (mbps * 1e6)
    assert s.transfer_seconds >= lower * 0.99, (s.transfer_seconds, lower)
    expected = reference(HybridSD(3), "a small red circle at the top left", 7, STEPS)
    assert torch.equal(from_proto(result.latents, max_elements=1 << 16), expected.latents)


def test_graceful_stop_cancels_in_flight_streams_within_the_grace_period(tiny_pair):
    """Independent of speed: the cloud's model is held from its 3rd call, so the stream cannot end
    by itself; the grace period ends it. Health watchers see NOT_SERVING once the stop begins."""
    running = BackgroundServices(*tiny_pair)
    errors, health_seen = [], []
    with grpc.insecure_channel(running.edge_target) as channel, \
            UNetCalls(tiny_pair[0].pipe.unet, hold_at=3) as calls:
        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=EDGE_SERVICE))
        health_seen.append(next(watch).status)
        call = edge_pb2_grpc.EdgeDenoiserStub(channel).Generate(request("cloud", steps=400))
        _stream_until(call, 2)
        assert calls.held.wait(60)

        def drain():
            try:
                list(call)
            except grpc.RpcError as exc:
                errors.append(exc.code())

        reader = threading.Thread(target=drain)
        reader.start()
        stopper = threading.Thread(target=running.stop, kwargs={"grace": 0.5})
        stopper.start()
        health_seen.append(next(watch).status)
        reader.join(60)
        ended_while_held = not calls.release.is_set() and not reader.is_alive()
        calls.release.set()  # the cloud's engine can now finish the call in flight and stop
        stopper.join(60)
        watch.cancel()
    assert ended_while_held and not stopper.is_alive()
    assert errors and errors[0] in (grpc.StatusCode.CANCELLED, grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ABORTED)
    assert health_seen == [health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING]


def notices_of(stub, prompt):
    events, _ = collect(stub.Generate(request("edge", steps=2, prompt=prompt)))
    return [e.notice.message for e in events if e.HasField("notice")]


def test_a_prompt_the_toy_world_cannot_draw_gets_a_notice_naming_what_it_can(services, edge_stub, tiny_pair):
    with extra_edge(services, toy_world_named(tiny_pair[1])) as edge, grpc.insecure_channel(edge.target) as channel:
        stub = edge_pb2_grpc.EdgeDenoiserStub(channel)
        (notice,) = notices_of(stub, "a purple elephant playing the violin")
        assert "cannot draw this prompt" in notice and "names no background" in notice
        for attribute, words in ATTRIBUTES.items():  # 3 backgrounds, 8 colours, 4 shapes, 2 sizes, 9 positions
            assert f"{len(words)} {attribute}s: {', '.join(words)}" in notice
        assert notices_of(stub, "a large green diamond in the center on a black background") == []
    assert notices_of(edge_stub, "a purple elephant playing the violin") == []  # tiny models: no toy world
