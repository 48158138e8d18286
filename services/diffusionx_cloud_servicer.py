"""CloudRefiner over grpc.aio: DiffusionX's refinement of the edge's last preview, a thin adapter:
validate and convert once, run the refinement (img2img from the preview) where the cloud runs it
(this process's shared engine beside the Denoise requests, or a Ray Serve replica's:
`services/refine_phase.py`), stream."""

from __future__ import annotations

import contextlib
import logging

import grpc

from ecdiff.diffusionx.refine import Refinement
from ecdiff.v1 import diffusionx_pb2, diffusionx_pb2_grpc
from ecdiff.wire.convert import step_event
from ecdiff.wire.tensors import from_proto, to_proto

from .config import MAX_LATENT_ABS, MAX_LATENT_ELEMENTS
from .deadline import deadline_of
from .errors import RpcError, status_codes
from .logs import request_id
from .refine_phase import RefineJob, RunsRefinePhase

log = logging.getLogger(__name__)
SERVICE_NAME = diffusionx_pb2.DESCRIPTOR.services_by_name["CloudRefiner"].full_name


class CloudRefinerServicer(diffusionx_pb2_grpc.CloudRefinerServicer):
    def __init__(self, runner: RunsRefinePhase, model_name: str, latent_shape: tuple[int, ...]) -> None:
        self.runner, self.model_name, self.latent_shape = runner, model_name, latent_shape

    @status_codes
    async def Refine(self, request: diffusionx_pb2.RefineRequest, context):
        latents = from_proto(request.latents, max_elements=MAX_LATENT_ELEMENTS, max_abs=MAX_LATENT_ABS, what="latents")
        if tuple(latents.shape) != self.latent_shape:
            raise RpcError(grpc.StatusCode.INVALID_ARGUMENT,
                           f"latents: shape {list(latents.shape)} is not the cloud's {list(self.latent_shape)}")
        strength = request.strength if request.HasField("strength") else None
        job = RefineJob(request.prompt, request.seed, request.round, latents, strength, request.approximate)
        log.info("refine", extra={"fields": {"round": request.round, "approximate": request.approximate}})
        events = self.runner.run(job, deadline_of(context), request_id.get())
        async with contextlib.aclosing(events):
            async for event in events:
                if isinstance(event, Refinement):
                    yield self._refined(event)
                else:
                    yield diffusionx_pb2.RefineEvent(step=step_event(event.record))

    def _refined(self, event: Refinement) -> diffusionx_pb2.RefineEvent:
        return diffusionx_pb2.RefineEvent(refined=diffusionx_pb2.Refined(
            latents=to_proto(event.latents), strength=event.strength, strength_source=event.strength_source,
            start_step=event.start_step, num_steps=event.num_steps, cloud_calls=event.cloud_calls,
            approx_steps=event.approx_steps, cloud_compute_seconds=event.compute_seconds, model_name=self.model_name,
            resumed_at=event.resumed_at, cloud_queue_seconds=event.queue_seconds))
