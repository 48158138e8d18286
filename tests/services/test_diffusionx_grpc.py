"""DiffusionX sessions over loopback gRPC, driven through the generated stubs only (as an outside
client written against protos/ would), on the tiny random pair; results checked against the
in-process core."""

import sqlite3
import struct

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
import torch

from ecdiff.services.background import BackgroundServices
from ecdiff.services.config import CloudConfig, EdgeConfig
from ecdiff.wire.tensors import from_proto
from ecdiff.diffusionx.refine import RefineConfig
from ecdiff.diffusionx.rounds import RoundSpec, run_round
from ecdiff.diffusionx.store import StoreConfig
from ecdiff.strategies import ECDiff
from ecdiff.v1 import diffusionx_pb2, diffusionx_pb2_grpc, tensor_pb2
from support.edges import extra_edge
from support.tampering_cloud import tampering_cloud
from support.unet_calls import UNetCalls, wait_until

PREVIEW, REFINE = 6, 8
PROMPTS = ["a small red circle at the top left on a white background",
           "a small blue circle at the top left on a white background",
           "a large blue circle at the top left on a white background"]


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    return str(tmp_path_factory.mktemp("sessions") / "edge.sqlite")


def start(tiny_pair, db):
    return BackgroundServices(*tiny_pair, CloudConfig(predictors="none", refine_steps=REFINE),
                              EdgeConfig(predictors="none", preview_steps=PREVIEW, session_db=db))


def stub(services):
    channel = grpc.insecure_channel(services.edge_target, options=[("grpc.max_receive_message_length", 16 << 20)])
    return channel, diffusionx_pb2_grpc.EdgeSessionsStub(channel)


def result_of(stream):
    events = list(stream)
    assert events[-1].HasField("result") and all(e.HasField("progress") for e in events[:-1])
    return events, events[-1].result


def latents(result):
    return from_proto(result.latents, max_elements=10**6)


def test_three_rounds_finalize_and_restart(tiny_pair, db):
    cloud, edge = tiny_pair
    with start(tiny_pair, db) as services:
        channel, client = stub(services)
        events, first = result_of(client.StartSession(
            diffusionx_pb2.StartSessionRequest(prompt=PROMPTS[0], seed=11, return_latents=True)))
        assert len(events) - 1 == PREVIEW and first.summary.strength_source == "txt2img"
        expected = run_round(edge.pipe, edge.guidance, RoundSpec(PROMPTS[0], 11, 0, PREVIEW)).latents
        torch.testing.assert_close(latents(first), expected, rtol=0, atol=0)  # float32 wire: exact
        sid = first.session_id
        events, second = result_of(client.Revise(diffusionx_pb2.ReviseRequest(
            session_id=sid, prompt=PROMPTS[1], strength=0.5, return_latents=True)))
        assert second.summary.round == 1 and second.summary.strength_source == "request"
        assert second.summary.steps_run == len(events) - 1 == int(PREVIEW * 0.5)
        expected = run_round(edge.pipe, edge.guidance, RoundSpec(PROMPTS[1], 11, 1, PREVIEW, 0.5, latents(first))).latents
        torch.testing.assert_close(latents(second), expected, rtol=0, atol=0)
        channel.close()
    # A restarted edge (same store file) continues the session.
    with start(tiny_pair, db) as services:
        channel, client = stub(services)
        _, third = result_of(client.Revise(diffusionx_pb2.ReviseRequest(session_id=sid, prompt=PROMPTS[2],
                                                                         return_latents=True)))
        assert (third.summary.round, third.summary.strength_source, third.summary.strength) == (2, "default", 0.6)
        expected = run_round(edge.pipe, edge.guidance, RoundSpec(PROMPTS[2], 11, 2, PREVIEW, 0.6, latents(second))).latents
        torch.testing.assert_close(latents(third), expected, rtol=0, atol=0)
        events, final = result_of(client.Finalize(diffusionx_pb2.FinalizeRequest(
            session_id=sid, strength=0.5, approximate=True, return_latents=True)))
        s = final.summary
        assert (s.round, s.strength, s.steps_run, s.num_steps) == (3, 0.5, REFINE // 2, REFINE)
        c = RefineConfig()  # the refinement's approximation settings
        strategy = ECDiff(pre_steps=REFINE // 2 + c.pre_steps, k=c.k, alpha=c.alpha, switch_step=REFINE)
        reference = run_round(cloud.pipe, cloud.guidance, RoundSpec(PROMPTS[2], 11, 3, REFINE, 0.5, latents(third)),
                              role="cloud", strategy=strategy)
        torch.testing.assert_close(latents(final), reference.latents, rtol=0, atol=0)
        assert (s.cloud_calls, s.approx_steps) == (reference.cloud_calls, reference.approx_steps) == (3, 1)
        assert s.bytes_to_cloud > 4 * 4 * 8 * 8 and s.cloud_compute_seconds > 0 and final.image_png[:4] == b"\x89PNG"
        channel.close()


@pytest.fixture(scope="module")
def client(tiny_pair):
    with start(tiny_pair, ":memory:") as services:
        channel, c = stub(services)
        yield c
        channel.close()


@pytest.mark.parametrize("call", ["Revise", "Finalize"])
def test_unknown_session_is_not_found(client, call):
    request = (diffusionx_pb2.ReviseRequest(session_id="nope", prompt=PROMPTS[0]) if call == "Revise"
               else diffusionx_pb2.FinalizeRequest(session_id="nope"))
    with pytest.raises(grpc.RpcError) as info:
        list(getattr(client, call)(request))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND and "unknown session 'nope'" in info.value.details()


def test_bad_input_is_invalid_argument(client):
    _, first = result_of(client.StartSession(diffusionx_pb2.StartSessionRequest(prompt=PROMPTS[0], seed=1)))
    bad = [
        (client.StartSession, diffusionx_pb2.StartSessionRequest(prompt="  ", seed=1), "prompt is empty"),
        (client.Revise, diffusionx_pb2.ReviseRequest(session_id=first.session_id, prompt="x", strength=1.5), "strength"),
        (client.Revise, diffusionx_pb2.ReviseRequest(session_id=first.session_id, prompt="x", strength=0.0), "strength"),
        (client.Revise, diffusionx_pb2.ReviseRequest(session_id=first.session_id, prompt=""), "prompt is empty"),
        (client.Finalize, diffusionx_pb2.FinalizeRequest(session_id=first.session_id, strength=-0.1), "strength"),
    ]
    for method, request, words in bad:
        with pytest.raises(grpc.RpcError) as info:
            list(method(request))
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and words in info.value.details(), request


def test_cloud_refuses_a_malformed_latent_and_both_services_report_health(tiny_pair):
    with start(tiny_pair, ":memory:") as services, grpc.insecure_channel(services.cloud_target) as channel, \
            grpc.insecure_channel(services.edge_target) as edge_channel:
        for ch, name in ((channel, "ecdiff.v1.CloudRefiner"), (edge_channel, "ecdiff.v1.EdgeSessions")):
            status = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=name)).status
            assert status == health_pb2.HealthCheckResponse.SERVING, name
        refiner = diffusionx_pb2_grpc.CloudRefinerStub(channel)
        wrong = tensor_pb2.Tensor(dtype=tensor_pb2.DTYPE_FLOAT32, shape=[1, 4, 4, 4], data=bytes(4 * 64))
        with pytest.raises(grpc.RpcError) as info:
            list(refiner.Refine(diffusionx_pb2.RefineRequest(prompt="x", seed=1, round=1, latents=wrong)))
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "shape" in info.value.details()


def test_an_expired_session_is_not_found(tiny_pair, tmp_path):
    """The session is aged in its store file (no waiting for the ttl): Revise and Finalize answer
    NOT_FOUND saying it expired, and the session is gone."""
    db = str(tmp_path / "edge.sqlite")
    with start(tiny_pair, db) as services:
        channel, client = stub(services)
        _, first = result_of(client.StartSession(diffusionx_pb2.StartSessionRequest(prompt=PROMPTS[0], seed=3)))
        ttl = EdgeConfig().session_ttl_s
        with sqlite3.connect(db) as store:
            store.execute("UPDATE sessions SET touched = touched - ? WHERE id = ?", (ttl + 60, first.session_id))
        with pytest.raises(grpc.RpcError) as info:
            list(client.Revise(diffusionx_pb2.ReviseRequest(session_id=first.session_id, prompt=PROMPTS[1])))
        assert info.value.code() == grpc.StatusCode.NOT_FOUND and "expired" in info.value.details()
        with pytest.raises(grpc.RpcError) as info:
            list(client.Finalize(diffusionx_pb2.FinalizeRequest(session_id=first.session_id)))
        assert info.value.code() == grpc.StatusCode.NOT_FOUND and "unknown session" in info.value.details()
        channel.close()


def test_the_round_limit_is_invalid_argument_before_any_model_runs(client, tiny_pair):
    limit = StoreConfig().max_rounds
    _, first = result_of(client.StartSession(diffusionx_pb2.StartSessionRequest(prompt=PROMPTS[0], seed=2)))
    revise = diffusionx_pb2.ReviseRequest(session_id=first.session_id, prompt=PROMPTS[1], strength=1 / PREVIEW)
    for round_index in range(1, limit):  # one step each
        assert result_of(client.Revise(revise))[1].summary.round == round_index
    with UNetCalls(tiny_pair[1].pipe.unet) as calls, pytest.raises(grpc.RpcError) as info:
        list(client.Revise(revise))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert f"already has the maximum of {limit} rounds" in info.value.details() and calls.count == 0


def test_sessions_share_the_edges_slots_and_a_full_edge_is_resource_exhausted(tiny_pair):
    """max_concurrency 1, taken by a StartSession whose model is held: every other round is refused,
    but an unknown session or bad input gets its own answer whatever the load."""
    with BackgroundServices(*tiny_pair, CloudConfig(predictors="none", refine_steps=REFINE),
                            EdgeConfig(predictors="none", preview_steps=PREVIEW, session_db=":memory:",
                                       max_concurrency=1)) as services:
        channel, client = stub(services)
        _, known = result_of(client.StartSession(diffusionx_pb2.StartSessionRequest(prompt=PROMPTS[0], seed=3)))
        with UNetCalls(tiny_pair[1].pipe.unet, hold_at=1) as held:
            first = client.StartSession(diffusionx_pb2.StartSessionRequest(prompt=PROMPTS[0], seed=1))
            wait_until(lambda: services.edge.servicer.admission.active == 1, "the first session holds the slot")
            answers = [
                (client.StartSession, diffusionx_pb2.StartSessionRequest(prompt=PROMPTS[1], seed=2),
                 grpc.StatusCode.RESOURCE_EXHAUSTED, "busy"),
                (client.Revise, diffusionx_pb2.ReviseRequest(session_id=known.session_id, prompt=PROMPTS[1]),
                 grpc.StatusCode.RESOURCE_EXHAUSTED, "busy"),
                (client.Revise, diffusionx_pb2.ReviseRequest(session_id="any", prompt=PROMPTS[1]),
                 grpc.StatusCode.NOT_FOUND, "unknown session 'any'"),
                (client.Revise, diffusionx_pb2.ReviseRequest(session_id=known.session_id, prompt=PROMPTS[1], strength=2.0),
                 grpc.StatusCode.INVALID_ARGUMENT, "strength"),
                (client.StartSession, diffusionx_pb2.StartSessionRequest(prompt=" ", seed=2),
                 grpc.StatusCode.INVALID_ARGUMENT, "prompt is empty"),
                (client.Finalize, diffusionx_pb2.FinalizeRequest(session_id="any"),
                 grpc.StatusCode.NOT_FOUND, "unknown session 'any'"),
            ]
            for method, request, code, words in answers:
                with pytest.raises(grpc.RpcError) as info:
                    list(method(request))
                assert info.value.code() == code and words in info.value.details(), request
            held.release.set()
            assert result_of(first)[1].summary.round == 0
        channel.close()


def _preview_then_finalize(services, edge_model, cloud_target, **finalize):
    """On an edge whose cloud is `cloud_target`: round 0 with its latent, then Finalize's events."""
    with extra_edge(services, edge_model, cloud=cloud_target, predictors="none", preview_steps=PREVIEW,
                    session_db=":memory:") as edge, grpc.insecure_channel(edge.target) as channel:
        client = diffusionx_pb2_grpc.EdgeSessionsStub(channel)
        _, first = result_of(client.StartSession(diffusionx_pb2.StartSessionRequest(
            prompt=PROMPTS[0], seed=5, return_latents=True)))
        return first, list(client.Finalize(diffusionx_pb2.FinalizeRequest(
            session_id=first.session_id, return_latents=True, **finalize), timeout=60))


def test_finalize_with_the_cloud_down_returns_the_last_preview_marked_degraded(tiny_pair, dead_target):
    with start(tiny_pair, ":memory:") as services:
        preview, events = _preview_then_finalize(services, tiny_pair[1], dead_target)
    notices = [e.notice.message for e in events if e.HasField("notice")]
    final = events[-1].result
    s = final.summary
    assert s.degraded and "the cloud could not refine: UNAVAILABLE" in s.degraded_reason
    assert notices == [s.degraded_reason] and s.degraded_reason.endswith("returned the last preview")
    assert (s.round, s.strength_source, s.steps_run, s.cloud_calls) == (1, "preview", 0, 0)
    assert torch.equal(latents(final), latents(preview)) and final.image_png == preview.image_png


def test_finalize_with_the_cloud_down_fails_when_the_request_requires_the_cloud(tiny_pair, dead_target):
    with start(tiny_pair, ":memory:") as services, pytest.raises(grpc.RpcError) as info:
        _preview_then_finalize(services, tiny_pair[1], dead_target, require_cloud=True)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE and "require_cloud is set" in info.value.details()


def test_a_nan_refinement_from_the_cloud_is_not_decoded_the_preview_comes_back_degraded(tiny_pair):
    def tamper(event):
        if event.HasField("refined"):
            event.refined.latents.data = struct.pack("<f", float("nan")) + event.refined.latents.data[4:]
        return event

    with start(tiny_pair, ":memory:") as services, tampering_cloud(services, tamper) as liar:
        preview, events = _preview_then_finalize(services, tiny_pair[1], liar)
    s = events[-1].result.summary
    assert s.degraded and "the cloud sent a malformed latent: refined.latents: contains NaN" in s.degraded_reason
    assert torch.equal(latents(events[-1].result), latents(preview))


@pytest.mark.parametrize("resumed_at, degraded", [([3], False), ([0, 3], False), ([-1], True), ([99], True)])
def test_where_the_refinement_resumed_reaches_the_summary_and_an_impossible_step_is_refused(
        tiny_pair, resumed_at, degraded):
    """A Ray cloud's Refined says where a refinement resumed after a lost replica (tested end to end in
    tests/services/ray); here a cloud claims it, truthfully or not."""
    def tamper(event):
        if event.HasField("refined"):
            event.refined.resumed_at.extend(resumed_at)
        return event

    with start(tiny_pair, ":memory:") as services, tampering_cloud(services, tamper) as liar:
        preview, events = _preview_then_finalize(services, tiny_pair[1], liar)
    s = events[-1].result.summary
    assert s.degraded == degraded
    if degraded:
        assert "refined.resumed_at" in s.degraded_reason and list(s.cloud_resumed_at) == []
        assert torch.equal(latents(events[-1].result), latents(preview))
    else:
        assert list(s.cloud_resumed_at) == resumed_at
