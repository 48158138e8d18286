"""Every path that accepts a latent refuses NaN, infinite and out-of-range values, or treats them
as a broken cloud when the cloud sent them; never an image made of garbage. Over loopback, on the
tiny random pair; a lying cloud (support/tampering_cloud.py) stands between edge and cloud."""

import io
import struct

import grpc
import pytest
import torch
from PIL import Image

from ecdiff.services.background import BackgroundServices
from ecdiff.services.config import MAX_LATENT_ABS, CloudConfig, EdgeConfig
from ecdiff.strategies import EdgeOnly
from ecdiff.v1 import cloud_pb2, cloud_pb2_grpc, diffusionx_pb2, diffusionx_pb2_grpc, edge_pb2, edge_pb2_grpc, tensor_pb2
from ecdiff.wire.tensors import from_proto
from support.edges import extra_edge
from support.fuzz_messages import latent_tensor
from support.tampering_cloud import tampering_cloud

STEPS, PROMPT, SEED = 8, "a small red circle at the top left", 7
ECDIFF = dict(pre_steps=2, k=2, alpha=0.5, switch_step=6)


@pytest.fixture(scope="module")
def services(tiny_pair):
    with BackgroundServices(*tiny_pair, CloudConfig(predictors="none", refine_steps=6),
                            EdgeConfig(predictors="none", preview_steps=4, session_db=":memory:")) as running:
        yield running


@pytest.fixture(scope="module")
def handoff(services):
    with grpc.insecure_channel(services.cloud_target) as channel:
        events = list(cloud_pb2_grpc.CloudDenoiserStub(channel).Denoise(cloud_pb2.DenoiseRequest(
            prompt=PROMPT, seed=SEED, num_steps=STEPS, strategy="ecdiff", params=ECDIFF)))
    return events[-1].handoff


def poisoned(tensor: tensor_pb2.Tensor, value: float, index: int = 5) -> tensor_pb2.Tensor:
    """A float32 copy of `tensor` with one value replaced."""
    values = from_proto(tensor, max_elements=1 << 20).to(torch.float32).reshape(-1).clone()
    values[index] = value
    return latent_tensor(tuple(tensor.shape), values=values.reshape(tuple(tensor.shape)).numpy())


def refused(call, request, fragment: str) -> None:
    with pytest.raises(grpc.RpcError) as info:
        list(call(request, timeout=60))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and fragment in info.value.details(), \
        info.value.details()


def result_of(stream):
    events = list(stream)
    assert events[-1].HasField("result")
    return events, events[-1].result


@pytest.mark.parametrize("value, fragment", [
    (float("nan"), "NaN or infinite"), (float("inf"), "NaN or infinite"), (-float("inf"), "NaN or infinite"),
    (10 * MAX_LATENT_ABS, "beyond the limit"), (3.4e38, "beyond the limit"),
])
def test_a_handoff_with_a_bad_value_is_invalid_argument(services, handoff, value, fragment):
    bad = cloud_pb2.Handoff()
    bad.CopyFrom(handoff)
    bad.latents.CopyFrom(poisoned(handoff.latents, value))
    with grpc.insecure_channel(services.edge_target) as channel:
        refused(edge_pb2_grpc.EdgeDenoiserStub(channel).ContinueFromHandoff, edge_pb2.ContinueRequest(handoff=bad),
                fragment)


def test_a_half_precision_infinity_is_refused(services, handoff):
    bad = cloud_pb2.Handoff()
    bad.CopyFrom(handoff)
    bad.latents.dtype = tensor_pb2.DTYPE_FLOAT16
    bad.latents.data = struct.pack("<e", float("inf")) + b"\0\0" * (len(handoff.latents.data) // 4 - 1)
    with grpc.insecure_channel(services.edge_target) as channel:
        refused(edge_pb2_grpc.EdgeDenoiserStub(channel).ContinueFromHandoff, edge_pb2.ContinueRequest(handoff=bad),
                "NaN or infinite")


def test_a_handoff_that_drives_the_edge_to_nan_is_invalid_argument_not_an_image(services, handoff):
    """A finite latent with an absurd guidance scale overflows in the edge's steps: refused, no PNG."""
    bad = cloud_pb2.Handoff()
    bad.CopyFrom(handoff)
    bad.guidance_scale = 1e300
    with grpc.insecure_channel(services.edge_target) as channel:
        refused(edge_pb2_grpc.EdgeDenoiserStub(channel).ContinueFromHandoff, edge_pb2.ContinueRequest(handoff=bad),
                "ended with NaN or infinite latents")


@pytest.mark.parametrize("value, fragment", [(float("nan"), "NaN or infinite"), (1e30, "beyond the limit")])
def test_refine_refuses_a_bad_preview_latent(services, value, fragment):
    with grpc.insecure_channel(services.cloud_target) as channel:
        refused(diffusionx_pb2_grpc.CloudRefinerStub(channel).Refine, diffusionx_pb2.RefineRequest(
            prompt=PROMPT, seed=1, round=1, latents=poisoned(latent_tensor((1, 4, 8, 8)), value)), fragment)


def generate_through(services, edge_model, tamper, **fields):
    with tampering_cloud(services, tamper) as liar, extra_edge(services, edge_model, cloud=liar) as edge, \
            grpc.insecure_channel(edge.target) as channel:
        request = edge_pb2.GenerateRequest(prompt=PROMPT, seed=SEED, num_steps=STEPS, strategy="ecdiff",
                                           params=ECDIFF, return_latents=True, **fields)
        return result_of(edge_pb2_grpc.EdgeDenoiserStub(channel).Generate(request, timeout=60))


def only_handoff(change):
    def tamper(event):
        if event.HasField("handoff"):
            change(event.handoff)
        return event

    return tamper


def assert_sound(result) -> None:
    assert bool(from_proto(result.latents, max_elements=1 << 20).isfinite().all())
    Image.open(io.BytesIO(result.image_png)).verify()


def test_a_nan_handoff_from_the_cloud_is_a_broken_cloud_finished_from_the_last_checkpoint(services, tiny_pair):
    events, result = generate_through(
        services, tiny_pair[1], only_handoff(lambda h: h.latents.CopyFrom(poisoned(h.latents, float("nan")))),
        checkpoint_every=2)
    s = result.summary
    assert s.degraded and "malformed event" in s.degraded_reason and "NaN" in s.degraded_reason
    assert "finished from the last latent it received" in s.degraded_reason
    assert any(e.HasField("notice") for e in events)
    assert_sound(result)


def test_a_nan_checkpoint_from_the_cloud_leaves_no_usable_latent_so_the_edge_generates_alone(
        services, tiny_pair, reference):
    def tamper(event):
        if event.HasField("step") and event.step.HasField("latents"):
            event.step.latents.CopyFrom(poisoned(event.step.latents, float("inf")))
        return event

    _, result = generate_through(services, tiny_pair[1], tamper, checkpoint_every=2)
    assert result.summary.degraded and "sent no usable latent" in result.summary.degraded_reason
    expected = reference(EdgeOnly(), PROMPT, SEED, STEPS).latents
    assert torch.equal(from_proto(result.latents, max_elements=1 << 20), expected)


def test_a_cloud_handoff_that_drives_the_edge_to_nan_is_retried_edge_only(services, tiny_pair, reference):
    _, result = generate_through(services, tiny_pair[1], only_handoff(lambda h: setattr(h, "guidance_scale", 1e300)),
                                 checkpoint_every=0)
    s = result.summary
    assert s.degraded and "ended with NaN or infinite latents" in s.degraded_reason, s.degraded_reason
    expected = reference(EdgeOnly(), PROMPT, SEED, STEPS).latents
    assert torch.equal(from_proto(result.latents, max_elements=1 << 20), expected)
