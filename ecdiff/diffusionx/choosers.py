"""Strength choosers: the trained predictors behind plain callables the engines call.

`EdgeStrength(previous_prompt, prompt) -> strength` on the edge, before a revision round;
`CloudStrength(prompt, preview_images) -> strength` on the cloud, before the refinement (None for a
prompt that names no toy-world scene: the refiner then uses its default).
Both return a candidate strength (0.40..0.90, step 0.10): the lowest one whose predicted fidelity is
within that head's tolerance of the predicted maximum.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch

from .embeddings import TextEmbedder
from .predictors import CloudPredictor, Predictors, choose_strengths, edge_inputs, load_predictors

EdgeStrengthFn = Callable[[str, str], float]
CloudStrengthFn = Callable[[str, torch.Tensor], Optional[float]]


class EdgeStrength:
    def __init__(self, predictors: Predictors, text: TextEmbedder) -> None:
        self.predictors, self.text = predictors, text

    @torch.no_grad()
    def __call__(self, previous: str, prompt: str) -> float:
        predicted = self.predictors.edge(edge_inputs(self.text, [previous], [prompt]))
        return choose_strengths(predicted, self.predictors.config.edge_tolerance)[0]


class CloudStrength:
    def __init__(self, predictors: Predictors, scorer) -> None:
        self.predictors, self.scorer = predictors, scorer

    @torch.no_grad()
    def __call__(self, prompt: str, images: torch.Tensor) -> Optional[float]:
        """None (abstain: the refiner's default) for a prompt that names no toy-world scene."""
        try:
            alignment = self.scorer.attribute_probabilities(images, [prompt])
        except ValueError:
            return None
        return choose_strengths(self.predictors.cloud(CloudPredictor.inputs(alignment)),
                                self.predictors.config.cloud_tolerance)[0]


def load_choosers(folder: Optional[str] = None) -> tuple[EdgeStrength, CloudStrength]:
    """Both choosers from the shipped (or given) predictor folder; FileNotFoundError when absent."""
    from ecdiff.models import load_scorer

    predictors = load_predictors(folder)
    return EdgeStrength(predictors, TextEmbedder()), CloudStrength(predictors, load_scorer())
