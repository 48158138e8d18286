"""DiffusionX's strength predictors and the candidate strengths they choose from.

Both heads predict the prompt fidelity (points; the labels' soft fidelity, averaged over seeds) the
round would reach at EVERY candidate strength, trained on the labels' full vectors (not only their
argmax); the choice is the lowest candidate whose prediction is within a tolerance (points, one per
head) of the predicted maximum (`choose_strengths`): strength is the cost, so a near-tie goes to the
cheaper strength. `make predictors` picks each head's tolerance on the training split
(`crossval.pick_tolerance`).

- Edge, on `edge_inputs(previous, current)` (the MiniLM embeddings of both prompts, their difference
  and the edit embedding, `TextEmbedder.edit`: the states of the words added and removed) and the
  previous preview's alignment with the new prompt (the scorer's probability of each attribute value
  the prompt names: what the revision still has to change). Two kinds (`PredictorConfig.edge_kind`,
  picked by cross-validation):
  - "mixture": a linear softmax classifier of the edit's kind from the text (the training sessions'
    `edits`: colour, shape, position, background, size, paraphrase, rewrite) and one ridge expert per
    kind, [alignment, 1] -> fidelities; the prediction is the experts weighted by the class probabilities.
  - "mlp": a small MLP on [text inputs, alignment] -> fidelities in (0, 100) (a scaled sigmoid), MSE.
- Cloud: ridge regression (closed form, L2 penalty `ridge`) on [alignment of the preview with the
  prompt, 1] -> fidelities. The alignment is the scorer's probability of each attribute value the
  prompt names (`AlignmentScorer.attribute_probabilities`): the toy world's CLIP score of the preview,
  per attribute, i.e. what the refinement still has to change. A prompt that names no toy-world
  scene has none; the cloud chooser then abstains (the refiner's default strength).

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

from ecdiff.toyworld import ATTRIBUTES

from .prompts import EDITS

# Steps of 0.10 (2-3 preview steps, 5 refinement steps): every candidate costs a full img2img per label,
# and finer steps were within the labels' noise (the 0.05 grid's neighbours differ by one preview step).
STRENGTH_MIN, STRENGTH_STEP = 0.40, 0.10
CANDIDATE_STRENGTHS: tuple[float, ...] = tuple(round(STRENGTH_MIN + i * STRENGTH_STEP, 2) for i in range(6))
PREDICTORS_DIR_NAME = "diffusionx-predictors"
_EDGE, _CLOUD, _CONFIG = "edge.safetensors", "cloud.safetensors", "config.json"
_FIELDS = ("text_dim", "hidden", "ridge", "edge_tolerance", "cloud_tolerance", "edge_kind", "edit_kinds", "expert_ridge")
ALIGNMENT_DIM = len(ATTRIBUTES)  # the scorer's attribute probabilities
EDGE_KINDS = ("mixture", "mlp")


def choose_strengths(predicted: torch.Tensor, tolerance: float) -> list[float]:
    """Per row of predicted fidelities [N, candidates]: the lowest candidate within `tolerance` of the row's max."""
    if predicted.ndim != 2 or predicted.shape[1] != len(CANDIDATE_STRENGTHS):
        raise ValueError(f"expected predicted fidelities [N, {len(CANDIDATE_STRENGTHS)}], got {tuple(predicted.shape)}")
    near = predicted >= predicted.max(dim=1, keepdim=True).values - tolerance
    return [CANDIDATE_STRENGTHS[int(i)] for i in near.to(torch.uint8).argmax(dim=1)]  # argmax: first True


@dataclass(frozen=True)
class PredictorConfig:
    text_dim: int = 384
    hidden: int = 64
    ridge: float = 1.0
    # Points of predicted fidelity given up for a lower strength, per head (training picks them).
    edge_tolerance: float = 1.0
    cloud_tolerance: float = 1.0
    edge_kind: str = "mixture"
    edit_kinds: int = len(EDITS)  # classes of the "mixture" edge head
    expert_ridge: float = 1.0  # L2 penalty of the mixture's per-kind experts

    def __post_init__(self) -> None:
        if (min(self.text_dim, self.hidden, self.edit_kinds) < 1 or not min(self.ridge, self.expert_ridge) >= 0
                or not min(self.edge_tolerance, self.cloud_tolerance) >= 0):
            raise ValueError(f"dimensions must be >= 1, ridge and tolerances >= 0, got {self}")
        if self.edge_kind not in EDGE_KINDS:
            raise ValueError(f"edge_kind must be one of {EDGE_KINDS}, got {self.edge_kind!r}")

    @property
    def edge_dim(self) -> int:
        return 5 * self.text_dim + 3  # edge_inputs


def edge_inputs(text, previous: list[str], current: list[str]) -> torch.Tensor:
    """[e_prev, e_cur, e_cur - e_prev, edit embedding] of each prompt pair (`text`: a TextEmbedder)."""
    e_prev, e_cur = text(previous), text(current)
    return torch.cat([e_prev, e_cur, e_cur - e_prev, text.edit(previous, current)], dim=-1)


class EdgePredictor(nn.Module):
    """Predicted fidelity (points) at every candidate, [N, candidates], of `edge_inputs` [N, edge_dim] and
    the previous preview's alignment with the new prompt [N, ALIGNMENT_DIM]."""

    def __init__(self, config: PredictorConfig) -> None:
        super().__init__()
        self.kind = config.edge_kind
        if self.kind == "mlp":
            self.net = nn.Sequential(nn.Linear(config.edge_dim + ALIGNMENT_DIM, config.hidden), nn.ReLU(),
                                     nn.Linear(config.hidden, len(CANDIDATE_STRENGTHS)))
        else:
            self.net = nn.Linear(config.edge_dim, config.edit_kinds)  # logits of the edit's kind
            self.register_buffer("experts", torch.zeros(config.edit_kinds, ALIGNMENT_DIM + 1, len(CANDIDATE_STRENGTHS)))

    def forward(self, x: torch.Tensor, alignment: torch.Tensor) -> torch.Tensor:
        alignment = alignment.to(x.dtype)
        if self.kind == "mlp":
            return 100.0 * torch.sigmoid(self.net(torch.cat([x, alignment], dim=-1)))
        a = torch.cat([alignment, torch.ones(len(alignment), 1, dtype=x.dtype)], dim=-1)
        per_kind = torch.einsum("na,kac->nkc", a, self.experts)
        return torch.einsum("nk,nkc->nc", self.net(x).softmax(dim=-1), per_kind)


def ridge_fit(x: torch.Tensor, y: torch.Tensor, ridge: float) -> torch.Tensor:
    """argmin_W |x W - y|^2 + ridge |W without its last (bias) row|^2, float64; x ends in a ones column."""
    x, y = x.to(torch.float64), y.to(torch.float64)
    penalty = torch.eye(x.shape[1], dtype=torch.float64) * ridge
    penalty[-1, -1] = 0.0
    return torch.linalg.solve(x.T @ x + penalty, x.T @ y)


class CloudPredictor:
    """Ridge regression head: fidelities [N, candidates] = [alignment, 1] @ weight [A + 1, candidates]."""

    def __init__(self, weight: torch.Tensor) -> None:
        self.weight = weight.to(torch.float64)

    @staticmethod
    def inputs(alignment: torch.Tensor) -> torch.Tensor:
        """[alignment, 1] of the scorer's attribute probabilities [N, A]."""
        alignment = alignment.to(torch.float64)
        return torch.cat([alignment, torch.ones(len(alignment), 1, dtype=torch.float64)], dim=-1)

    @classmethod
    def fit(cls, x: torch.Tensor, y: torch.Tensor, ridge: float) -> "CloudPredictor":
        return cls(ridge_fit(x, y, ridge))

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
    if "edge_kind" not in raw:
        raise ValueError(f"{folder} holds predictors of an older format; retrain them (`make predictors`)")
    config = PredictorConfig(**{k: raw[k] for k in _FIELDS})
    edge = EdgePredictor(config)
    edge.load_state_dict(load_file(str(folder / _EDGE)))
    return Predictors(config, edge.eval(), CloudPredictor(load_file(str(folder / _CLOUD))["weight"]))
