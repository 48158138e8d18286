"""A scene: the five attributes that fully describe one toy-world image."""

from __future__ import annotations

import itertools
from dataclasses import astuple, dataclass

import numpy as np

from ecdiff.toyworld.palette import ATTRIBUTES


@dataclass(frozen=True)
class Scene:
    background: str
    color: str
    shape: str
    size: str
    position: str

    def __post_init__(self) -> None:
        for name, value in zip(ATTRIBUTES, astuple(self)):
            if value not in ATTRIBUTES[name]:
                raise ValueError(f"unknown {name} {value!r}; expected one of {ATTRIBUTES[name]}")

    def as_dict(self) -> dict[str, str]:
        return dict(zip(ATTRIBUTES, astuple(self)))

    def indices(self) -> tuple[int, ...]:
        """Class index of each attribute, in ATTRIBUTES order."""
        return tuple(ATTRIBUTES[name].index(value) for name, value in self.as_dict().items())


def all_scenes() -> list[Scene]:
    """Every scene of the world (3 * 8 * 4 * 2 * 9 = 1728), in a fixed order."""
    return [Scene(*values) for values in itertools.product(*ATTRIBUTES.values())]


def sample_scenes(count: int, rng: np.random.Generator) -> list[Scene]:
    """`count` scenes with every attribute drawn uniformly and independently."""
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    picks = [rng.integers(0, len(classes), size=count) for classes in ATTRIBUTES.values()]
    return [Scene(*(classes[int(p[i])] for classes, p in zip(ATTRIBUTES.values(), picks))) for i in range(count)]
