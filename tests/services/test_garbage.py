"""Serving leaves no reference cycles holding a request's objects: a finished request's run, tensors
and messages are freed by reference counting, not minutes later by a full garbage collection (one
cycle per request was the soak's ~3 MB/min RSS rise, docs/evaluation.md)."""

import gc
from collections import Counter

import grpc
import torch

from ecdiff.services.background import BackgroundServices
from ecdiff.services.config import CloudConfig, EdgeConfig
from ecdiff.strategies import ECDiff
from ecdiff.v1 import diffusionx_pb2, diffusionx_pb2_grpc, edge_pb2_grpc
from support.exact_requests import exact_generate_request
from support.strategy_table import strategy_table

STEPS = 8
PROMPT = "a small red circle at the top left"
STRATEGIES = strategy_table(ECDiff(2, 2, 0.5, 6), cloud_steps=3)


def serve_requests(edge_target):
    """Every strategy through the edge, then a DiffusionX session finalized on the cloud."""
    with grpc.insecure_channel(edge_target, options=[("grpc.max_receive_message_length", 16 << 20)]) as channel:
        generate = edge_pb2_grpc.EdgeDenoiserStub(channel).Generate
        for name, (_, params) in STRATEGIES.items():
            events = list(generate(exact_generate_request(prompt=PROMPT, seed=3, num_steps=STEPS, strategy=name,
                                                          params=params), timeout=120))
            assert events[-1].HasField("result"), name
        sessions = diffusionx_pb2_grpc.EdgeSessionsStub(channel)
        first = list(sessions.StartSession(diffusionx_pb2.StartSessionRequest(prompt=PROMPT, seed=5), timeout=60))
        session = first[-1].result.session_id
        list(sessions.Revise(diffusionx_pb2.ReviseRequest(session_id=session, prompt=PROMPT + " on black",
                                                          strength=0.5), timeout=60))
        final = list(sessions.Finalize(diffusionx_pb2.FinalizeRequest(session_id=session, strength=0.6,
                                                                      approximate=True, require_cloud=True),
                                       timeout=120))
        assert final[-1].HasField("result") and not final[-1].result.summary.degraded


def cyclic_garbage():
    """What a full collection finds unreachable now, by type: our objects and tensors only."""
    gc.set_debug(gc.DEBUG_SAVEALL)  # keep what it finds, to look at
    try:
        gc.collect()
        return Counter(type(o).__qualname__ for o in gc.garbage
                       if isinstance(o, torch.Tensor) or type(o).__module__.split(".")[0] == "ecdiff")
    finally:
        gc.garbage.clear()
        gc.set_debug(0)


def test_requests_through_the_services_leave_no_cyclic_garbage(tiny_pair):
    try:
        services = BackgroundServices(*tiny_pair, CloudConfig(predictors="none", refine_steps=6),
                                      EdgeConfig(predictors="none", preview_steps=4, session_db=":memory:",
                                                 checkpoint_every=2))
        try:
            serve_requests(services.edge_target)  # first requests: one-off caches and imports
            gc.collect()
            gc.disable()  # no automatic collection frees a cycle before we look
            serve_requests(services.edge_target)
        finally:
            services.stop()  # waits for every handler: every request has ended
        assert cyclic_garbage() == Counter()
    finally:
        gc.enable()
