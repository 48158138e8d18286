import asyncio
import io

import grpc
import pytest
from PIL import Image

from ecdiff.cli import main
from ecdiff.clients.sdk import AsyncEdgeClient, EdgeClient, generate_request
from ecdiff.v1 import cloud_pb2, cloud_pb2_grpc, edge_pb2, strategy_pb2, tensor_pb2

PARAMS = {"pre_steps": 2, "k": 1, "alpha": 0.5, "switch_step": 4}


def test_sync_client_generates_and_reports(services):
    events = []
    with EdgeClient(services.edge_target) as client:
        client.wait_ready(30)
        assert client.health() == "SERVING" and client.health("ecdiff.v1.EdgeDenoiser") == "SERVING"
        result = client.generate("a red circle", seed=1, num_steps=6, strategy="ecdiff", params=PARAMS,
                                 return_latents=True, on_event=events.append)
    assert Image.open(io.BytesIO(result.image_png)).size == (64, 64)
    s = result.summary
    assert (s.cloud_calls, s.approx_steps, s.edge_calls, s.handoff_step) == (3, 1, 2, 4)
    assert not result.degraded and result.notices == [] and tuple(result.latents.shape) == (1, 4, 8, 8)
    assert sum(e.HasField("progress") for e in events) == 6 + 1  # every step, then the decode


def test_async_client_matches_the_sync_client(services):
    async def run():
        async with AsyncEdgeClient(services.edge_target) as client:
            await client.wait_ready(30)
            assert await client.health() == "SERVING"
            return await client.generate("a red circle", seed=1, num_steps=6, strategy="hybrid",
                                         params={"cloud_steps": 2})

    result = asyncio.run(run())
    with EdgeClient(services.edge_target) as client:
        again = client.generate("a red circle", seed=1, num_steps=6, strategy="hybrid", params={"cloud_steps": 2})
    assert result.image_png == again.image_png and result.summary.edge_calls == 4


def test_sdk_continue_from_handoff(services):
    with grpc.insecure_channel(services.cloud_target) as channel:
        events = list(cloud_pb2_grpc.CloudDenoiserStub(channel).Denoise(cloud_pb2.DenoiseRequest(
            prompt="a red circle", seed=1, num_steps=6, strategy="hybrid",
            params=strategy_pb2.StrategyParams(cloud_steps=2))))
    with EdgeClient(services.edge_target) as client:
        continued = client.continue_from_handoff(events[-1].handoff)
        direct = client.generate("a red circle", seed=1, num_steps=6, strategy="hybrid", params={"cloud_steps": 2},
                                 transfer_encoding="raw")  # the handoff above is raw float32 too
    assert continued.image_png == direct.image_png and continued.summary.edge_calls == 4


def test_sdk_errors_carry_the_status(services):
    with EdgeClient(services.edge_target) as client, pytest.raises(grpc.RpcError) as info:
        client.generate("a red circle", strategy="turbo")
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "unknown strategy" in info.value.details()
    with pytest.raises(ValueError, match="transfer_dtype"):
        generate_request("x", transfer_dtype="int4")
    with pytest.raises(ValueError, match="transfer_encoding"):
        generate_request("x", transfer_encoding="int4")
    request = generate_request("x", checkpoint_every=0, params={"k": 3, "alpha": None})
    assert request.HasField("checkpoint_every") and request.params.HasField("k") and not request.params.HasField("alpha")
    assert not request.HasField("transfer_encoding")  # the edge's default
    assert generate_request("x", transfer_encoding="int8").transfer_encoding == tensor_pb2.ENCODING_INT8_PER_CHANNEL
    assert isinstance(request, edge_pb2.GenerateRequest)
    assert not request.exact_strategy and generate_request("x", exact_strategy=True).exact_strategy


def test_generate_cli(services, tmp_path, capsys):
    out = tmp_path / "img.png"
    code = main(["generate", "a small red circle at the top left on a white background", "--out", str(out),
                 "--edge", services.edge_target, "--steps", "5", "--strategy", "hybrid", "--cloud-steps", "2", "--seed", "3"])
    printed = capsys.readouterr().out
    assert code == 0 and Image.open(out).size == (64, 64)
    assert "cloud compute" in printed and "cloud 2, approximated 0, edge 3" in printed
    code = main(["generate", "x", "--out", str(tmp_path / "bad.png"), "--edge", services.edge_target, "--steps", "5000"])
    assert code == 1 and "INVALID_ARGUMENT: num_steps must be in [1, 500]" in capsys.readouterr().out
    assert not (tmp_path / "bad.png").exists()
