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
    def missing(name):
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
