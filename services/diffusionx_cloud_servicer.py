"""CloudRefiner over grpc.aio: DiffusionX's refinement of the edge's last preview, a thin adapter
over `ecdiff.diffusionx.refine.Refiner`: validate, convert once, prepare in a worker thread, run the
refinement (img2img from the preview) on the cloud's shared engine beside the Denoise requests, stream."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from concurrent.futures import Executor

import grpc

from ecdiff.diffusionx.refine import Refinement, Refiner
from ecdiff.engine.aio import EngineStep, engine_events
from ecdiff.engine.core import DenoisingEngine
from ecdiff.v1 import diffusionx_pb2, diffusionx_pb2_grpc
from ecdiff.wire.convert import step_event
from ecdiff.wire.tensors import from_proto, to_proto

from .config import MAX_LATENT_ABS, MAX_LATENT_ELEMENTS
from .deadline import deadline_of
from .errors import RpcError, status_codes
from .logs import request_id

log = logging.getLogger(__name__)
SERVICE_NAME = diffusionx_pb2.DESCRIPTOR.services_by_name["CloudRefiner"].full_name


class CloudRefinerServicer(diffusionx_pb2_grpc.CloudRefinerServicer):
    def __init__(self, refiner: Refiner, model_name: str, latent_shape: tuple[int, ...],
                 engine: DenoisingEngine, executor: Executor) -> None:
        self.refiner, self.model_name, self.latent_shape = refiner, model_name, latent_shape
        self.engine, self.executor = engine, executor

    @status_codes
    async def Refine(self, request: diffusionx_pb2.RefineRequest, context):
        latents = from_proto(request.latents, max_elements=MAX_LATENT_ELEMENTS, max_abs=MAX_LATENT_ABS, what="latents")
        if tuple(latents.shape) != self.latent_shape:
            raise RpcError(grpc.StatusCode.INVALID_ARGUMENT,
                           f"latents: shape {list(latents.shape)} is not the cloud's {list(self.latent_shape)}")
        strength = request.strength if request.HasField("strength") else None

        log.info("refine", extra={"fields": {"round": request.round, "approximate": request.approximate}})
        # The core checks its inputs (a ValueError is INVALID_ARGUMENT) before any model call.
        plan = await asyncio.get_running_loop().run_in_executor(self.executor, lambda: self.refiner.prepare(
            request.prompt, request.seed, request.round, latents, strength, request.approximate))
        events = engine_events(self.engine, plan.run, plan.run.num_steps, deadline=deadline_of(context),
                               request_id=request_id.get())
        async with contextlib.aclosing(events):
            async for event in events:
                if isinstance(event, EngineStep):
                    yield diffusionx_pb2.RefineEvent(step=step_event(event.record))
                else:
                    yield self._refined(plan.refinement(event.state.latents))

    def _refined(self, event: Refinement) -> diffusionx_pb2.RefineEvent:
        return diffusionx_pb2.RefineEvent(refined=diffusionx_pb2.Refined(
            latents=to_proto(event.latents), strength=event.strength, strength_source=event.strength_source,
            start_step=event.start_step, num_steps=event.num_steps, cloud_calls=event.cloud_calls,
            approx_steps=event.approx_steps, cloud_compute_seconds=event.compute_seconds, model_name=self.model_name))
