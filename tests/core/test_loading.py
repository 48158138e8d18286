"""The one model loader: tiny pair on request, trained pair or a clear error, guidance override."""

import pytest

from ecdiff.loading import TINY_GUIDANCE, TINY_PAIR_NAME, load_model, load_pair


def test_tiny_pair_is_shared_with_the_services_loader():
    pair = load_pair(tiny=True)
    assert pair.name == TINY_PAIR_NAME and pair.guidance == TINY_GUIDANCE
    # One build per process: the services' models and the bench's pair are the same objects.
    assert pair.cloud is load_model("cloud", "tiny").pipe and pair.edge is load_model("edge", "tiny").pipe
    assert pair.cloud_model.random_weights and pair.edge_model.role == "edge"


def test_guidance_override_reaches_both_roles():
    pair = load_pair(tiny=True, guidance=5.5)
    assert (pair.guidance, pair.cloud_model.guidance, pair.edge_model.guidance) == (5.5, 5.5, 5.5)


def test_missing_trained_pair_is_an_error_naming_tiny(monkeypatch):
    def missing(name):
        raise FileNotFoundError(f"no model folder models/{name}")

    monkeypatch.setattr("ecdiff.models.load_pipeline", missing)
    with pytest.raises(ValueError, match="trained model pair missing .*--tiny"):
        load_pair()
    # The services' loader falls back instead (and says so in its log), unless a name was given.
    assert load_model("edge").random_weights
    with pytest.raises(FileNotFoundError):
        load_model("edge", "toyworld-edge")
    with pytest.raises(ValueError, match="--tiny"):
        load_pair(tiny=True, cloud="toyworld-cloud")
