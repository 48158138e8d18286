"""The one model loader: tiny pair on request, trained pair or a clear error, guidance override.
(The shipped models themselves, missing or corrupt ones included: tests/models/test_shipped_models.py.)"""

from dataclasses import replace

import pytest
import torch

from ecdiff.loading import TINY_GUIDANCE, TINY_PAIR_NAME, ModelLoadError, ModelPair, load_model, load_pair


def test_tiny_pair_is_shared_with_the_services_loader():
    pair = load_pair(tiny=True)
    assert pair.name == TINY_PAIR_NAME and pair.guidance == TINY_GUIDANCE
    # One build per process: the services' models and the bench's pair are the same objects.
    assert pair.cloud is load_model("cloud", "tiny").pipe and pair.edge is load_model("edge", "tiny").pipe
    assert pair.cloud_model.random_weights and pair.edge_model.role == "edge"


def test_guidance_override_reaches_both_roles():
    pair = load_pair(tiny=True, guidance=5.5)
    assert (pair.guidance, pair.cloud_model.guidance, pair.edge_model.guidance) == (5.5, 5.5, 5.5)


def test_missing_trained_model_is_an_error_naming_tiny_never_a_fallback(monkeypatch):
    def missing(name, **placement):
        raise FileNotFoundError(f"no model folder models/{name}")

    monkeypatch.setattr("ecdiff.models.load_pipeline", missing)
    with pytest.raises(ModelLoadError, match="(?s)models/toyworld-cloud.*make models.*`--tiny`"):
        load_pair()
    # The services' loader too, by default as by name: random weights only when asked for.
    for name in (None, "toyworld-edge"):
        with pytest.raises(ModelLoadError, match="(?s)models/toyworld-edge.*`--model tiny`"):
            load_model("edge", name)
    with pytest.raises(ValueError, match="--tiny"):
        load_pair(tiny=True, cloud="toyworld-cloud")


def test_cache_key_follows_the_weights_not_only_the_names():
    from ecdiff.tiny_models import tiny_pipelines

    fresh = load_pair(tiny=True)
    same = ModelPair(fresh.cloud_model, fresh.edge_model, fresh.name)
    assert same.cache_key == fresh.cache_key  # computed, not random
    assert load_pair(tiny=True, guidance=5.5).cache_key != fresh.cache_key
    cloud, edge = tiny_pipelines(seed=0)  # an independent build with equal weights
    with torch.no_grad():
        edge.unet.conv_out.bias.add_(1e-3)  # "retrained under the same name"
    retrained = ModelPair(fresh.cloud_model, replace(fresh.edge_model, pipe=edge), fresh.name)
    assert retrained.cache_key.split("#")[0] == fresh.cache_key.split("#")[0]
    assert retrained.cache_key != fresh.cache_key


def test_placement_reaches_the_models_and_the_loop_stays_float32():
    from ecdiff.placement import Placement
    from ecdiff.preparation import prepare_run
    from ecdiff.strategies import ECDiff

    bf16 = load_pair(tiny=True, placement=Placement.resolve("cpu", "bfloat16"))
    fp32 = load_pair(tiny=True, placement=Placement.resolve("cpu", "float32"))
    assert bf16.cloud.unet.dtype == bf16.edge.text_encoder.dtype == torch.bfloat16
    assert fp32.cloud.unet.dtype == torch.float32 and fp32.cloud is load_pair(tiny=True).cloud
    assert "[cpu bfloat16]" in bf16.cache_key and "[" not in fp32.cache_key  # other pictures, other caches
    prompt, strategy = "a small red circle at the top left", ECDiff(2, 2, 0.5, 6)
    runs = [prepare_run(strategy, prompts=prompt, num_steps=8, guidance=pair.guidance, cloud=pair.cloud,
                        edge=pair.edge, seeds=3).sample() for pair in (bf16, fp32)]
    low, full = (r.latents for r in runs)
    assert low.dtype == full.dtype == torch.float32  # the state never narrows; only the models do
    assert torch.isfinite(low).all() and not torch.equal(low, full)
    assert (low - full).norm() / full.norm() < 0.1  # bf16 weights: about 3 significant digits


def test_each_model_brings_its_own_guidance(tmp_path):
    from ecdiff.loading import model_guidance
    from ecdiff.models import DEFAULT_GUIDANCE

    pipe = load_model("cloud", "tiny").pipe
    pipe.save_pretrained(tmp_path / "sd-folder")  # an ordinary diffusers folder (model_index.json)
    sd = load_model("cloud", str(tmp_path / "sd-folder"))
    assert sd.guidance == 7.5  # StableDiffusionPipeline's own default, not the toy world's
    assert model_guidance("toyworld-edge", pipe) == DEFAULT_GUIDANCE == 7.0
    assert load_model("cloud", str(tmp_path / "sd-folder"), guidance=4.0).guidance == 4.0
    assert load_model("edge", "tiny").guidance == TINY_GUIDANCE
    assert load_pair(cloud=str(tmp_path / "sd-folder"), edge=str(tmp_path / "sd-folder")).guidance == 7.5
