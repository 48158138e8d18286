"""EdgeSessions over grpc.aio: DiffusionX sessions, a thin adapter over the transport-free
`ecdiff.diffusionx.engine.PreviewEngine` (previews, history) and the cloud's CloudRefiner.

StartSession / Revise check the request and the session first (so an unknown session is NOT_FOUND
whatever the load), then run an engine round in a worker thread under an admission slot and stream
one Progress per step, then the RoundResult. Finalize reads the session's last preview, calls
CloudRefiner.Refine through the edge's shared `CloudClient` (Progress per cloud step), decodes the
refined latent on the edge and returns it. SessionNotFound -> NOT_FOUND, ValueError ->
INVALID_ARGUMENT (`errors`). A cloud that cannot be reached, breaks off or sends a malformed latent
on Finalize: the last preview, degraded, with a Notice saying why (UNAVAILABLE instead when the
request sets require_cloud); the session stays either way, so Finalize can be retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from concurrent.futures import Executor

import grpc
import torch

from ecdiff.sampling import StepRecord
from ecdiff.diffusionx.engine import PreviewEngine, RoundOutcome
from ecdiff.v1 import diffusionx_pb2, diffusionx_pb2_grpc, edge_pb2
from ecdiff.wire.convert import decoding_progress, progress, step_record
from ecdiff.wire.tensors import TensorError, from_proto, to_proto

from .accounting import CloudTraffic, transfer_seconds
from .admission import Admission
from .cloud_client import CloudClient
from .config import MAX_LATENT_ABS, MAX_LATENT_ELEMENTS
from .errors import RpcError, status_codes
from .threads import events_from_thread

log = logging.getLogger(__name__)
SERVICE_NAME = diffusionx_pb2.DESCRIPTOR.services_by_name["EdgeSessions"].full_name


class EdgeSessionsServicer(diffusionx_pb2_grpc.EdgeSessionsServicer):
    def __init__(self, engine: PreviewEngine, cloud: CloudClient, admission: Admission, executor: Executor) -> None:
        self.engine, self.cloud, self.admission, self.executor = engine, cloud, admission, executor

    async def close(self) -> None:
        self.engine.store.close()

    @status_codes
    async def StartSession(self, request: diffusionx_pb2.StartSessionRequest, context):
        self.engine.check_start(request.prompt, request.seed)  # bad input is refused whatever the load
        async for event in self._round(
                lambda on_step: self.engine.start(request.prompt, request.seed, on_step), request.return_latents):
            yield event

    @status_codes
    async def Revise(self, request: diffusionx_pb2.ReviseRequest, context):
        strength = request.strength if request.HasField("strength") else None
        # An unknown session or bad input is refused whatever the load: before `_round` takes a slot.
        self.engine.check_revision(request.session_id, request.prompt, strength)
        async for event in self._round(
                lambda on_step: self.engine.revise(request.session_id, request.prompt, strength, on_step),
                request.return_latents):
            yield event

    async def _round(self, run, return_latents: bool):
        started = time.perf_counter()
        total = self.engine.config.num_steps
        with self.admission.slot():
            events = events_from_thread(self.executor, lambda emit: emit(run(lambda record, _: emit(record))))
            async with contextlib.aclosing(events):
                async for event in events:
                    if isinstance(event, StepRecord):
                        yield diffusionx_pb2.SessionEvent(progress=progress(edge_pb2.PHASE_EDGE, event, total))
                    else:
                        yield self._result(event, time.perf_counter() - started, return_latents)

    def _result(self, outcome: RoundOutcome, total_seconds: float, return_latents: bool) -> diffusionx_pb2.SessionEvent:
        summary = diffusionx_pb2.RoundSummary(
            round=outcome.round_index, strength=outcome.strength or 0.0, strength_source=outcome.strength_source,
            steps_run=outcome.steps_run, num_steps=outcome.num_steps, edge_compute_seconds=outcome.compute_seconds,
            decode_seconds=outcome.decode_seconds, total_seconds=total_seconds)
        result = diffusionx_pb2.RoundResult(session_id=outcome.session_id, prompt=outcome.prompt,
                                            image_png=outcome.image_png, summary=summary)
        if return_latents:
            result.latents.CopyFrom(to_proto(outcome.latents))
        return diffusionx_pb2.SessionEvent(result=result)

    @status_codes
    async def Finalize(self, request: diffusionx_pb2.FinalizeRequest, context):
        started = time.perf_counter()
        final = self.engine.finalize_input(request.session_id)  # SessionNotFound before any work
        refine = diffusionx_pb2.RefineRequest(prompt=final.prompt, seed=final.seed, round=final.round_index,
                                              latents=to_proto(final.latents), approximate=request.approximate)
        if request.HasField("strength"):
            refine.strength = request.strength
        traffic, refined, failure = CloudTraffic(), None, None
        with self.admission.slot():
            cloud_started = time.perf_counter()
            try:
                async with contextlib.aclosing(self.cloud.refine(refine, traffic, context.time_remaining())) as stream:
                    async for message in stream:
                        if message.HasField("step"):
                            # total_steps 0: the cloud's refinement schedule is only known from Refined.
                            yield diffusionx_pb2.SessionEvent(progress=progress(
                                edge_pb2.PHASE_CLOUD, step_record(message.step)))
                        else:
                            refined = message.refined
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.INVALID_ARGUMENT:
                    raise RpcError(exc.code(), f"the cloud refused the refinement: {exc.details()}") from None
                failure = f"the cloud could not refine: {exc.code().name}: {exc.details()}"
            except asyncio.TimeoutError:
                failure = f"no event from the cloud for {self.cloud.event_timeout_s:g} s"
            except ValueError as exc:  # an unknown step kind
                failure = f"the cloud sent a malformed event: {exc}"
            cloud_wall = time.perf_counter() - cloud_started
            if failure is None and refined is None:
                failure = "the cloud stream ended without a refined latent"
            if failure is None:
                try:
                    latents = from_proto(refined.latents, max_elements=MAX_LATENT_ELEMENTS, max_abs=MAX_LATENT_ABS,
                                         what="refined.latents")
                except TensorError as exc:
                    failure = f"the cloud sent a malformed latent: {exc}"
            outside = [] if failure is not None else \
                [step for step in refined.resumed_at if not 0 <= step < refined.num_steps]
            if outside:
                failure = (f"the cloud sent a malformed event: refined.resumed_at {outside[:3]} outside the "
                           f"refinement's steps [0, {refined.num_steps})")
            if failure is not None:
                if request.require_cloud:
                    raise RpcError(grpc.StatusCode.UNAVAILABLE, f"{failure}; require_cloud is set")
                failure += "; returned the last preview"
                log.warning("notice", extra={"fields": {"notice": failure}})
                yield diffusionx_pb2.SessionEvent(notice=edge_pb2.Notice(message=failure))
                refined, latents = diffusionx_pb2.Refined(strength_source="preview"), final.latents
            yield diffusionx_pb2.SessionEvent(progress=decoding_progress())
            decode_started = time.perf_counter()
            image = await asyncio.get_running_loop().run_in_executor(self.executor, self.engine.decode, latents)
            summary = diffusionx_pb2.RoundSummary(
                round=final.round_index, strength=refined.strength, strength_source=refined.strength_source,
                steps_run=refined.num_steps - refined.start_step, num_steps=refined.num_steps,
                decode_seconds=time.perf_counter() - decode_started, cloud_compute_seconds=refined.cloud_compute_seconds,
                transfer_seconds=transfer_seconds(cloud_wall, refined.cloud_compute_seconds, refined.cloud_queue_seconds),
                total_seconds=time.perf_counter() - started, cloud_calls=refined.cloud_calls,
                approx_steps=refined.approx_steps, bytes_to_cloud=traffic.bytes_to_cloud,
                bytes_from_cloud=traffic.bytes_from_cloud, degraded=failure is not None, degraded_reason=failure or "",
                cloud_resumed_at=refined.resumed_at, cloud_queue_seconds=refined.cloud_queue_seconds)
            result = diffusionx_pb2.RoundResult(session_id=request.session_id, prompt=final.prompt, image_png=image,
                                                summary=summary)
            if request.return_latents:
                result.latents.CopyFrom(to_proto(latents.to(torch.float32)))
            yield diffusionx_pb2.SessionEvent(result=result)
