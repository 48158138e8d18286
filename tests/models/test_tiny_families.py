"""The tiny random model families: built from the real classes, saved as diffusers folders, loaded by
path in their own pipeline class, and sampled with every strategy as the plain pipeline samples."""

import json

import pytest
import torch
from diffusers import DDIMScheduler, EulerDiscreteScheduler, StableDiffusionPipeline, StableDiffusionXLPipeline
from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

from ecdiff.models import load_pipeline
from ecdiff.models.tiny_families import main
from ecdiff.preparation import prepare_run
from ecdiff.strategies import CloudOnly, ECDiff, EdgeOnly, HybridSD, PlanCounts
from support.one_thread import one_torch_thread  # noqa: F401  (autouse fixture)

PROMPT = "a red circle on the blue"
STEPS = 5
FAMILY_CLASSES = {"sd1": (StableDiffusionPipeline, DDIMScheduler, 0.18215),
                  "sdxl": (StableDiffusionXLPipeline, EulerDiscreteScheduler, 0.13025)}


@pytest.fixture(scope="module")
def pipes(family_folders):
    return {family: {role: load_pipeline(path) for role, path in roles.items()}
            for family, roles in family_folders.items()}


def unet_blocks(unet):
    return sum(len(block.resnets) for block in (*unet.down_blocks, *unet.up_blocks)) + (unet.mid_block is not None)


@pytest.mark.parametrize("family", FAMILY_CLASSES)
def test_folders_are_ordinary_diffusers_folders_loaded_in_their_class(family, family_folders, pipes):
    pipeline_class, scheduler_class, scaling = FAMILY_CLASSES[family]
    for role, path in family_folders[family].items():
        index = json.loads((path / "model_index.json").read_text())
        assert index["_class_name"] == pipeline_class.__name__
        assert (path / "tokenizer" / "tokenizer.json").is_file()
        pipe = pipes[family][role]
        assert type(pipe) is pipeline_class and isinstance(pipe.scheduler, scheduler_class)
        assert isinstance(pipe.tokenizer, CLIPTokenizer) and type(pipe.text_encoder) is CLIPTextModel
        assert pipe.vae.config.scaling_factor == scaling
    cloud, edge = pipes[family]["cloud"], pipes[family]["edge"]
    if family == "sdxl":
        assert type(cloud.text_encoder_2) is CLIPTextModelWithProjection
        assert cloud.unet.config.addition_embed_type == "text_time"
    # The edge is smaller and shares the rest: encoder(s), VAE, scheduler config.
    assert unet_blocks(edge.unet) < unet_blocks(cloud.unet)
    assert sum(p.numel() for p in edge.unet.parameters()) < sum(p.numel() for p in cloud.unet.parameters())
    for name in ("text_encoder", "text_encoder_2", "vae"):
        if hasattr(cloud, name):
            for (key, a), b in zip(getattr(cloud, name).state_dict().items(), getattr(edge, name).state_dict().values()):
                assert torch.equal(a, b), f"{name}.{key} differs"
    assert dict(cloud.scheduler.config) == dict(edge.scheduler.config)


def test_the_tokenizer_reads_any_prompt(pipes):
    tokenizer = pipes["sd1"]["cloud"].tokenizer
    tokens = tokenizer.convert_ids_to_tokens(tokenizer("a red circle").input_ids)
    assert tokens == ["<|startoftext|>", "a</w>", "red</w>", "circle</w>", "<|endoftext|>"]
    assert len(tokenizer("ünïcode, digits 42 & punctuation!", truncation=True).input_ids) == tokenizer.model_max_length


@pytest.mark.parametrize("family", FAMILY_CLASSES)
def test_cloud_only_equals_the_plain_pipeline_call(family, pipes):
    cloud = pipes[family]["cloud"]
    ours = prepare_run(CloudOnly(), prompts=PROMPT, num_steps=STEPS, guidance=7.0, cloud=cloud, seeds=3).sample()
    theirs = cloud(PROMPT, num_inference_steps=STEPS, guidance_scale=7.0,
                   generator=torch.Generator("cpu").manual_seed(3), output_type="latent").images
    # SD-1.x runs DDIM in coefficient form (float rounding differs from scheduler.step); SDXL's Euler is step().
    torch.testing.assert_close(ours.latents, theirs, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("family", FAMILY_CLASSES)
@pytest.mark.parametrize("strategy", [CloudOnly(), ECDiff(2, 1, 0.5, 4), HybridSD(2), EdgeOnly()], ids=str)
def test_every_strategy_samples(family, strategy, pipes):
    cloud, edge = pipes[family]["cloud"], pipes[family]["edge"]
    result = prepare_run(strategy, prompts=PROMPT, num_steps=STEPS, guidance=7.0, cloud=cloud, edge=edge,
                         seeds=5).sample()
    counts = PlanCounts.of(strategy.plan(STEPS))
    assert (result.cloud_calls, result.edge_calls, result.approx_steps) == (counts.cloud, counts.edge, counts.approx)
    assert result.latents.shape == (1, 4, 8, 8) and torch.isfinite(result.latents).all()


def test_unsupported_pipeline_classes_are_refused_by_name(tmp_path):
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": "KandinskyPipeline"}))
    with pytest.raises(OSError, match="KandinskyPipeline is not supported; supported: StableDiffusionPipeline"):
        load_pipeline(tmp_path)


def test_command_writes_the_folders(tmp_path, capsys):
    assert main(["--out", str(tmp_path), "--family", "sd1"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sd1-cloud", "sd1-edge"]
    assert type(load_pipeline(tmp_path / "sd1-edge")) is StableDiffusionPipeline
