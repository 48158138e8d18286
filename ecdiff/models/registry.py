"""Names of the shipped models and where their folders are."""

from __future__ import annotations

from pathlib import Path

from ecdiff.models.training.paths import models_dir

# Pipeline name -> UNet folder under models/; all of them share the VAE and text encoder.
PIPELINES: dict[str, str] = {"toyworld-cloud": "toyworld-cloud", "toyworld-edge": "toyworld-edge"}
VAE_DIR_NAME = "toyworld-vae"


def model_path(name: str) -> Path:
    path = models_dir() / name
    if not path.is_dir():
        raise FileNotFoundError(f"no model folder {path}; train it with `make models`")
    return path
