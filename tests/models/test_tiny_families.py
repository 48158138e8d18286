"""The tiny random model families: built from the real classes, saved as diffusers folders, loaded by
path in their own pipeline class, and sampled with every strategy as the plain pipeline samples
(CogVideoX-class video included: 5-D latents, decoded to frames)."""

import json

import pytest
import torch
from diffusers import (AutoencoderKLCogVideoX, CogVideoXDDIMScheduler, CogVideoXPipeline, CogVideoXTransformer3DModel,
                       DDIMScheduler, EulerDiscreteScheduler, StableDiffusionPipeline, StableDiffusionXLPipeline)
from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer, T5EncoderModel, T5Tokenizer

from ecdiff.images import Video, decode_images
from ecdiff.models import load_pipeline
from ecdiff.models.tiny_families import MAX_TOKENS, main
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


# --- CogVideoX-class video -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def video(family_folders):
    return {role: load_pipeline(path) for role, path in family_folders["cogvideox"].items()}


def test_the_video_pair_is_an_ordinary_cogvideox_folder_pair(family_folders, video):
    for role, path in family_folders["cogvideox"].items():
        assert json.loads((path / "model_index.json").read_text())["_class_name"] == "CogVideoXPipeline"
        pipe = video[role]
        assert type(pipe) is CogVideoXPipeline and type(pipe.tokenizer) is T5Tokenizer
        assert type(pipe.text_encoder) is T5EncoderModel and type(pipe.vae) is AutoencoderKLCogVideoX
        assert type(pipe.transformer) is CogVideoXTransformer3DModel
        assert type(pipe.scheduler) is CogVideoXDDIMScheduler and pipe.scheduler.config.prediction_type == "v_prediction"
    cloud, edge = video["cloud"].transformer.config, video["edge"].transformer.config
    # CogVideoX-5B-style cloud (rotary embeddings, more layers and heads), 2B-style edge (sin-cos).
    assert cloud.use_rotary_positional_embeddings and not edge.use_rotary_positional_embeddings
    assert (edge.num_layers, edge.num_attention_heads) < (cloud.num_layers, cloud.num_attention_heads)
    for name in ("text_encoder", "vae"):
        for (key, a), b in zip(getattr(video["cloud"], name).state_dict().items(),
                               getattr(video["edge"], name).state_dict().values()):
            assert torch.equal(a, b), f"{name}.{key} differs"
    assert dict(video["cloud"].scheduler.config) == dict(video["edge"].scheduler.config)


def test_the_t5_tokenizer_reads_any_prompt(video):
    tokenizer = video["cloud"].tokenizer
    assert tokenizer.convert_ids_to_tokens(tokenizer("a red circle").input_ids) == ["\u2581a", "\u2581red", "\u2581circle",
                                                                                    "</s>"]
    ids = tokenizer("Ünïcode, digits 42 & punctuation!", padding="max_length", max_length=16, truncation=True).input_ids
    assert len(ids) == 16 and tokenizer.unk_token_id in ids
    # One id per piece, every id an embedding row of the encoder.
    assert len(tokenizer) == len(tokenizer.get_vocab()) == video["cloud"].text_encoder.config.vocab_size
    assert max(tokenizer("a panda with a guitar").input_ids) < len(tokenizer)


@pytest.mark.parametrize("role", ["cloud", "edge"])
def test_video_cloud_only_equals_the_cogvideox_pipeline_bit_for_bit(role, video):
    """CogVideoX's folders ship zero terminal SNR with trailing spacing, so their DDIM steps go through
    scheduler.step (ecdiff.schedules): the run, and its frames, are the pipeline's exactly."""
    pipe = video[role]
    run = prepare_run(CloudOnly(), prompts=PROMPT, num_steps=STEPS, guidance=6.0, cloud=pipe, seeds=3)
    assert type(run.sampler().updater).__name__ == "_SchedulerStepUpdater"
    ours = run.sample().latents
    call = dict(num_inference_steps=STEPS, guidance_scale=6.0, max_sequence_length=MAX_TOKENS)
    theirs = pipe(PROMPT, generator=torch.Generator("cpu").manual_seed(3), output_type="latent", **call).frames
    assert ours.shape == (1, 3, 4, 4, 4) and torch.equal(ours, theirs)
    frames = pipe(PROMPT, generator=torch.Generator("cpu").manual_seed(3), **call).frames[0]
    video_out = decode_images(pipe, ours)[0]
    assert isinstance(video_out, Video) and len(video_out.frames) == 9 and video_out.size == (32, 32)
    assert [f.tobytes() for f in video_out.frames] == [f.tobytes() for f in frames]


def test_video_on_a_schedule_without_zero_snr_runs_in_coefficient_form_through_the_kernels(family_folders):
    pipe = load_pipeline(family_folders["cogvideox"]["cloud"])
    pipe.scheduler = CogVideoXDDIMScheduler.from_config(pipe.scheduler.config, timestep_spacing="leading")
    run = prepare_run(ECDiff(2, 1, 0.5, STEPS), prompts=PROMPT, num_steps=STEPS, guidance=6.0, cloud=pipe, seeds=3)
    assert type(run.sampler().updater).__name__ == "_CoefficientUpdater"
    result = run.sample()
    assert result.approx_steps == PlanCounts.of(run.strategy.plan(STEPS)).approx > 0
    assert torch.isfinite(result.latents).all()
    ours = prepare_run(CloudOnly(), prompts=PROMPT, num_steps=STEPS, guidance=6.0, cloud=pipe, seeds=3).sample()
    theirs = pipe(PROMPT, num_inference_steps=STEPS, guidance_scale=6.0, max_sequence_length=MAX_TOKENS,
                  generator=torch.Generator("cpu").manual_seed(3), output_type="latent").frames
    torch.testing.assert_close(ours.latents, theirs, rtol=1e-4, atol=1e-4)  # the update's float rounding differs


@pytest.mark.parametrize("strategy", [CloudOnly(), ECDiff(2, 1, 0.5, 4), HybridSD(2), EdgeOnly()], ids=str)
def test_every_strategy_samples_video(strategy, video):
    result = prepare_run(strategy, prompts=PROMPT, num_steps=STEPS, guidance=6.0, cloud=video["cloud"],
                         edge=video["edge"], seeds=5).sample()
    counts = PlanCounts.of(strategy.plan(STEPS))
    assert (result.cloud_calls, result.edge_calls, result.approx_steps) == (counts.cloud, counts.edge, counts.approx)
    assert result.latents.shape == (1, 3, 4, 4, 4) and torch.isfinite(result.latents).all()


def test_cogvideox_1_5_folders_are_refused(family_folders, tmp_path):
    pipe = load_pipeline(family_folders["cogvideox"]["edge"])
    config = {k: v for k, v in pipe.transformer.config.items() if not k.startswith("_")}
    pipe.register_modules(transformer=CogVideoXTransformer3DModel(**{**config, "patch_size_t": 2}))
    pipe.save_pretrained(tmp_path)
    with pytest.raises(OSError, match="CogVideoX 1.5 transformer \\(patch_size_t=2\\) is not supported"):
        load_pipeline(tmp_path)
