"""Tuning EC-Diff for a model pair: the two-stage greedy search (EC-Diff Algorithms 2 and 3),
the noise-difference curve that proposes p, and the evaluation plumbing both share with the
benchmarks (model pair, prompt files, timed generation). See docs/search.md.
"""

from .config import SearchConfig
from .costs import StepCosts
from .objective import Measurement, ObjectiveTerms, objective_terms
from .params import ECDiffParams

__all__ = [
    "ECDiffParams",
    "Measurement",
    "ObjectiveTerms",
    "SearchConfig",
    "StepCosts",
    "objective_terms",
]
