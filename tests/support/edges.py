"""A further edge server on a running `BackgroundServices`' loop, for a test's own settings or model."""

from __future__ import annotations

import contextlib
import dataclasses

from ecdiff.services.config import EdgeConfig
from ecdiff.services.server import start_edge


@contextlib.contextmanager
def extra_edge(services, model, **config):
    """Yield a started edge (cloud: `services`' cloud unless `cloud=` says otherwise); stopped at exit."""
    config.setdefault("cloud", services.cloud_target)
    edge = services.call(start_edge(EdgeConfig(port=0, **config), model))
    try:
        yield edge
    finally:
        services.call(edge.stop(0))


def toy_world_named(model):
    """The tiny model under a toy-world model's name: the edge treats it as one (its notices)."""
    return dataclasses.replace(model, name=f"toyworld-{model.role}")
