"""EdgeDenoiser over grpc.aio: ask the cloud for the cloud phase, finish on the edge, decode.

Generate: validate -> CloudDenoiser.Denoise (through the shaped link) -> check the handoff ->
EdgePhaseRunner in a worker thread -> Result. Faults never cost the user the image: a stream that
breaks mid-way is finished from the last latent received (or edge-only), marked degraded; a
cloud unreachable at the start gives edge-only with a notice, or UNAVAILABLE with require_cloud.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import time
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import AsyncIterator, Optional

import grpc
import torch

from ecdiff.conventions import DEFAULT_NUM_STEPS
from ecdiff.loading import LoadedModel
from ecdiff.strategies import EdgeOnly, HybridSD, StepKind
from ecdiff.strategy_config import StrategyDefaults
from ecdiff.v1 import cloud_pb2, cloud_pb2_grpc, edge_pb2, edge_pb2_grpc
from ecdiff.wire.convert import STEP_KINDS, param_overrides, params_to_proto
from ecdiff.wire.tensors import TensorError, from_proto, to_proto, wire_dtype

from .admission import Admission
from .config import CHANNEL_OPTIONS, MAX_LATENT_ELEMENTS
from .edge_phase import EdgeDecoding, EdgeJob, EdgeOutcome, EdgePhaseRunner, EdgeStep
from .errors import RpcError, admitted
from .identity import HandoffCompat, identity_of, incompatibility, timesteps_for
from .link import Link, LinkConfig
from .shaped import shaped_stream
from .threads import events_from_thread
from .validation import RequestLimits, ValidRequest, validate_request

log = logging.getLogger(__name__)
SERVICE_NAME = edge_pb2.DESCRIPTOR.services_by_name["EdgeDenoiser"].full_name
# Reconnect quickly after the cloud comes back (gRPC's default backoff grows to minutes).
CLOUD_CHANNEL_OPTIONS = CHANNEL_OPTIONS + (
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2000),
)


@dataclass
class CloudPhase:
    """What the edge received from the cloud; filled while the stream runs."""

    handoff: Optional[cloud_pb2.Handoff] = None
    handoff_latents: Optional[torch.Tensor] = None
    checkpoint: Optional[tuple[int, torch.Tensor]] = None  # (step, latent entering it)
    events: int = 0
    cloud_calls: int = 0
    approx_steps: int = 0
    step_seconds: float = 0.0
    bytes_to_cloud: int = 0
    bytes_from_cloud: int = 0
    wall_seconds: float = 0.0
    failure: Optional[str] = None

    @property
    def compute_seconds(self) -> float:
        return self.handoff.cloud_compute_seconds if self.handoff is not None else self.step_seconds


@dataclass
class EdgePlan:
    job: EdgeJob
    degraded_reason: str = ""
    notices: list[str] = field(default_factory=list)


class EdgeServicer(edge_pb2_grpc.EdgeDenoiserServicer):
    """Create inside the running event loop (it opens an aio channel to the cloud)."""

    def __init__(self, model: LoadedModel, defaults: StrategyDefaults, limits: RequestLimits,
                 admission: Admission, executor: Executor, cloud_target: str, link: LinkConfig,
                 checkpoint_every: int, cloud_event_timeout_s: float) -> None:
        self.model, self.defaults, self.limits = model, defaults, limits
        self.identity = identity_of(model)
        self.runner = EdgePhaseRunner(model)
        self.admission, self.executor = admission, executor
        self.cloud_target = cloud_target
        self.channel = grpc.aio.insecure_channel(cloud_target, options=CLOUD_CHANNEL_OPTIONS)
        self.cloud = cloud_pb2_grpc.CloudDenoiserStub(self.channel)
        # One link per direction, shared by concurrent requests like a real device's uplink.
        self.uplink, self.downlink = Link(link), Link(link)
        self.checkpoint_every = checkpoint_every
        self.cloud_event_timeout_s = cloud_event_timeout_s

    async def close(self) -> None:
        await self.channel.close()

    # --- RPCs -------------------------------------------------------------------------------

    async def Generate(self, request: edge_pb2.GenerateRequest, context):
        try:
            async for event in self._generate(request, context):
                yield event
        except RpcError as exc:
            await context.abort(exc.code, exc.message)

    async def ContinueFromHandoff(self, request: edge_pb2.ContinueRequest, context):
        try:
            async for event in self._continue(request):
                yield event
        except RpcError as exc:
            await context.abort(exc.code, exc.message)

    # --- Generate ---------------------------------------------------------------------------

    async def _generate(self, request: edge_pb2.GenerateRequest, context) -> AsyncIterator[edge_pb2.GenerateEvent]:
        try:
            valid = validate_request(request.prompt, request.seed, request.num_steps or DEFAULT_NUM_STEPS,
                                     request.strategy, param_overrides(request.params), self.limits, self.defaults)
            wire_dtype(request.transfer_dtype)
        except (ValueError, TensorError) as exc:
            raise RpcError(grpc.StatusCode.INVALID_ARGUMENT, str(exc)) from None
        checkpoint_every = request.checkpoint_every if request.HasField("checkpoint_every") else self.checkpoint_every
        with admitted(self.admission):
            started = time.perf_counter()
            phase = CloudPhase()
            if valid.switch_step > 0:
                async for event in self._cloud_phase(valid, checkpoint_every, request.transfer_dtype, phase, context):
                    yield event
                if phase.failure is not None and phase.events == 0 and request.require_cloud:
                    raise RpcError(grpc.StatusCode.UNAVAILABLE,
                                   f"cloud {self.cloud_target} unreachable ({phase.failure}) and require_cloud is set")
            plan = self._plan(valid, phase, request.preview_every)
            for notice in plan.notices:
                log.warning("notice", extra={"fields": {"notice": notice}})
                yield edge_pb2.GenerateEvent(notice=edge_pb2.Notice(message=notice))
            outcome: list[EdgeOutcome] = []
            async for event in self._edge_phase(plan.job, outcome):
                yield event
            summary = self._summary(valid, plan, phase, outcome[0], time.perf_counter() - started)
            yield self._result(outcome[0], summary, request.return_latents)

    async def _cloud_phase(self, valid: ValidRequest, checkpoint_every: int, transfer_dtype: int,
                           phase: CloudPhase, context) -> AsyncIterator[edge_pb2.GenerateEvent]:
        request = cloud_pb2.DenoiseRequest(
            prompt=valid.prompt, seed=valid.seed, num_steps=valid.num_steps, strategy=valid.strategy_name,
            params=params_to_proto(valid.params), latents_every=checkpoint_every,
            latents_dtype=transfer_dtype)
        started = time.perf_counter()
        try:
            async for message in shaped_stream(self.cloud.Denoise, request, self.uplink, self.downlink, phase,
                                               context.time_remaining(), self.cloud_event_timeout_s):
                phase.events += 1
                if message.HasField("step"):
                    step = message.step
                    phase.cloud_calls += step.kind == STEP_KINDS[StepKind.CLOUD]
                    phase.approx_steps += step.kind == STEP_KINDS[StepKind.APPROX]
                    phase.step_seconds += step.seconds
                    if step.HasField("latents"):
                        phase.checkpoint = (step.index + 1, self._latents(step.latents, "step latents"))
                    yield edge_pb2.GenerateEvent(progress=edge_pb2.Progress(
                        phase=edge_pb2.PHASE_CLOUD, step=step.index, total_steps=valid.num_steps, kind=step.kind))
                else:
                    self._accept_handoff(message.handoff, expected=valid)
                    phase.handoff = message.handoff
                    phase.handoff_latents = self._latents(message.handoff.latents, "handoff.latents")
            if phase.handoff is None:
                phase.failure = "the cloud stream ended without a handoff"
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.INVALID_ARGUMENT:
                raise RpcError(exc.code(), f"the cloud refused the request: {exc.details()}") from None
            phase.failure = f"{exc.code().name}: {exc.details()}"
        except asyncio.TimeoutError:
            phase.failure = f"no event from the cloud for {self.cloud_event_timeout_s:g} s"
        phase.wall_seconds = time.perf_counter() - started

    def _plan(self, valid: ValidRequest, phase: CloudPhase, preview_every: int) -> EdgePlan:
        common = dict(prompt=valid.prompt, seed=valid.seed, num_steps=valid.num_steps, preview_every=preview_every)
        if valid.switch_step == 0:
            return EdgePlan(EdgeJob(strategy=valid.strategy, start=0, latents=None, guidance=self.model.guidance, **common))
        if phase.handoff is not None:
            return EdgePlan(EdgeJob(strategy=valid.strategy, start=phase.handoff.step, latents=phase.handoff_latents,
                                    guidance=phase.handoff.guidance_scale, **common))
        if phase.checkpoint is not None:
            step, latents = phase.checkpoint
            reason = (f"cloud stream broke mid-way ({phase.failure}); the edge finished from the last latent it "
                      f"received (entering step {step} of {valid.num_steps})")
            job = EdgeJob(strategy=HybridSD(step), start=step, latents=latents, guidance=self.model.guidance, **common)
        else:
            where = "unreachable" if phase.events == 0 else "stream broke before any latent arrived"
            reason = f"cloud {self.cloud_target} {where} ({phase.failure}); generated edge-only"
            job = EdgeJob(strategy=EdgeOnly(), start=0, latents=None, guidance=self.model.guidance, **common)
        return EdgePlan(job, degraded_reason=reason, notices=[reason])

    # --- shared by Generate and ContinueFromHandoff -----------------------------------------

    async def _edge_phase(self, job: EdgeJob, outcome: list) -> AsyncIterator[edge_pb2.GenerateEvent]:
        events = events_from_thread(self.executor, functools.partial(self.runner.finish, job))
        async with contextlib.aclosing(events):
            async for event in events:
                if isinstance(event, EdgeStep):
                    r = event.record
                    yield edge_pb2.GenerateEvent(progress=edge_pb2.Progress(
                        phase=edge_pb2.PHASE_EDGE, step=r.index, total_steps=job.num_steps,
                        kind=STEP_KINDS[r.kind], preview_png=event.preview_png))
                elif isinstance(event, EdgeDecoding):
                    yield edge_pb2.GenerateEvent(progress=edge_pb2.Progress(
                        phase=edge_pb2.PHASE_DECODE, step=-1, total_steps=job.num_steps))
                else:
                    outcome.append(event)

    def _summary(self, valid: ValidRequest, plan: EdgePlan, phase: CloudPhase, outcome: EdgeOutcome,
                 total_seconds: float) -> edge_pb2.Summary:
        handoff = phase.handoff
        contacted = valid.switch_step > 0
        return edge_pb2.Summary(
            strategy=valid.strategy_name, params=params_to_proto(valid.params), num_steps=valid.num_steps,
            handoff_step=plan.job.start, cloud_compute_seconds=phase.compute_seconds,
            transfer_seconds=max(0.0, phase.wall_seconds - phase.compute_seconds) if contacted else 0.0,
            edge_compute_seconds=outcome.compute_seconds, decode_seconds=outcome.decode_seconds,
            total_seconds=total_seconds,
            cloud_calls=handoff.cloud_calls if handoff is not None else phase.cloud_calls,
            approx_steps=handoff.approx_steps if handoff is not None else phase.approx_steps,
            edge_calls=outcome.edge_calls, bytes_to_cloud=phase.bytes_to_cloud,
            bytes_from_cloud=phase.bytes_from_cloud, degraded=bool(plan.degraded_reason),
            degraded_reason=plan.degraded_reason, cloud_model=handoff.model_name if handoff is not None else "",
            edge_model=self.identity.model_name)

    @staticmethod
    def _result(outcome: EdgeOutcome, summary: edge_pb2.Summary, return_latents: bool) -> edge_pb2.GenerateEvent:
        result = edge_pb2.Result(image_png=outcome.image_png, summary=summary)
        if return_latents:
            result.latents.CopyFrom(to_proto(outcome.latents, torch.float32))
        return edge_pb2.GenerateEvent(result=result)

    # --- ContinueFromHandoff ----------------------------------------------------------------

    async def _continue(self, request: edge_pb2.ContinueRequest) -> AsyncIterator[edge_pb2.GenerateEvent]:
        if not request.HasField("handoff"):
            raise RpcError(grpc.StatusCode.INVALID_ARGUMENT, "handoff is missing")
        handoff = request.handoff
        valid = self._accept_handoff(handoff, expected=None)
        latents = self._latents(handoff.latents, "handoff.latents")
        with admitted(self.admission):
            started = time.perf_counter()
            phase = CloudPhase(handoff=handoff, handoff_latents=latents)
            job = EdgeJob(prompt=valid.prompt, seed=valid.seed, num_steps=valid.num_steps, strategy=valid.strategy,
                          start=handoff.step, latents=latents, guidance=handoff.guidance_scale)
            outcome: list[EdgeOutcome] = []
            async for event in self._edge_phase(job, outcome):
                yield event
            summary = self._summary(valid, EdgePlan(job), phase, outcome[0], time.perf_counter() - started)
            summary.transfer_seconds = 0.0
            yield self._result(outcome[0], summary, request.return_latents)

    # --- helpers ----------------------------------------------------------------------------

    def _latents(self, message, what: str) -> torch.Tensor:
        try:
            latents = from_proto(message, max_elements=MAX_LATENT_ELEMENTS, what=what)
        except TensorError as exc:
            raise RpcError(grpc.StatusCode.INVALID_ARGUMENT, str(exc)) from None
        if tuple(latents.shape) != self.identity.latent_shape:
            raise RpcError(grpc.StatusCode.FAILED_PRECONDITION,
                           f"{what}: shape {list(latents.shape)} does not match the edge's latent shape "
                           f"{list(self.identity.latent_shape)}")
        return latents.to(torch.float32)

    def _accept_handoff(self, handoff: cloud_pb2.Handoff, expected: Optional[ValidRequest]) -> ValidRequest:
        """Validate a handoff's request fields, then its compatibility with this edge."""
        try:
            valid = validate_request(handoff.prompt, handoff.seed, handoff.num_steps, handoff.strategy,
                                     param_overrides(handoff.params), self.limits, self.defaults)
        except ValueError as exc:
            raise RpcError(grpc.StatusCode.INVALID_ARGUMENT, f"handoff: {exc}") from None
        if handoff.step != valid.switch_step:
            raise RpcError(grpc.StatusCode.INVALID_ARGUMENT,
                           f"handoff.step {handoff.step} is not the strategy's switch step {valid.switch_step}")
        if not (math.isfinite(handoff.guidance_scale) and handoff.guidance_scale >= 0):
            raise RpcError(grpc.StatusCode.INVALID_ARGUMENT, f"handoff.guidance_scale must be >= 0, got {handoff.guidance_scale}")
        if expected is not None and (valid.params, valid.switch_step) != (expected.params, expected.switch_step):
            raise RpcError(grpc.StatusCode.FAILED_PRECONDITION, "the cloud ran different strategy parameters than requested")
        compat = HandoffCompat(
            scheduler_class=handoff.scheduler_class, scheduler_sha256=handoff.scheduler_config_sha256,
            latent_shape=tuple(handoff.latents.shape), text_encoder_sha256=handoff.text_encoder.sha256,
            timesteps=tuple(handoff.timesteps), num_steps=handoff.num_steps)
        reason = incompatibility(compat, self.identity, timesteps_for(self.model, valid.num_steps))
        if reason is not None:
            raise RpcError(grpc.StatusCode.FAILED_PRECONDITION, f"incompatible handoff: {reason}")
        return valid
