"""Generate requests as the service tests send them to compare with the in-process core bit for bit."""

from __future__ import annotations

from typing import Optional

from ecdiff.v1 import edge_pb2, strategy_pb2, tensor_pb2


def exact_generate_request(params: Optional[dict] = None, **fields) -> edge_pb2.GenerateRequest:
    """A GenerateRequest whose latents cross the cloud->edge hop raw (float32, lossless) unless
    `fields` say otherwise: the edge's default, int8, is lossy. `params`: StrategyParams fields."""
    fields.setdefault("transfer_encoding", tensor_pb2.ENCODING_RAW)
    if params is not None:
        fields["params"] = strategy_pb2.StrategyParams(**params)
    return edge_pb2.GenerateRequest(**fields)
