"""CloudDenoiser over grpc.aio: validate, run the cloud phase on the shared engine, stream events.

Requests queue in the engine instead of being refused: RESOURCE_EXHAUSTED only when its queue is
full or the request's deadline (the gRPC deadline) cannot be met, with a message saying which.
With a frontier (load-adaptive quality on), an EC-Diff request that allows it offers the engine the
frontier's cheaper points; the handoff says which one was served and why.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from typing import Optional

import grpc

from ecdiff.strategies import Strategy
from ecdiff.strategy_config import Frontier, StrategyDefaults, StrategyParams
from ecdiff.v1 import cloud_pb2, cloud_pb2_grpc
from ecdiff.wire.convert import param_overrides, params_to_proto, step_event
from ecdiff.wire.tensors import to_proto, wire_dtype, wire_encoding

from .cloud_phase import CloudHandoff, CloudJob, CloudStep, RunsCloudPhase
from .deadline import deadline_of
from .errors import RpcError, status_codes
from .identity import ModelIdentity, handoff_refusal
from .logs import request_id
from .validation import RequestLimits, ValidRequest, validate_request

log = logging.getLogger(__name__)
SERVICE_NAME = cloud_pb2.DESCRIPTOR.services_by_name["CloudDenoiser"].full_name


def text_encoder_id(identity: ModelIdentity) -> cloud_pb2.TextEncoderId:
    return cloud_pb2.TextEncoderId(name=identity.text_encoder_name, sha256=identity.text_encoder_sha256)


class CloudServicer(cloud_pb2_grpc.CloudDenoiserServicer):
    """`runner`: where the cloud phase runs, this process's engine (`CloudPhaseRunner`) or Ray Serve
    replicas (`services/ray_runner.py`); both yield the same typed events."""

    def __init__(self, identity: ModelIdentity, defaults: StrategyDefaults, limits: RequestLimits,
                 runner: RunsCloudPhase, frontier: Optional[Frontier] = None) -> None:
        """`frontier`: the ladder of cheaper EC-Diff points to offer the engine (None: adaptive quality off)."""
        self.identity, self.defaults, self.limits, self.runner = identity, defaults, limits, runner
        self.frontier = frontier

    @status_codes
    async def GetModelInfo(self, request, context) -> cloud_pb2.ModelInfo:
        ident = self.identity
        return cloud_pb2.ModelInfo(
            model_name=ident.model_name, description=ident.description, latent_shape=list(ident.latent_shape),
            scheduler_class=ident.scheduler_class, scheduler_config_json=ident.scheduler_config_json,
            scheduler_config_sha256=ident.scheduler_sha256, text_encoder=text_encoder_id(ident),
            guidance_scale=ident.guidance, max_steps=self.limits.max_steps,
            max_prompt_chars=self.limits.max_prompt_chars, random_weights=ident.random_weights,
            added_conditioning=ident.added_conditioning, vae_sha256=ident.vae_sha256)

    @status_codes
    async def Denoise(self, request: cloud_pb2.DenoiseRequest, context):
        valid = validate_request(request.prompt, request.seed, request.num_steps, request.strategy,
                                 param_overrides(request.params), self.limits, self.defaults)
        latents_dtype = wire_dtype(request.latents_dtype)
        encoding = wire_encoding(request.latents_encoding)
        refusal = handoff_refusal(self.identity, valid.strategy_name, valid.switch_step, valid.num_steps)
        if refusal:
            raise RpcError(grpc.StatusCode.FAILED_PRECONDITION, refusal)
        cheaper = self._cheaper(valid) if request.allow_downgrade else []
        job = CloudJob(valid.prompt, valid.seed, valid.num_steps, valid.strategy, latents_every=request.latents_every,
                       cheaper=tuple(strategy for strategy, _ in cheaper))
        log.info("denoise", extra={"fields": {"strategy": valid.strategy_name, "steps": job.num_steps,
                                              "switch_step": valid.switch_step, "seed": job.seed,
                                              "cheaper_points": len(cheaper)}})
        events = self.runner.run(job, deadline_of(context), request_id.get())
        async with contextlib.aclosing(events):
            async for event in events:
                served = valid
                if isinstance(event, CloudHandoff) and event.downgrade is not None:
                    strategy, params = cheaper[event.downgrade.index]
                    served = dataclasses.replace(valid, strategy=strategy, params=params,
                                                 switch_step=strategy.handoff_step(valid.num_steps))
                    log.info("downgraded", extra={"fields": {
                        "cause": event.downgrade.cause, "reason": event.downgrade.reason,
                        "requested": valid.params.as_dict(), "served": params.as_dict(),
                        "cloud_calls": event.cloud_calls}})
                yield self._event(event, served, latents_dtype, encoding, requested=valid)

    def _cheaper(self, valid: ValidRequest) -> list[tuple[Strategy, StrategyParams]]:
        """The frontier's points cheaper than an EC-Diff request, that this model can hand over from."""
        if self.frontier is None or valid.strategy_name != "ecdiff":
            return []
        return [(strategy, params) for strategy, params in self.frontier.cheaper_than(valid.params, valid.num_steps)
                if not handoff_refusal(self.identity, "ecdiff", params.switch_step, valid.num_steps)]

    def _event(self, event, valid: ValidRequest, latents_dtype, encoding: int,
               requested: ValidRequest) -> cloud_pb2.DenoiseEvent:
        """`valid`: the request as served (a cheaper point than `requested` when the engine downgraded it)."""
        if isinstance(event, CloudStep):
            step = step_event(event.record)
            if event.latents is not None:
                step.latents.CopyFrom(to_proto(event.latents, latents_dtype, encoding))
            return cloud_pb2.DenoiseEvent(step=step)
        assert isinstance(event, CloudHandoff)
        ident = self.identity
        return cloud_pb2.DenoiseEvent(handoff=cloud_pb2.Handoff(
            step=event.step, num_steps=valid.num_steps, latents=to_proto(event.latents, latents_dtype, encoding),
            strategy=valid.strategy_name, params=params_to_proto(valid.params),
            scheduler_class=ident.scheduler_class, scheduler_config_sha256=ident.scheduler_sha256,
            timesteps=list(event.timesteps), guidance_scale=ident.guidance,
            text_encoder=text_encoder_id(ident), prompt=valid.prompt, seed=valid.seed,
            cloud_calls=event.cloud_calls, approx_steps=event.approx_steps,
            cloud_compute_seconds=event.compute_seconds, model_name=ident.model_name,
            added_conditioning=ident.added_conditioning, vae_sha256=ident.vae_sha256,
            cloud_queue_seconds=event.queue_seconds, downgraded=event.downgrade is not None,
            requested_params=params_to_proto(requested.params) if event.downgrade is not None else None,
            downgrade_reason=event.downgrade.reason if event.downgrade is not None else "",
            resumed_at=event.resumed_at))
