"""Assembly of DiffusionX on the two servers: the engines from the core, the servicers around them,
the strength predictors (shipped, a folder, or "none": fixed default strengths, logged)."""

from __future__ import annotations

import logging
from concurrent.futures import Executor
from pathlib import Path
from typing import Optional

from ecdiff.engine.core import DenoisingEngine
from ecdiff.loading import LoadedModel
from ecdiff.diffusionx.engine import PreviewConfig, PreviewEngine
from ecdiff.diffusionx.refine import RefineConfig, Refiner
from ecdiff.diffusionx.store import SessionStore, StoreConfig
from ecdiff.v1 import diffusionx_pb2_grpc

from . import diffusionx_cloud_servicer, diffusionx_edge_servicer
from .admission import Admission
from .cloud_client import CloudClient
from .config import CloudConfig, EdgeConfig
from .identity import ModelIdentity

log = logging.getLogger(__name__)


def _choosers(spec: Optional[str]):
    """(edge chooser, cloud chooser), or (None, None) when asked for none or none is shipped."""
    from ecdiff.diffusionx.choosers import load_choosers

    if spec == "none":
        return None, None
    try:
        return load_choosers(spec)
    except FileNotFoundError as exc:
        if spec is not None:
            raise
        log.warning("no DiffusionX predictors (%s); using fixed default strengths", exc)
        return None, None


def cloud_refiner(config: CloudConfig, model: LoadedModel, identity: ModelIdentity, engine: DenoisingEngine,
                  executor: Executor):
    _, chooser = _choosers(config.predictors)
    refiner = Refiner(model.pipe, model.guidance, RefineConfig(num_steps=config.refine_steps,
                                                               max_prompt_chars=config.max_prompt_chars), chooser)
    servicer = diffusionx_cloud_servicer.CloudRefinerServicer(refiner, identity.model_name, identity.latent_shape,
                                                              engine, executor)
    return servicer, diffusionx_pb2_grpc.add_CloudRefinerServicer_to_server, diffusionx_cloud_servicer.SERVICE_NAME


def edge_sessions(config: EdgeConfig, model: LoadedModel, cloud: CloudClient, admission: Admission,
                  executor: Executor):
    """`cloud`: the edge's client of the cloud, shared with the EdgeDenoiser."""
    chooser, _ = _choosers(config.predictors)
    path = config.session_db if config.session_db == ":memory:" else Path(config.session_db).expanduser()
    store = SessionStore(StoreConfig(path=path, ttl_s=config.session_ttl_s, max_sessions=config.max_sessions))
    engine = PreviewEngine(model.pipe, model.guidance, store,
                           PreviewConfig(num_steps=config.preview_steps, max_prompt_chars=config.max_prompt_chars), chooser)
    servicer = diffusionx_edge_servicer.EdgeSessionsServicer(engine, cloud, admission, executor)
    return servicer, diffusionx_pb2_grpc.add_EdgeSessionsServicer_to_server, diffusionx_edge_servicer.SERVICE_NAME
