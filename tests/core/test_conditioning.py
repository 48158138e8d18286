import pytest
import torch

from ecdiff.conditioning import encode_conditioning, pipeline_device
from ecdiff.models.tiny_families import FAMILIES, tiny_family
from ecdiff.preparation import prepare_run
from ecdiff.strategies import CloudOnly
from ecdiff.tiny_models import tiny_pipelines

PROMPTS = ["a small red circle at the top left on a white background", "two blue squares"]


def _encoder_calls(pipe) -> list[int]:
    calls = [0]
    pipe.text_encoder.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    return calls


def _encoded_afresh(pipe, prompts, guidance):
    """What diffusers' encode_prompt gives with nothing kept: the reference."""
    negatives = "" if isinstance(prompts, str) else [""] * len(prompts)
    return pipe.encode_prompt(prompts, pipe.device, 1, guidance > 1.0, negative_prompt=negatives)


def test_the_negative_prompt_is_encoded_once_per_pipeline_and_the_embeddings_stay_exact():
    cloud, _ = tiny_pipelines(seed=0)
    calls = _encoder_calls(cloud)
    first = encode_conditioning(cloud, PROMPTS[0], 7.0)
    assert calls[0] == 2  # the prompt and the negative prompt
    first.negative_embeds.add_(1.0)  # a caller that changes its copy does not change the kept one
    second = encode_conditioning(cloud, PROMPTS[1], 7.0)
    assert calls[0] == 3  # only the prompt
    positive, negative = _encoded_afresh(cloud, PROMPTS[1], 7.0)
    assert torch.equal(second.prompt_embeds, positive)
    assert torch.equal(second.negative_embeds, negative)


def test_a_batch_of_prompts_keeps_its_own_negative_embeddings():
    cloud, _ = tiny_pipelines(seed=0)
    encode_conditioning(cloud, PROMPTS[0], 7.0)
    batch = encode_conditioning(cloud, PROMPTS, 7.0)
    again = encode_conditioning(cloud, list(reversed(PROMPTS)), 7.0)
    positive, negative = _encoded_afresh(cloud, list(reversed(PROMPTS)), 7.0)
    assert batch.negative_embeds.shape[0] == 2
    assert torch.equal(again.prompt_embeds, positive) and torch.equal(again.negative_embeds, negative)


def test_unguided_conditioning_encodes_no_negative_prompt():
    cloud, _ = tiny_pipelines(seed=0)
    calls = _encoder_calls(cloud)
    conditioning = encode_conditioning(cloud, PROMPTS[0], 1.0)
    assert calls[0] == 1 and conditioning.negative_embeds is None


def test_a_pipeline_moved_to_another_precision_encodes_its_negative_prompt_anew():
    cloud, _ = tiny_pipelines(seed=0)
    encode_conditioning(cloud, PROMPTS[0], 7.0)
    cloud.to(dtype=torch.bfloat16)
    calls = _encoder_calls(cloud)
    moved = encode_conditioning(cloud, PROMPTS[0], 7.0)
    assert calls[0] == 2
    positive, negative = _encoded_afresh(cloud, PROMPTS[0], 7.0)
    assert moved.negative_embeds.dtype == torch.bfloat16 and torch.equal(moved.negative_embeds, negative)


@pytest.mark.parametrize("family", FAMILIES)
def test_pipeline_device_is_where_diffusers_puts_the_pipeline(family):
    pipe = tiny_family(family)["edge"]
    assert pipeline_device(pipe) == pipe.device


def test_preparing_a_run_never_asks_diffusers_for_the_pipelines_device(monkeypatch):
    """`DiffusionPipeline.device` walks every module: a few ms per request on the serving path."""
    cloud, _ = tiny_pipelines(seed=0)
    monkeypatch.setattr(type(cloud), "device", property(lambda self: pytest.fail("DiffusionPipeline.device called")))
    run = prepare_run(CloudOnly(), prompts=PROMPTS[0], num_steps=10, guidance=7.0, cloud=cloud, seeds=1)
    assert run.latents.device == next(cloud.unet.parameters()).device and run.cloud is not None


@pytest.mark.parametrize("family", FAMILIES)
def test_conditioning_carries_no_autograd_graph(family):
    """A diffusers folder's text encoder has trainable parameters: embeddings encoded with autograd on would
    keep the encoder's activations alive (on the GPU, in a deployment) for as long as a request, or the kept
    negative embeddings, lives."""
    pipe = tiny_family(family)["cloud"]
    assert any(p.requires_grad for p in pipe.text_encoder.parameters())
    conditioning = encode_conditioning(pipe, PROMPTS[0], 7.0)
    tensors = [conditioning.prompt_embeds, conditioning.negative_embeds, *conditioning.added.values(),
               *conditioning.negative_added.values()]
    assert not any(t.requires_grad or t.grad_fn is not None for t in tensors)
