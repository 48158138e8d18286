import pytest
import torch
from diffusers import DDIMScheduler, StableDiffusionPipeline

from ecdiff.models import DEFAULT_GUIDANCE, load_pipeline
from ecdiff.models.text_encoder import MAX_LENGTH, encode

PROMPT = "a small red circle at the top left on a white background"


def test_load_pipeline_returns_plain_diffusers_pipeline(tiny_models_dir):
    pipe = load_pipeline("toyworld-edge")
    assert type(pipe) is StableDiffusionPipeline
    assert pipe.safety_checker is None
    assert isinstance(pipe.scheduler, DDIMScheduler)
    cfg = pipe.scheduler.config
    assert (cfg.num_train_timesteps, cfg.beta_start, cfg.beta_end, cfg.beta_schedule) == (1000, 0.00085, 0.012, "scaled_linear")
    assert (cfg.clip_sample, cfg.set_alpha_to_one, cfg.steps_offset) == (False, False, 1)
    assert pipe.unet.dtype == torch.float32  # fp16 on disk, fp32 for CPU inference
    assert pipe.tokenizer.model_max_length == MAX_LENGTH
    out = pipe(PROMPT, num_inference_steps=2, guidance_scale=DEFAULT_GUIDANCE,
               generator=torch.Generator("cpu").manual_seed(0), output_type="np")
    assert out.images.shape == (1, 64, 64, 3)
    again = pipe(PROMPT, num_inference_steps=2, guidance_scale=DEFAULT_GUIDANCE,
                 generator=torch.Generator("cpu").manual_seed(0), output_type="np")
    assert (out.images == again.images).all()


def test_training_embeddings_equal_pipeline_encode_prompt(tiny_models_dir):
    pipe = load_pipeline("toyworld-cloud")
    positive, negative = pipe.encode_prompt([PROMPT], "cpu", 1, True, None)
    torch.testing.assert_close(positive, encode([PROMPT], pipe.tokenizer, pipe.text_encoder), rtol=0, atol=0)
    torch.testing.assert_close(negative, encode([""], pipe.tokenizer, pipe.text_encoder), rtol=0, atol=0)
    assert positive.shape == (1, MAX_LENGTH, 384)


def test_sd_folder_path_loads_through_the_same_function(tiny_models_dir, tmp_path):
    # A standard SD-1.x layout (model_index.json) goes through from_pretrained unchanged.
    load_pipeline("toyworld-edge").save_pretrained(tmp_path / "sd-like")
    pipe = load_pipeline(tmp_path / "sd-like")
    assert type(pipe) is StableDiffusionPipeline and pipe.safety_checker is None


def test_bad_names_and_folders(tiny_models_dir, tmp_path):
    with pytest.raises(FileNotFoundError):
        load_pipeline("toyworld-huge")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError):
        load_pipeline(tmp_path / "empty")
