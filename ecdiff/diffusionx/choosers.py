"""Strength choosers: the trained predictors behind plain callables the engines call.

`EdgeStrength(previous_prompt, prompt, previous_images) -> strength` on the edge, before a revision
round; `CloudStrength(prompt, preview_images) -> strength` on the cloud, before the refinement.
Both return a candidate strength (0.40..0.90, step 0.10): the lowest one whose predicted fidelity is
within that head's tolerance of the predicted maximum. Both read what the image already shows of the
prompt (the scorer's attribute probabilities), so both abstain (None: the engine's default) for a
prompt that names no toy-world scene.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch

from .embeddings import TextEmbedder
from .predictors import CloudPredictor, Predictors, choose_strengths, edge_inputs, load_predictors

EdgeStrengthFn = Callable[[str, str, torch.Tensor], Optional[float]]
CloudStrengthFn = Callable[[str, torch.Tensor], Optional[float]]


def _alignment(scorer, images: torch.Tensor, prompt: str) -> Optional[torch.Tensor]:
    try:
        return scorer.attribute_probabilities(images, [prompt])
    except ValueError:  # the prompt names no toy-world scene
        return None


class EdgeStrength:
    def __init__(self, predictors: Predictors, text: TextEmbedder, scorer) -> None:
        self.predictors, self.text, self.scorer = predictors, text, scorer

    @torch.no_grad()
    def __call__(self, previous: str, prompt: str, previous_images: torch.Tensor) -> Optional[float]:
        alignment = _alignment(self.scorer, previous_images, prompt)
        if alignment is None:
            return None
        predicted = self.predictors.edge(edge_inputs(self.text, [previous], [prompt]), alignment)
        return choose_strengths(predicted, self.predictors.config.edge_tolerance)[0]


class CloudStrength:
    def __init__(self, predictors: Predictors, scorer) -> None:
        self.predictors, self.scorer = predictors, scorer

    @torch.no_grad()
    def __call__(self, prompt: str, images: torch.Tensor) -> Optional[float]:
        alignment = _alignment(self.scorer, images, prompt)
        if alignment is None:
            return None
        return choose_strengths(self.predictors.cloud(CloudPredictor.inputs(alignment)),
                                self.predictors.config.cloud_tolerance)[0]


def load_choosers(folder: Optional[str] = None) -> tuple[EdgeStrength, CloudStrength]:
    """Both choosers from the shipped (or given) predictor folder; FileNotFoundError when absent."""
    from ecdiff.models import load_scorer

    predictors = load_predictors(folder)
    scorer = load_scorer()
    return EdgeStrength(predictors, TextEmbedder(), scorer), CloudStrength(predictors, scorer)
