"""DiffusionX's strength predictors and the candidate strengths they choose from.

Both heads predict the prompt fidelity (points) the round would reach at EVERY candidate strength,
trained on the labels' full fidelity vectors (not only their argmax, which ties make noisy); the
choice is the lowest candidate whose prediction is within a tolerance (points, one per head) of the
predicted maximum (`choose_strengths`): strength is the cost, so a near-tie goes to the cheaper
strength. `make predictors` picks each head's tolerance on the training split (`crossval.pick_tolerance`).

- Edge: a small MLP on the MiniLM embeddings of the previous and the current prompt
  (input [e_prev, e_cur, e_cur - e_prev]) -> 11 fidelities in (0, 100) (a scaled sigmoid).
  Trained with MSE and weight decay.
- Cloud: ridge regression (closed form, L2 penalty `ridge`) on [MiniLM(prompt), scorer features of
  the preview, 1] -> 11 fidelities.

Weights ship as safetensors plus a config.json in one folder (`models/diffusionx-predictors/`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import torch
from safetensors.torch import load_file, save_file
from torch import nn

STRENGTH_MIN, STRENGTH_STEP = 0.40, 0.05
CANDIDATE_STRENGTHS: tuple[float, ...] = tuple(round(STRENGTH_MIN + i * STRENGTH_STEP, 2) for i in range(11))
PREDICTORS_DIR_NAME = "diffusionx-predictors"
_EDGE, _CLOUD, _CONFIG = "edge.safetensors", "cloud.safetensors", "config.json"
_FIELDS = ("text_dim", "image_dim", "hidden", "ridge", "edge_tolerance", "cloud_tolerance")


def choose_strengths(predicted: torch.Tensor, tolerance: float) -> list[float]:
    """Per row of predicted fidelities [N, 11]: the lowest candidate within `tolerance` of the row's max."""
    if predicted.ndim != 2 or predicted.shape[1] != len(CANDIDATE_STRENGTHS):
        raise ValueError(f"expected predicted fidelities [N, {len(CANDIDATE_STRENGTHS)}], got {tuple(predicted.shape)}")
    near = predicted >= predicted.max(dim=1, keepdim=True).values - tolerance
    return [CANDIDATE_STRENGTHS[int(i)] for i in near.to(torch.uint8).argmax(dim=1)]  # argmax: first True


@dataclass(frozen=True)
class PredictorConfig:
    text_dim: int = 384
    image_dim: int = 256
    hidden: int = 64
    ridge: float = 1.0
    # Points of predicted fidelity given up for a lower strength, per head (training picks them).
    edge_tolerance: float = 1.0
    cloud_tolerance: float = 1.0

    def __post_init__(self) -> None:
        if (min(self.text_dim, self.image_dim, self.hidden) < 1 or not self.ridge >= 0
                or not min(self.edge_tolerance, self.cloud_tolerance) >= 0):
            raise ValueError(f"dimensions must be >= 1, ridge and tolerances >= 0, got {self}")


class EdgePredictor(nn.Module):
    def __init__(self, config: PredictorConfig) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(3 * config.text_dim, config.hidden), nn.ReLU(),
                                 nn.Linear(config.hidden, len(CANDIDATE_STRENGTHS)))

    @staticmethod
    def inputs(previous: torch.Tensor, current: torch.Tensor) -> torch.Tensor:
        return torch.cat([previous, current, current - previous], dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Predicted fidelity (points, in (0, 100)) at every candidate, [N, 11], of inputs [N, 3 * text_dim]."""
        return 100.0 * torch.sigmoid(self.net(x))


class CloudPredictor:
    """Ridge regression head: fidelities [N, 11] = [text, image, 1] @ weight [D + 1, 11]."""

    def __init__(self, weight: torch.Tensor) -> None:
        self.weight = weight.to(torch.float64)

    @staticmethod
    def inputs(text: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        return torch.cat([text, image, torch.ones(len(text), 1, dtype=text.dtype)], dim=-1).to(torch.float64)

    @classmethod
    def fit(cls, x: torch.Tensor, y: torch.Tensor, ridge: float) -> "CloudPredictor":
        """argmin |x W - y|^2 + ridge |W without the bias row|^2 (the bias is not penalised)."""
        x, y = x.to(torch.float64), y.to(torch.float64)
        penalty = torch.eye(x.shape[1], dtype=torch.float64) * ridge
        penalty[-1, -1] = 0.0
        return cls(torch.linalg.solve(x.T @ x + penalty, x.T @ y))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(torch.float64) @ self.weight


@dataclass
class Predictors:
    config: PredictorConfig
    edge: EdgePredictor
    cloud: CloudPredictor

    def save(self, folder: Path, metadata: Optional[dict] = None) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in self.edge.state_dict().items()}, str(folder / _EDGE))
        save_file({"weight": self.cloud.weight.to(torch.float32).contiguous()}, str(folder / _CLOUD))
        (folder / _CONFIG).write_text(json.dumps({**asdict(self.config), "training": metadata or {}}, indent=2) + "\n")


def load_predictors(folder: str | Path | None = None) -> Predictors:
    """The shipped predictors (models/diffusionx-predictors) or the ones saved at `folder`."""
    if folder is None:
        from ecdiff.models.training.paths import models_dir

        folder = models_dir() / PREDICTORS_DIR_NAME
    folder = Path(folder)
    if not (folder / _CONFIG).is_file():
        raise FileNotFoundError(f"no DiffusionX predictors at {folder} (run `make predictors`)")
    raw = json.loads((folder / _CONFIG).read_text())
    if "edge_tolerance" not in raw:
        raise ValueError(f"{folder} holds predictors of an older format; retrain them (`make predictors`)")
    config = PredictorConfig(**{k: raw[k] for k in _FIELDS})
    edge = EdgePredictor(config)
    edge.load_state_dict(load_file(str(folder / _EDGE)))
    return Predictors(config, edge.eval(), CloudPredictor(load_file(str(folder / _CLOUD))["weight"]))
