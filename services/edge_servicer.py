"""EdgeDenoiser over grpc.aio: ask the cloud for the cloud phase, finish on the edge, decode.

Generate: validate -> (a toy-world edge: a notice when its caption parser cannot read the prompt)
-> CloudDenoiser.Denoise (through the shared `CloudClient`) -> check the
handoff -> EdgePhaseRunner in a worker thread -> Result. What to run when the stream broke is
`recovery.plan_edge_phase`; what the summary reports is `accounting.summarize`. This module only
converts between the wire and those.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import math
import time
from concurrent.futures import Executor
from typing import AsyncIterator, Optional

import grpc
import torch

from ecdiff.conventions import DEFAULT_NUM_STEPS
from ecdiff.loading import LoadedModel
from ecdiff.strategy_config import StrategyDefaults
from ecdiff.toyworld.captions import canonical_caption
from ecdiff.toyworld.palette import ATTRIBUTES
from ecdiff.toyworld.parser import parse_caption
from ecdiff.toyworld.scene import Scene
from ecdiff.v1 import cloud_pb2, edge_pb2, edge_pb2_grpc
from ecdiff.wire.convert import decoding_progress, param_overrides, params_to_proto, progress, step_record
from ecdiff.wire.tensors import ENCODINGS, from_proto, to_proto, wire_dtype, wire_encoding

from .accounting import CloudStreamTally, Downgraded, ReceivedHandoff, RequestSummary, summarize
from .admission import Admission
from .cloud_client import CloudClient
from .config import MAX_LATENT_ABS, MAX_LATENT_ELEMENTS
from .edge_phase import EdgeDecoding, EdgeJob, EdgeOutcome, EdgePhaseRunner, EdgeStep, NonFiniteLatents
from .errors import RpcError, status_codes
from .identity import HandoffCompat, handoff_refusal, identity_of, incompatibility, timesteps_for
from .recovery import plan_edge_phase
from .threads import events_from_thread
from .validation import RequestLimits, ValidRequest, validate_request

log = logging.getLogger(__name__)
SERVICE_NAME = edge_pb2.DESCRIPTOR.services_by_name["EdgeDenoiser"].full_name


def toy_world_notice(model_name: str, prompt: str) -> Optional[str]:
    """For a toy-world model, a prompt its caption parser cannot read draws nothing meaningful:
    say so, and what the world can draw (the vocabulary from the palette). None otherwise."""
    if not model_name.startswith("toyworld"):
        return None
    try:
        parse_caption(prompt)
        return None
    except ValueError as exc:
        reason = str(exc)
    vocabulary = "; ".join(f"{len(words)} {name}s: {', '.join(words)}" for name, words in ATTRIBUTES.items())
    example = canonical_caption(Scene(*(words[0] for words in ATTRIBUTES.values())))
    return (f"the toy world cannot draw this prompt ({reason}); the image will not follow it. The world draws one "
            f"object on a background, named by one word or phrase of each: {vocabulary}. For example: {example!r}")


def downgrade_notice(valid: ValidRequest, downgraded: Downgraded, cloud_calls: int) -> str:
    """What the user is told when the cloud served a cheaper EC-Diff point than asked for."""
    asked, served = valid.params, downgraded.params
    return (f"the cloud served a cheaper EC-Diff point under load ({downgraded.reason}): p {served.pre_steps}, "
            f"k {served.k}, s {served.switch_step} ({cloud_calls} cloud calls) instead of p {asked.pre_steps}, "
            f"k {asked.k}, s {asked.switch_step}; set exact_strategy to forbid it")


class EdgeServicer(edge_pb2_grpc.EdgeDenoiserServicer):
    def __init__(self, model: LoadedModel, defaults: StrategyDefaults, limits: RequestLimits,
                 admission: Admission, executor: Executor, cloud: CloudClient, checkpoint_every: int,
                 transfer_encoding: str) -> None:
        self.model, self.defaults, self.limits = model, defaults, limits
        self.identity = identity_of(model)
        self.runner = EdgePhaseRunner(model)
        self.admission, self.executor = admission, executor
        self.cloud = cloud
        self.checkpoint_every = checkpoint_every
        self.transfer_encoding = ENCODINGS[transfer_encoding]  # for requests that leave it unset

    # --- Generate ---------------------------------------------------------------------------

    @status_codes
    async def Generate(self, request: edge_pb2.GenerateRequest, context):
        valid = validate_request(request.prompt, request.seed, request.num_steps or DEFAULT_NUM_STEPS,
                                 request.strategy, param_overrides(request.params), self.limits, self.defaults)
        wire_dtype(request.transfer_dtype)
        encoding = wire_encoding(request.transfer_encoding if request.HasField("transfer_encoding")
                                 else self.transfer_encoding)
        self._check_handoff_supported(valid)
        checkpoint_every = request.checkpoint_every if request.HasField("checkpoint_every") else self.checkpoint_every
        with self.admission.slot():
            started = time.perf_counter()
            unreadable = toy_world_notice(self.model.name, valid.prompt)
            if unreadable:
                log.info("notice", extra={"fields": {"notice": unreadable}})
                yield edge_pb2.GenerateEvent(notice=edge_pb2.Notice(message=unreadable))
            tally = CloudStreamTally()
            if valid.switch_step > 0:
                async for event in self._cloud_phase(valid, checkpoint_every, request.transfer_dtype, encoding, tally,
                                                     not request.exact_strategy, context):
                    yield event
            downgraded = tally.handoff.downgraded if tally.handoff is not None else None
            if downgraded is not None:
                notice = downgrade_notice(valid, downgraded, tally.handoff.cloud_calls)
                log.info("notice", extra={"fields": {"notice": notice}})
                yield edge_pb2.GenerateEvent(notice=edge_pb2.Notice(message=notice))
            outcome: list[EdgeOutcome] = []
            while not outcome:  # twice at most: a cloud latent that ends in NaN is retried edge-only
                plan = plan_edge_phase(valid, tally, cloud_target=self.cloud.target, edge_guidance=self.model.guidance,
                                       preview_every=request.preview_every, require_cloud=request.require_cloud)
                if plan.degraded_reason:
                    log.warning("notice", extra={"fields": {"notice": plan.degraded_reason}})
                    yield edge_pb2.GenerateEvent(notice=edge_pb2.Notice(message=plan.degraded_reason))
                try:
                    async for event in self._edge_phase(plan.job, outcome):
                        yield event
                except NonFiniteLatents as exc:
                    if plan.job.latents is None:
                        raise
                    tally.distrust(f"{exc}, from the cloud's latent")
            summary = summarize(tally, outcome[0], handoff_step=plan.job.start, degraded_reason=plan.degraded_reason,
                                contacted_cloud=valid.switch_step > 0, total_seconds=time.perf_counter() - started)
            yield self._result(valid, outcome[0], summary, request.return_latents, tally.handoff)

    async def _cloud_phase(self, valid: ValidRequest, checkpoint_every: int, transfer_dtype: int, encoding: int,
                           tally: CloudStreamTally, allow_downgrade: bool, context) -> AsyncIterator[edge_pb2.GenerateEvent]:
        request = cloud_pb2.DenoiseRequest(
            prompt=valid.prompt, seed=valid.seed, num_steps=valid.num_steps, strategy=valid.strategy_name,
            params=params_to_proto(valid.params), latents_every=checkpoint_every,
            latents_dtype=transfer_dtype, latents_encoding=encoding, allow_downgrade=allow_downgrade)
        started = time.perf_counter()
        try:
            async with contextlib.aclosing(self.cloud.denoise(request, tally, context.time_remaining())) as stream:
                async for message in stream:
                    try:
                        if message.HasField("handoff"):
                            served = self._accept_handoff(message.handoff, expected=valid,
                                                          allow_downgrade=allow_downgrade)
                            tally.add_handoff(self._decoded_handoff(message.handoff, served))
                            continue
                        step = message.step
                        record = step_record(step)
                        latents = self._latents(step.latents, "step latents") if step.HasField("latents") else None
                    except ValueError as exc:  # a malformed latent or step from the cloud: a broken cloud
                        tally.failure = f"the cloud sent a malformed event: {exc}"
                        break
                    tally.add_step(record, latents)
                    yield edge_pb2.GenerateEvent(progress=progress(edge_pb2.PHASE_CLOUD, record, valid.num_steps))
            if tally.handoff is None and tally.failure is None:
                tally.failure = "the cloud stream ended without a handoff"
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.INVALID_ARGUMENT:
                raise RpcError(exc.code(), f"the cloud refused the request: {exc.details()}") from None
            tally.failure = f"{exc.code().name}: {exc.details()}"
        except asyncio.TimeoutError:
            tally.failure = f"no event from the cloud for {self.cloud.event_timeout_s:g} s"
        tally.wall_seconds = time.perf_counter() - started

    # --- shared by Generate and ContinueFromHandoff -----------------------------------------

    async def _edge_phase(self, job: EdgeJob, outcome: list) -> AsyncIterator[edge_pb2.GenerateEvent]:
        events = events_from_thread(self.executor, functools.partial(self.runner.finish, job))
        async with contextlib.aclosing(events):
            async for event in events:
                if isinstance(event, EdgeStep):
                    yield edge_pb2.GenerateEvent(progress=progress(
                        edge_pb2.PHASE_EDGE, event.record, job.num_steps, event.preview_png))
                elif isinstance(event, EdgeDecoding):
                    yield edge_pb2.GenerateEvent(progress=decoding_progress(job.num_steps))
                else:
                    outcome.append(event)

    def _result(self, valid: ValidRequest, outcome: EdgeOutcome, summary: RequestSummary,
                return_latents: bool, handoff: Optional[ReceivedHandoff]) -> edge_pb2.GenerateEvent:
        downgraded = handoff.downgraded if handoff is not None else None
        result = edge_pb2.Result(image_png=outcome.image_png, summary=edge_pb2.Summary(
            strategy=valid.strategy_name, params=params_to_proto(valid.params), num_steps=valid.num_steps,
            edge_model=self.identity.model_name, **dataclasses.asdict(summary)))
        if downgraded is not None:
            result.summary.served_params.CopyFrom(params_to_proto(downgraded.params))
        if return_latents:
            result.latents.CopyFrom(to_proto(outcome.latents, torch.float32))
        return edge_pb2.GenerateEvent(result=result)

    # --- ContinueFromHandoff ----------------------------------------------------------------

    @status_codes
    async def ContinueFromHandoff(self, request: edge_pb2.ContinueRequest, context):
        if not request.HasField("handoff"):
            raise RpcError(grpc.StatusCode.INVALID_ARGUMENT, "handoff is missing")
        valid = self._accept_handoff(request.handoff, expected=None)
        self._check_handoff_supported(valid)
        handoff = self._decoded_handoff(request.handoff, valid)
        with self.admission.slot():
            started = time.perf_counter()
            job = EdgeJob(prompt=valid.prompt, seed=valid.seed, num_steps=valid.num_steps, strategy=valid.strategy,
                          start=handoff.step, latents=handoff.latents, guidance=handoff.guidance)
            outcome: list[EdgeOutcome] = []
            async for event in self._edge_phase(job, outcome):
                yield event
            summary = summarize(CloudStreamTally(handoff=handoff), outcome[0], handoff_step=job.start,
                                degraded_reason="", contacted_cloud=False, total_seconds=time.perf_counter() - started)
            yield self._result(valid, outcome[0], summary, request.return_latents, handoff)

    # --- helpers ----------------------------------------------------------------------------

    def _check_handoff_supported(self, valid: ValidRequest) -> None:
        refusal = handoff_refusal(self.identity, valid.strategy_name, valid.switch_step, valid.num_steps)
        if refusal:
            raise RpcError(grpc.StatusCode.FAILED_PRECONDITION, refusal)

    def _latents(self, message, what: str) -> torch.Tensor:
        latents = from_proto(message, max_elements=MAX_LATENT_ELEMENTS, max_abs=MAX_LATENT_ABS, what=what)
        if tuple(latents.shape) != self.identity.latent_shape:
            raise RpcError(grpc.StatusCode.FAILED_PRECONDITION,
                           f"{what}: shape {list(latents.shape)} does not match the edge's latent shape "
                           f"{list(self.identity.latent_shape)}")
        return latents.to(torch.float32)

    def _decoded_handoff(self, handoff: cloud_pb2.Handoff, served: ValidRequest) -> ReceivedHandoff:
        """An accepted handoff (see `_accept_handoff`, which gives `served`) as the core values the edge
        continues from."""
        downgraded = Downgraded(served.strategy, served.params, handoff.downgrade_reason) if handoff.downgraded else None
        outside = [step for step in handoff.resumed_at if not 0 <= step <= handoff.step]
        if outside:  # from a cloud stream: a broken cloud; in ContinueFromHandoff: INVALID_ARGUMENT
            raise ValueError(f"handoff.resumed_at: {outside[:3]} outside the cloud phase [0, {handoff.step}]")
        return ReceivedHandoff(
            step=handoff.step, latents=self._latents(handoff.latents, "handoff.latents"),
            guidance=handoff.guidance_scale, cloud_calls=handoff.cloud_calls, approx_steps=handoff.approx_steps,
            compute_seconds=handoff.cloud_compute_seconds, model_name=handoff.model_name,
            queue_seconds=handoff.cloud_queue_seconds, downgraded=downgraded,
            resumed_at=tuple(handoff.resumed_at))

    def _accept_handoff(self, handoff: cloud_pb2.Handoff, expected: Optional[ValidRequest],
                        allow_downgrade: bool = False) -> ValidRequest:
        """Validate a handoff's request fields, then its compatibility with this edge; the request it
        was produced with (a cheaper EC-Diff point than `expected` only when the cloud says it
        downgraded, `allow_downgrade` permits it and it names `expected`'s as the point asked for)."""
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
            if not (allow_downgrade and handoff.downgraded and valid.strategy_name == expected.strategy_name == "ecdiff"
                    and param_overrides(handoff.requested_params) == expected.params.as_dict()):
                raise RpcError(grpc.StatusCode.FAILED_PRECONDITION,
                               "the cloud ran different strategy parameters than requested")
        compat = HandoffCompat(
            scheduler_class=handoff.scheduler_class, scheduler_sha256=handoff.scheduler_config_sha256,
            latent_shape=tuple(handoff.latents.shape), text_encoder_sha256=handoff.text_encoder.sha256,
            added_conditioning=handoff.added_conditioning, vae_sha256=handoff.vae_sha256, timesteps=tuple(handoff.timesteps), num_steps=handoff.num_steps)
        reason = incompatibility(compat, self.identity, timesteps_for(self.model, valid.num_steps))
        if reason is not None:
            raise RpcError(grpc.StatusCode.FAILED_PRECONDITION, f"incompatible handoff: {reason}")
        return valid
