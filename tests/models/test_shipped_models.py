"""The shipped models themselves (models/, not the tiny random pair): they load, they generate, a
missing or corrupt one is a loud error naming its folder, and loading them prints nothing."""

import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from ecdiff.diffusionx.choosers import load_choosers
from ecdiff.loading import ModelLoadError, load_model, load_pair
from ecdiff.models.training.paths import models_dir
from ecdiff.toyworld import parse_caption, render

PROMPT = "a small red circle at the top left on a white background"
STEPS = 3


@pytest.fixture(scope="module")
def pair():
    return load_pair()


def generate(pipe, guidance):
    """A plain diffusers call (the generation convention), so the check does not depend on our sampler."""
    return pipe(PROMPT, num_inference_steps=STEPS, guidance_scale=guidance, output_type="np",
                generator=torch.Generator("cpu").manual_seed(0)).images


def test_the_shipped_pair_loads_and_generates(pair):
    assert pair.name == "toyworld-cloud+toyworld-edge"
    assert not pair.cloud_model.random_weights and not pair.edge_model.random_weights
    images = {role: generate(getattr(pair, role), pair.guidance) for role in ("cloud", "edge")}
    for image in images.values():
        assert image.shape == (1, 64, 64, 3) and np.isfinite(image).all() and image.std() > 0.01
    assert not np.array_equal(images["cloud"], images["edge"])


def test_the_shipped_diffusionx_predictors_choose_strengths(pair):
    edge_strength, cloud_strength = load_choosers(None)
    image = torch.from_numpy(generate(pair.edge, pair.guidance)).permute(0, 3, 1, 2)  # [0, 1], as decoded
    assert 0 < edge_strength(PROMPT, PROMPT.replace("red", "blue"), image) <= 1
    assert 0 < cloud_strength(PROMPT, image) <= 1


def test_the_shipped_edge_predictor_is_not_constant():
    """After an exact picture of PROMPT, revisions of different kinds get different strengths."""
    edge_strength, _ = load_choosers(None)
    picture = torch.from_numpy(render(parse_caption(PROMPT))).permute(2, 0, 1).unsqueeze(0).float() / 255
    revisions = [PROMPT.replace("red", "blue"), PROMPT.replace("circle", "square"), PROMPT.replace("small", "large"),
                 PROMPT.replace("top left", "bottom right"), PROMPT.replace("white", "black"),
                 "small red circle, top left, white background", "a large green triangle at the bottom on a gray background"]
    assert len({edge_strength(PROMPT, r, picture) for r in revisions}) >= 2


@pytest.fixture
def models_copy(tmp_path, monkeypatch):
    copy = tmp_path / "models"
    for name in ("toyworld-cloud", "toyworld-edge", "toyworld-vae"):
        shutil.copytree(models_dir() / name, copy / name)
    monkeypatch.setenv("ECDIFF_MODELS_DIR", str(copy))
    return copy


def truncate(path):
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size // 2)


@pytest.mark.parametrize("broken, damage", [
    ("toyworld-edge", shutil.rmtree),
    ("toyworld-vae", shutil.rmtree),
    ("toyworld-cloud/unet/diffusion_pytorch_model.safetensors", truncate),
    ("toyworld-edge/unet/config.json", lambda path: path.write_text("{not json")),
])
def test_a_missing_or_corrupt_model_is_an_error_naming_it(models_copy, broken, damage):
    damage(models_copy / broken)
    with pytest.raises(ModelLoadError) as error:
        load_pair()
    assert str(models_copy / broken.split("/")[0]) in str(error.value)
    assert "make models" in str(error.value) and "`--tiny`" in str(error.value)
    role = "cloud" if "cloud" in broken else "edge"
    with pytest.raises(ModelLoadError, match="`--model tiny`"):
        load_model(role)  # the services' default: no silent fallback to random weights
    assert load_model(role, "tiny").random_weights  # random weights only when asked for


def test_loading_every_model_prints_nothing():
    # Third-party notices (install accelerate, the MiniLM load report, torchvision fallbacks) used to
    # flood every command; a fresh process shows what a user sees.
    code = ("from ecdiff.loading import load_model, load_pair; from ecdiff.diffusionx.choosers import load_choosers; "
            "load_pair(); load_pair(tiny=True); load_model('cloud'); load_choosers(None)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert (done.stdout, done.stderr) == ("", "")
