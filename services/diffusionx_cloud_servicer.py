"""CloudRefiner over grpc.aio: DiffusionX's refinement of the edge's last preview, a thin adapter
over `ecdiff.diffusionx.refine.Refiner` (validate, convert once, run in a worker thread, stream)."""

from __future__ import annotations

import contextlib
import logging
from concurrent.futures import Executor

import grpc

from ecdiff.sampling import StepRecord
from ecdiff.diffusionx.refine import Refinement, Refiner
from ecdiff.v1 import diffusionx_pb2, diffusionx_pb2_grpc
from ecdiff.wire.convert import step_event
from ecdiff.wire.tensors import from_proto, to_proto

from .admission import Admission
from .config import MAX_LATENT_ELEMENTS
from .errors import RpcError, status_codes
from .threads import events_from_thread

log = logging.getLogger(__name__)
SERVICE_NAME = diffusionx_pb2.DESCRIPTOR.services_by_name["CloudRefiner"].full_name


class CloudRefinerServicer(diffusionx_pb2_grpc.CloudRefinerServicer):
    def __init__(self, refiner: Refiner, model_name: str, latent_shape: tuple[int, ...],
                 admission: Admission, executor: Executor) -> None:
        self.refiner, self.model_name, self.latent_shape = refiner, model_name, latent_shape
        self.admission, self.executor = admission, executor

    @status_codes
    async def Refine(self, request: diffusionx_pb2.RefineRequest, context):
        latents = from_proto(request.latents, max_elements=MAX_LATENT_ELEMENTS, what="latents")
        if tuple(latents.shape) != self.latent_shape:
            raise RpcError(grpc.StatusCode.INVALID_ARGUMENT,
                           f"latents: shape {list(latents.shape)} is not the cloud's {list(self.latent_shape)}")
        strength = request.strength if request.HasField("strength") else None

        def job(emit):
            # The core checks its inputs before any model call; a ValueError is INVALID_ARGUMENT.
            emit(self.refiner.refine(request.prompt, request.seed, request.round, latents, strength,
                                     request.approximate, on_step=lambda record, _: emit(record)))

        with self.admission.slot():
            log.info("refine", extra={"fields": {"round": request.round, "approximate": request.approximate}})
            events = events_from_thread(self.executor, job)
            async with contextlib.aclosing(events):
                async for event in events:
                    yield self._event(event)

    def _event(self, event) -> diffusionx_pb2.RefineEvent:
        if isinstance(event, StepRecord):
            return diffusionx_pb2.RefineEvent(step=step_event(event))
        assert isinstance(event, Refinement)
        return diffusionx_pb2.RefineEvent(refined=diffusionx_pb2.Refined(
            latents=to_proto(event.latents), strength=event.strength, strength_source=event.strength_source,
            start_step=event.start_step, num_steps=event.num_steps, cloud_calls=event.cloud_calls,
            approx_steps=event.approx_steps, cloud_compute_seconds=event.compute_seconds, model_name=self.model_name))
