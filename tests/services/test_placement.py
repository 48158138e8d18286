"""Device, dtype and guidance of the services: flags and settings reach the model, a cloud in one
precision hands over to an edge in another, and a device this machine lacks stops the start."""

import grpc
import pytest
import torch

from ecdiff.cli import main
from ecdiff.loading import load_model
from ecdiff.placement import Placement, PlacementError
from ecdiff.services.background import BackgroundServices
from ecdiff.services.config import CloudConfig, EdgeConfig, load_config
from ecdiff.services.identity import identity_of
from ecdiff.v1 import cloud_pb2, cloud_pb2_grpc, edge_pb2, edge_pb2_grpc, strategy_pb2

BF16 = Placement.resolve("cpu", "bfloat16")


def test_a_float16_cloud_hands_over_to_a_float32_edge():
    cloud = load_model("cloud", "tiny", placement=Placement.resolve("cpu", "float16"), guidance=4.0)
    edge = load_model("edge", "tiny")
    with BackgroundServices(cloud, edge) as running:
        with grpc.insecure_channel(running.edge_target, options=[("grpc.max_receive_message_length", 16 << 20)]) as ch:
            events = list(edge_pb2_grpc.EdgeDenoiserStub(ch).Generate(edge_pb2.GenerateRequest(
                prompt="a small red circle at the top left", seed=3, num_steps=8, strategy="ecdiff",
                params=strategy_pb2.StrategyParams(pre_steps=2, k=2, alpha=0.5, switch_step=6))))
        with grpc.insecure_channel(running.cloud_target) as ch:
            info = cloud_pb2_grpc.CloudDenoiserStub(ch).GetModelInfo(cloud_pb2.ModelInfoRequest())
    summary = events[-1].result.summary
    assert not summary.degraded and summary.cloud_calls > 0 and summary.edge_calls == 2, summary
    assert info.guidance_scale == 4.0  # the cloud's own setting (the handoff carries it to the edge)


def test_identity_agrees_across_float16_and_float32_but_not_bfloat16():
    fp32 = identity_of(load_model("cloud", "tiny"))
    fp16 = identity_of(load_model("cloud", "tiny", placement=Placement.resolve("cpu", "float16")))
    bf16 = identity_of(load_model("cloud", "tiny", placement=BF16))
    assert fp16.text_encoder_sha256 == fp32.text_encoder_sha256 != bf16.text_encoder_sha256


def test_settings_reach_the_config_from_flags_environment_and_file(tmp_path):
    config_file = tmp_path / "services.toml"
    config_file.write_text('[cloud]\ndevice = "cpu"\ndtype = "bf16"\n')
    config = load_config(CloudConfig, "cloud", {"guidance": 5.0}, str(config_file),
                         environ={"ECDIFF_CLOUD_DTYPE": "float16"})
    assert (config.device, config.dtype, config.guidance) == ("cpu", "float16", 5.0)
    assert config.placement() == Placement(torch.device("cpu"), torch.float16)
    for bad, fragment in ({"device": "tpu"}, "device must be"), ({"dtype": "float64"}, "dtype must be"), \
                         ({"guidance": -1.0}, "guidance must be >= 0"):
        with pytest.raises(ValueError, match=fragment):
            load_config(EdgeConfig, "edge", bad, environ={})


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_serve_on_cuda_without_cuda_stops_at_start_with_the_reason(capsys):
    with pytest.raises(PlacementError):
        CloudConfig(device="cuda").placement()
    assert main(["serve", "cloud", "--model", "tiny", "--port", "0", "--device", "cuda"]) == 2
    logged = capsys.readouterr().err  # the services log JSON lines to stderr
    assert "cannot start the cloud service" in logged and "CUDA is not available" in logged
