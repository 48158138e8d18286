"""Assembly of DiffusionX on the two servers: the engines from the core, the servicers around them,
with the strength predictors the config names (services/strength_choosers.py)."""

from __future__ import annotations

from concurrent.futures import Executor
from pathlib import Path

from ecdiff.engine.core import DenoisingEngine
from ecdiff.loading import LoadedModel
from ecdiff.diffusionx.engine import PreviewConfig, PreviewEngine
from ecdiff.diffusionx.refine import RefineConfig
from ecdiff.diffusionx.store import SessionStore, StoreConfig
from ecdiff.v1 import diffusionx_pb2_grpc

from . import diffusionx_cloud_servicer, diffusionx_edge_servicer
from .admission import Admission
from .cloud_client import CloudClient
from .config import CloudConfig, EdgeConfig
from .identity import ModelIdentity
from .refine_phase import RefinePhaseRunner, RunsRefinePhase, cloud_refiner_of
from .strength_choosers import choosers


def refine_config(config: CloudConfig) -> RefineConfig:
    return RefineConfig(num_steps=config.refine_steps, max_prompt_chars=config.max_prompt_chars)


def refiner_service(runner: RunsRefinePhase, identity: ModelIdentity):
    """CloudRefiner over `runner` (where the refinement runs), as `_start` takes further services."""
    servicer = diffusionx_cloud_servicer.CloudRefinerServicer(runner, identity.model_name, identity.latent_shape)
    return servicer, diffusionx_pb2_grpc.add_CloudRefinerServicer_to_server, diffusionx_cloud_servicer.SERVICE_NAME


def cloud_refiner(config: CloudConfig, model: LoadedModel, identity: ModelIdentity, engine: DenoisingEngine,
                  executor: Executor):
    """CloudRefiner on a plain cloud: refinements run on its shared engine."""
    runner = RefinePhaseRunner(cloud_refiner_of(model, refine_config(config), config.predictors), engine, executor)
    return refiner_service(runner, identity)


def edge_sessions(config: EdgeConfig, model: LoadedModel, cloud: CloudClient, admission: Admission,
                  executor: Executor):
    """`cloud`: the edge's client of the cloud, shared with the EdgeDenoiser."""
    chooser, _ = choosers(config.predictors)
    path = config.session_db if config.session_db == ":memory:" else Path(config.session_db).expanduser()
    store = SessionStore(StoreConfig(path=path, ttl_s=config.session_ttl_s, max_sessions=config.max_sessions))
    engine = PreviewEngine(model.pipe, model.guidance, store,
                           PreviewConfig(num_steps=config.preview_steps, max_prompt_chars=config.max_prompt_chars), chooser)
    servicer = diffusionx_edge_servicer.EdgeSessionsServicer(engine, cloud, admission, executor)
    return servicer, diffusionx_pb2_grpc.add_EdgeSessionsServicer_to_server, diffusionx_edge_servicer.SERVICE_NAME
