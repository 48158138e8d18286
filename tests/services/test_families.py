"""Both services on the tiny model families (CogVideoX-class video included), loaded from their
diffusers folders by path: every strategy through Generate equals the in-process run bit for bit,
and mismatched pairs and handoffs on multistep schedulers are refused with a message naming what
differs."""

import io

import grpc
import pytest
import torch
from diffusers import AutoencoderKL, DPMSolverMultistepScheduler

from ecdiff.conventions import MAX_PROMPT_CHARS
from ecdiff.images import decode_images, open_picture, png_bytes
from ecdiff.loading import load_model
from ecdiff.models import load_pipeline
from ecdiff.preparation import prepare_run
from ecdiff.services.background import BackgroundServices
from ecdiff.services.config import (MAX_CLOUD_MESSAGE_BYTES, MAX_LATENT_ELEMENTS, MAX_RECEIVE_BYTES, CloudConfig,
                                    EdgeConfig)
from ecdiff.strategies import ECDiff
from ecdiff.v1 import (cloud_pb2, cloud_pb2_grpc, diffusionx_pb2, diffusionx_pb2_grpc, edge_pb2_grpc, strategy_pb2,
                       tensor_pb2)
from ecdiff.wire.tensors import TensorError, from_proto, to_proto
from support.exact_requests import exact_generate_request
from support.strategy_table import strategy_table
from support.edges import extra_edge

STEPS = 6
PROMPT = "a red circle on the blue"
STRATEGIES = strategy_table(ECDiff(2, 1, 0.5, 4), cloud_steps=3)


def models(folders):
    return load_model("cloud", str(folders["cloud"])), load_model("edge", str(folders["edge"]))


def generate(target, strategy, seed=7, **fields):
    with grpc.insecure_channel(target, options=[("grpc.max_receive_message_length", 16 << 20)]) as channel:
        request = exact_generate_request(prompt=PROMPT, seed=seed, num_steps=STEPS, strategy=strategy,
                                         params=STRATEGIES[strategy][1], return_latents=True, **fields)
        return list(edge_pb2_grpc.EdgeDenoiserStub(channel).Generate(request))[-1].result


def refusal(target, strategy):
    with pytest.raises(grpc.RpcError) as info:
        generate(target, strategy)
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    return info.value.details()


@pytest.mark.parametrize("family", ["sd1", "sdxl"])
def test_every_strategy_through_the_services_equals_the_in_process_run(family, family_folders):
    cloud, edge = models(family_folders[family])
    with BackgroundServices(cloud, edge, CloudConfig(), EdgeConfig()) as services:
        with grpc.insecure_channel(services.cloud_target) as channel:
            info = cloud_pb2_grpc.CloudDenoiserStub(channel).GetModelInfo(cloud_pb2.ModelInfoRequest())
        assert list(info.latent_shape) == [1, 4, 8, 8] and info.vae_sha256
        assert info.added_conditioning.startswith("text_time: text_embeds 32") if family == "sdxl" \
            else info.added_conditioning == "none"
        assert info.text_encoder.name.count("CLIPTextModel") == (2 if family == "sdxl" else 1)
        for name, (strategy, _) in STRATEGIES.items():
            result = generate(services.edge_target, name)
            expected = prepare_run(strategy, prompts=PROMPT, num_steps=STEPS, guidance=cloud.guidance,
                                   cloud=cloud.pipe, edge=edge.pipe, seeds=7).sample()
            assert torch.equal(from_proto(result.latents, max_elements=1 << 16), expected.latents), name
            assert result.image_png == png_bytes(decode_images(edge.pipe, expected.latents)[0]), name
            s = result.summary
            assert (s.cloud_calls, s.approx_steps, s.edge_calls) == (
                expected.cloud_calls, expected.approx_steps, expected.edge_calls)


@pytest.fixture(scope="module")
def sd1_services(family_folders):
    with BackgroundServices(*models(family_folders["sd1"]), CloudConfig(), EdgeConfig()) as services:
        yield services


def saved_variant(pipe, path, **components):
    """`pipe` with some components replaced, saved as a diffusers folder and loaded back as an edge."""
    pipe.register_modules(**components)
    pipe.save_pretrained(path)
    return load_model("edge", str(path))


def test_an_edge_of_another_family_is_refused_naming_every_difference(sd1_services, family_folders):
    sdxl_edge = models(family_folders["sdxl"])[1]
    with extra_edge(sd1_services, sdxl_edge) as edge:
        details = refusal(edge.target, "ecdiff")
    assert "incompatible handoff" in details
    for fragment in ("scheduler mismatch", "text encoder mismatch", "added conditioning mismatch: handoff 'none', "
                     "edge 'text_time", "VAE mismatch"):
        assert fragment in details


@pytest.mark.parametrize("change", ["weights", "scaling"])
def test_an_edge_with_another_vae_is_refused(sd1_services, family_folders, tmp_path, change):
    """Other VAE weights, or the same weights with another scaling factor (as CogVideoX-5B's VAE
    against the 2B's), are another latent space."""
    pipe = load_pipeline(family_folders["sd1"]["edge"])
    if change == "weights":
        torch.manual_seed(1)
        pipe.register_modules(vae=AutoencoderKL.from_config(pipe.vae.config).eval())
    else:
        pipe.vae.register_to_config(scaling_factor=2 * pipe.vae.config.scaling_factor)
    with extra_edge(sd1_services, saved_variant(pipe, tmp_path / "edge")) as edge:
        details = refusal(edge.target, "hybrid")
        assert generate(edge.target, "edge").image_png  # on its own the edge works
    assert details.startswith("incompatible handoff: VAE mismatch")


def test_an_edge_with_another_latent_size_is_refused(sd1_services, family_folders, tmp_path):
    pipe = load_pipeline(family_folders["sd1"]["edge"])
    pipe.unet.register_to_config(sample_size=16)
    with extra_edge(sd1_services, saved_variant(pipe, tmp_path / "edge")) as edge:
        details = refusal(edge.target, "ecdiff")
    assert "latent shape mismatch: handoff [1, 4, 8, 8], edge [1, 4, 16, 16]" in details


def test_handoffs_on_a_multistep_scheduler_are_refused(family_folders, tmp_path):
    """DPM-Solver++ keeps earlier model outputs, which a handoff does not carry: such handoffs are
    refused (cloud and edge say why); cloud-only and edge-only runs are served and exact."""
    folders = {}
    for role in ("cloud", "edge"):
        pipe = load_pipeline(family_folders["sd1"][role])
        pipe.scheduler = DPMSolverMultistepScheduler.from_config(pipe.scheduler.config, algorithm_type="dpmsolver++")
        pipe.save_pretrained(tmp_path / role)
        folders[role] = tmp_path / role
    cloud, edge = models(folders)
    with BackgroundServices(cloud, edge, CloudConfig(), EdgeConfig()) as services:
        for name in ("ecdiff", "hybrid"):
            details = refusal(services.edge_target, name)
            assert "DPMSolverMultistepScheduler is not one of the schedulers a handoff continues exactly" in details
            assert "earlier steps' model outputs" in details and f"strategy {name!r} hands over at step" in details
        for name in ("cloud", "edge"):
            expected = prepare_run(STRATEGIES[name][0], prompts=PROMPT, num_steps=STEPS, guidance=cloud.guidance,
                                   cloud=cloud.pipe, edge=edge.pipe, seeds=7).sample()
            result = generate(services.edge_target, name)
            assert torch.equal(from_proto(result.latents, max_elements=1 << 16), expected.latents)
        with grpc.insecure_channel(services.cloud_target) as channel:  # the cloud refuses on its own too
            with pytest.raises(grpc.RpcError) as info:
                list(cloud_pb2_grpc.CloudDenoiserStub(channel).Denoise(cloud_pb2.DenoiseRequest(
                    prompt=PROMPT, seed=1, num_steps=STEPS, strategy="hybrid",
                    params=strategy_pb2.StrategyParams(cloud_steps=3))))
        assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "DPMSolverMultistepScheduler" in info.value.details()


def test_video_through_the_services_equals_the_in_process_run_for_every_strategy(family_folders):
    """CogVideoX-class folders by path: [1, 3, 4, 4, 4] latents hand over, the edge's animated PNG is the
    in-process video's, frame for frame."""
    cloud, edge = models(family_folders["cogvideox"])
    with BackgroundServices(cloud, edge, CloudConfig(), EdgeConfig()) as services:
        with grpc.insecure_channel(services.cloud_target) as channel:
            info = cloud_pb2_grpc.CloudDenoiserStub(channel).GetModelInfo(cloud_pb2.ModelInfoRequest())
        assert list(info.latent_shape) == [1, 3, 4, 4, 4] and info.added_conditioning == "none"
        assert info.text_encoder.name.startswith("T5EncoderModel")
        in_process = {}
        for name, (strategy, _) in STRATEGIES.items():
            result = generate(services.edge_target, name)
            expected = prepare_run(strategy, prompts=PROMPT, num_steps=STEPS, guidance=cloud.guidance,
                                   cloud=cloud.pipe, edge=edge.pipe, seeds=7).sample()
            in_process[name] = expected
            assert torch.equal(from_proto(result.latents, max_elements=1 << 16), expected.latents), name
            video = decode_images(edge.pipe, expected.latents)[0]
            assert result.image_png == png_bytes(video), name
            assert len(open_picture(io.BytesIO(result.image_png)).frames) == 9
            s = result.summary
            assert (s.cloud_calls, s.approx_steps, s.edge_calls) == (
                expected.cloud_calls, expected.approx_steps, expected.edge_calls)
        # The edge's default transfer, int8, codes a video latent with one scale per (sample, latent
        # frame): lossy, and close to the exact run (0.7 % of the norm measured here, 4x headroom).
        result = generate(services.edge_target, "ecdiff", transfer_encoding=tensor_pb2.ENCODING_INT8_PER_CHANNEL)
        got = from_proto(result.latents, max_elements=1 << 16)
        exact = in_process["ecdiff"].latents
        rel = float((got - exact).norm() / exact.norm())
        assert not result.summary.degraded and 0 < rel < 0.03, rel


def test_a_video_cloud_with_an_image_edge_is_refused_naming_every_difference(family_folders):
    cloud = models(family_folders["cogvideox"])[0]
    with BackgroundServices(cloud, models(family_folders["sd1"])[1], CloudConfig(), EdgeConfig()) as services:
        details = refusal(services.edge_target, "ecdiff")
    assert details.startswith("incompatible handoff: ")
    for fragment in ("scheduler mismatch: handoff CogVideoXDDIMScheduler", "edge DDIMScheduler",
                     "latent shape mismatch: handoff [1, 3, 4, 4, 4], edge [1, 4, 8, 8]", "text encoder mismatch",
                     "VAE mismatch"):
        assert fragment in details


def test_the_largest_video_latent_fits_the_handoff_limits_and_one_frame_more_is_refused():
    """CogVideoX at its default size (49 frames, 480x720): a handoff carrying its latent fits the edge's
    channel to the cloud; a latent one latent frame larger is refused when decoded."""
    largest = torch.zeros(1, 13, 16, 60, 90)
    handoff = cloud_pb2.DenoiseEvent(handoff=cloud_pb2.Handoff(  # with the longest prompt and schedule too
        latents=to_proto(largest), prompt="x" * MAX_PROMPT_CHARS, timesteps=[999] * 1000,
        model_name="/models/" + "x" * 200))
    assert MAX_RECEIVE_BYTES < handoff.ByteSize() < MAX_CLOUD_MESSAGE_BYTES
    assert from_proto(handoff.handoff.latents, max_elements=MAX_LATENT_ELEMENTS).shape == largest.shape
    with pytest.raises(TensorError, match="exceed the limit"):
        from_proto(to_proto(torch.zeros(1, 14, 16, 60, 90)), max_elements=MAX_LATENT_ELEMENTS)


@pytest.mark.parametrize("family", ["sd1", "sdxl", "cogvideox"])
def test_a_diffusionx_session_runs_on_every_family(family, family_folders):
    """DiffusionX (SD-1.5 / Tiny-SD in its paper) on each family's folders: a preview, a revision
    (img2img on the edge) and the cloud's refinement, exact and approximated, served and not degraded.
    A smoke run: the sessions' results against the in-process core are checked on the tiny pair
    (test_diffusionx_grpc.py)."""
    cloud, edge = models(family_folders[family])
    with BackgroundServices(cloud, edge, CloudConfig(predictors="none", refine_steps=6),
                            EdgeConfig(predictors="none", preview_steps=4, session_db=":memory:")) as services, \
            grpc.insecure_channel(services.edge_target, options=[("grpc.max_receive_message_length", 16 << 20)]) as ch:
        sessions = diffusionx_pb2_grpc.EdgeSessionsStub(ch)
        session = list(sessions.StartSession(diffusionx_pb2.StartSessionRequest(prompt=PROMPT, seed=1)))[-1].result
        list(sessions.Revise(diffusionx_pb2.ReviseRequest(session_id=session.session_id, prompt="a blue circle")))
        for approximate in (False, True):
            final = list(sessions.Finalize(diffusionx_pb2.FinalizeRequest(
                session_id=session.session_id, require_cloud=True, approximate=approximate)))[-1].result
            assert not final.summary.degraded and final.summary.cloud_calls > 0, final.summary
            picture = open_picture(io.BytesIO(final.image_png))
            assert len(picture.frames) == 9 if family == "cogvideox" else picture.size == (64, 64)
