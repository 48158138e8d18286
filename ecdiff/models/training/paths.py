"""Where training writes: a gitignored cache for datasets/checkpoints, and the shipped models/ folder."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]


def models_dir() -> Path:
    """Shipped weights; ECDIFF_MODELS_DIR overrides (e.g. to train into a scratch folder)."""
    return Path(os.environ.get("ECDIFF_MODELS_DIR", REPO_ROOT / "models"))


def cache_dir() -> Path:
    """Datasets, embeddings and resumable checkpoints; gitignored (/.cache/)."""
    path = Path(os.environ.get("ECDIFF_TRAINING_CACHE", REPO_ROOT / ".cache" / "toyworld-training"))
    path.mkdir(parents=True, exist_ok=True)
    return path
