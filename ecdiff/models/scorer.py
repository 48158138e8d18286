"""The alignment scorer: a small CNN that reads a toy-world image's five attributes.

It is the toy world's stand-in for CLIP score: `prompt_fidelity(image, caption)` is the fraction
of the caption's attributes (background, colour, shape, size, position) that the scorer reads
in the image. It is trained on renders only (with mild noise and blur so decoder artefacts do
not flip its answers), never on model outputs, so it measures rather than rewards a model.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file, save_file
from torch import nn

from ecdiff.toyworld import ATTRIBUTES, IMAGE_SIZE, Scene, parse_caption

SCORER_DIR_NAME = "toyworld-scorer"
_WEIGHTS = "scorer.safetensors"
_CONFIG = "config.json"


@dataclass(frozen=True)
class ScorerConfig:
    channels: tuple[int, ...] = (32, 64, 96, 128)
    hidden: int = 256

    def __post_init__(self) -> None:
        if len(self.channels) != 4 or any(c <= 0 for c in self.channels) or self.hidden <= 0:
            raise ValueError(f"need 4 positive channel counts and hidden > 0, got {self}")


class AttributeScorer(nn.Module):
    """64x64 RGB in [-1, 1] -> one logit vector per attribute (ATTRIBUTES order and classes)."""

    def __init__(self, config: ScorerConfig = ScorerConfig()) -> None:
        super().__init__()
        self.config = config
        layers: list[nn.Module] = []
        in_ch = 3
        for i, ch in enumerate(config.channels):
            layers += [nn.Conv2d(in_ch, ch, 3, padding=1), nn.BatchNorm2d(ch), nn.ReLU(inplace=True)]
            # Down to 8x8 after three poolings, then 4x4: grid cells stay 16 px, enough for position.
            layers.append(nn.MaxPool2d(2) if i < 3 else nn.AvgPool2d(2))
            in_ch = ch
        self.features = nn.Sequential(*layers, nn.Flatten())
        self.trunk = nn.Sequential(nn.Linear(in_ch * 16, config.hidden), nn.ReLU(inplace=True))
        self.heads = nn.ModuleDict({name: nn.Linear(config.hidden, len(classes)) for name, classes in ATTRIBUTES.items()})

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if x.ndim != 4 or x.shape[1:] != (3, IMAGE_SIZE, IMAGE_SIZE):
            raise ValueError(f"expected (N, 3, {IMAGE_SIZE}, {IMAGE_SIZE}) images, got {tuple(x.shape)}")
        h = self.trunk(self.features(x))
        return {name: head(h) for name, head in self.heads.items()}

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        save_file({k: v.detach().to(torch.float16).contiguous() for k, v in self.state_dict().items()
                   if v.is_floating_point()} | {k: v for k, v in self.state_dict().items() if not v.is_floating_point()},
                  str(folder / _WEIGHTS))
        (folder / _CONFIG).write_text(json.dumps(asdict(self.config)) + "\n")


def load_scorer(folder: str | Path | None = None) -> AttributeScorer:
    """The shipped scorer (models/toyworld-scorer) or one saved at `folder`, in eval mode, fp32."""
    from ecdiff.models.registry import model_path

    folder = Path(folder) if folder is not None else model_path(SCORER_DIR_NAME)
    config = json.loads((folder / _CONFIG).read_text())
    scorer = AttributeScorer(ScorerConfig(channels=tuple(config["channels"]), hidden=config["hidden"]))
    state = {k: (v.float() if v.is_floating_point() else v) for k, v in load_file(str(folder / _WEIGHTS)).items()}
    scorer.load_state_dict(state)
    return scorer.eval()


def images_to_tensor(images: np.ndarray | list) -> torch.Tensor:
    """uint8 (N, 64, 64, 3) array or list of PIL images / uint8 arrays -> float (N, 3, 64, 64) in [-1, 1]."""
    if isinstance(images, np.ndarray) and images.ndim == 3:
        images = images[None]
    arrays = [np.asarray(im.convert("RGB") if isinstance(im, Image.Image) else im) for im in images]
    batch = np.stack(arrays) if arrays else np.zeros((0, IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8)
    if batch.dtype != np.uint8 or batch.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE, 3):
        raise ValueError(f"expected uint8 images of shape ({IMAGE_SIZE}, {IMAGE_SIZE}, 3), got {batch.dtype} {batch.shape[1:]}")
    return torch.from_numpy(batch).permute(0, 3, 1, 2).float() / 127.5 - 1.0


@torch.no_grad()
def read_attributes(scorer: AttributeScorer, images: np.ndarray | list, batch_size: int = 256) -> list[Scene]:
    """The scene the scorer reads in each image."""
    x = images_to_tensor(images)
    scenes: list[Scene] = []
    for i in range(0, len(x), batch_size):
        logits = scorer(x[i:i + batch_size])
        picks = {name: logits[name].argmax(1).tolist() for name in ATTRIBUTES}
        scenes += [Scene(**{name: ATTRIBUTES[name][picks[name][j]] for name in ATTRIBUTES}) for j in range(len(picks["color"]))]
    return scenes


def attribute_matches(read: Scene, wanted: Scene) -> dict[str, bool]:
    return {name: getattr(read, name) == getattr(wanted, name) for name in ATTRIBUTES}


@torch.no_grad()
def wanted_probabilities(scorer: AttributeScorer, images: np.ndarray | list, captions: list[str],
                         batch_size: int = 256) -> torch.Tensor:
    """[N, 5] (ATTRIBUTES order): the scorer's probability of each attribute value its caption names."""
    if len(captions) != len(images):
        raise ValueError(f"{len(images)} images but {len(captions)} captions")
    wanted = [parse_caption(c) for c in captions]
    x = images_to_tensor(images)
    rows = []
    for i in range(0, len(x), batch_size):
        probs = {name: logits.softmax(1) for name, logits in scorer(x[i:i + batch_size]).items()}
        rows += [[float(probs[name][j, ATTRIBUTES[name].index(getattr(w, name))]) for name in ATTRIBUTES]
                 for j, w in enumerate(wanted[i:i + batch_size])]
    return torch.tensor(rows, dtype=torch.float64).reshape(len(wanted), len(ATTRIBUTES))


def prompt_fidelity(scorer: AttributeScorer, images: np.ndarray | list, captions: list[str]) -> list[float]:
    """Per image: fraction of its caption's five attributes that the scorer reads in it."""
    if len(captions) != len(images):
        raise ValueError(f"{len(images)} images but {len(captions)} captions")
    wanted = [parse_caption(c) for c in captions]
    read = read_attributes(scorer, images)
    return [sum(attribute_matches(r, w).values()) / len(ATTRIBUTES) for r, w in zip(read, wanted)]
