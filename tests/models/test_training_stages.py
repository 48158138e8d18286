"""Each training stage runs end to end for a couple of steps on tiny data, writes what it ships,
and resumes from its checkpoint (no test trains for more than a few seconds)."""

import json

import pytest
import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from safetensors.torch import load_file

from ecdiff.models.training.paths import cache_dir


def _stored_dtypes(folder):
    tensors = load_file(str(folder / "diffusion_pytorch_model.safetensors"))
    return {t.dtype for t in tensors.values()}


@pytest.fixture
def scratch(tmp_path, monkeypatch):
    monkeypatch.setenv("ECDIFF_TRAINING_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("ECDIFF_MODELS_DIR", str(tmp_path / "models"))
    torch.set_num_threads(1)
    return tmp_path


def test_vae_stage_ships_and_resumes(scratch):
    from ecdiff.models.training.train_vae import VAETrainConfig, train_vae

    cfg = dict(batch_size=2, warmup_steps=1, dataset_size=40, checkpoint_every=1)
    train_vae(VAETrainConfig(steps=1, **cfg))
    assert torch.load(cache_dir() / "vae.ckpt", weights_only=False)["step"] == 1
    train_vae(VAETrainConfig(steps=2, **cfg))  # resumes at step 1, runs one more
    assert torch.load(cache_dir() / "vae.ckpt", weights_only=False)["step"] == 2
    assert _stored_dtypes(scratch / "models" / "toyworld-vae") == {torch.float16}
    assert AutoencoderKL.from_pretrained(scratch / "models" / "toyworld-vae").config.scaling_factor > 0
    meta = json.loads((scratch / "models" / "toyworld-vae" / "training.json").read_text())
    assert meta["config"]["steps"] == 2 and meta["wall_time_s"] >= 0


def test_latents_unet_and_decoder_stages(scratch, monkeypatch):
    from ecdiff.models.training.latents import build_latents, load_latents
    from ecdiff.models.training.train_unet import UNetTrainConfig, train_unet
    from ecdiff.models.training.train_vae import VAETrainConfig, train_vae
    from ecdiff.models.training.train_vae_decoder import DecoderTrainConfig, train_vae_decoder

    train_vae(VAETrainConfig(steps=1, batch_size=2, warmup_steps=1, dataset_size=40, checkpoint_every=1))
    import ecdiff.models.training.latents as latents_mod
    import ecdiff.models.training.train_vae_decoder as decoder_mod

    for mod in (latents_mod, decoder_mod):  # the real 20000-render set takes minutes to render
        monkeypatch.setattr(mod, "DATASET_SIZE", 40)
        monkeypatch.setattr(mod, "DATASET_SEED", 0)
    build_latents(batch_size=16)
    latents, ids = load_latents()
    assert latents.shape == (40, 4, 8, 8) and ids.shape == (40,) and int(ids.max()) < 1728
    # a fake caption table (the real one needs all 10k MiniLM encodes)
    torch.save({"table": torch.randn(1728, 6, 32, 384).half(), "empty": torch.zeros(32, 384).half()},
               cache_dir() / "caption-embeddings.pt")
    train_unet(UNetTrainConfig(name="toyworld-edge", architecture="edge", steps=2, batch_size=4, warmup_steps=1))
    assert _stored_dtypes(scratch / "models" / "toyworld-edge" / "unet") == {torch.float16}
    UNet2DConditionModel.from_pretrained(scratch / "models" / "toyworld-edge" / "unet")
    assert (scratch / "models" / "toyworld-edge" / "scheduler" / "scheduler_config.json").is_file()
    before = AutoencoderKL.from_pretrained(scratch / "models" / "toyworld-vae")
    train_vae_decoder(DecoderTrainConfig(steps=1, batch_size=2, warmup_steps=1))
    after = AutoencoderKL.from_pretrained(scratch / "models" / "toyworld-vae")
    # the encoder (which made the UNets' latents) is untouched; the decoder changed
    for a, b in zip(before.encoder.parameters(), after.encoder.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert any(not torch.equal(a, b) for a, b in zip(before.decoder.parameters(), after.decoder.parameters()))


def test_configs_reject_bad_values():
    from ecdiff.models.training.train_unet import UNetTrainConfig
    from ecdiff.models.training.train_vae import VAETrainConfig

    with pytest.raises(ValueError):
        VAETrainConfig(steps=0)
    with pytest.raises(ValueError):
        UNetTrainConfig(name="x", architecture="huge", steps=10)
    with pytest.raises(ValueError):
        UNetTrainConfig(name="x", architecture="edge", steps=10, caption_dropout=1.5)
