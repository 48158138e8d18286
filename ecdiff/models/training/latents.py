"""Stage: encode the training renders to scaled VAE latents once, for both UNets.

Latents are the posterior mode times the VAE's scaling_factor (what the pipeline divides by when
decoding), stored in fp16 with each image's scene id.
"""

from __future__ import annotations

import torch
from diffusers import AutoencoderKL
from tqdm import tqdm

from ecdiff.models.registry import VAE_DIR_NAME, model_path
from ecdiff.models.training.data import to_unit_range, training_renders
from ecdiff.models.training.paths import cache_dir
from ecdiff.toyworld import ATTRIBUTES

_FILE = "latents.pt"
DATASET_SIZE = 20000
DATASET_SEED = 0  # the VAE's own training renders: already on disk, and the UNets see what the VAE saw


def scene_ids(labels: torch.Tensor) -> torch.Tensor:
    """Row of all_scenes() for each label row (attributes in ATTRIBUTES order, itertools.product order)."""
    ids = torch.zeros(len(labels), dtype=torch.long)
    for i, classes in enumerate(ATTRIBUTES.values()):
        ids = ids * len(classes) + labels[:, i]
    return ids


@torch.no_grad()
def build_latents(batch_size: int = 250) -> None:
    images, labels = training_renders(DATASET_SIZE, DATASET_SEED)
    vae = AutoencoderKL.from_pretrained(model_path(VAE_DIR_NAME), torch_dtype=torch.float32).eval()
    chunks = [vae.encode(to_unit_range(images[i:i + batch_size])).latent_dist.mode()
              for i in tqdm(range(0, len(images), batch_size), desc="encode latents")]
    latents = (torch.cat(chunks) * vae.config.scaling_factor).to(torch.float16)
    path = cache_dir() / _FILE
    torch.save({"latents": latents, "scene_ids": scene_ids(labels)}, path.with_suffix(".tmp"))
    path.with_suffix(".tmp").replace(path)


def load_latents() -> tuple[torch.Tensor, torch.Tensor]:
    payload = torch.load(cache_dir() / _FILE, map_location="cpu")
    return payload["latents"], payload["scene_ids"]
