"""The services apply the strategy config (configs/strategy.toml, a --strategy-config path or
$ECDIFF_STRATEGY_CONFIG) to parameters a request omits, on the edge and on the cloud alike."""

import tomllib
from pathlib import Path

import grpc
import pytest

from ecdiff.services.background import BackgroundServices
from ecdiff.services.config import CloudConfig, EdgeConfig
from ecdiff.strategy_config import CONFIG_ENV, DEFAULT_CONFIG_PATH
from ecdiff.v1 import cloud_pb2, cloud_pb2_grpc, edge_pb2, edge_pb2_grpc

PAPER = {"pre_steps": 7, "k": 2, "alpha": 0.5, "switch_step": 37}
# Unlike the paper's and the shipped values, for 12 steps (so nothing is scaled).
CUSTOM = """num_steps = 12
[ecdiff]
pre_steps = 3
k = 1
alpha = 0.25
switch_step = 9
rule = "slope"
beta = 0.125
[hybrid]
cloud_steps = 5
"""


def ecdiff_params(params):
    return {"pre_steps": params.pre_steps, "k": params.k, "alpha": params.alpha, "switch_step": params.switch_step,
            "rule": params.rule, "beta": params.beta}


def config_values(path):
    """What the file says, read here with tomllib (not through the services' loader)."""
    raw = tomllib.loads(Path(path).read_text())
    return raw["num_steps"], raw["ecdiff"], raw["hybrid"]["cloud_steps"]


def served_params(services, num_steps):
    """(EC-Diff params in the edge's summary, HybridSD handoff from the cloud) for requests that omit them."""
    with grpc.insecure_channel(services.edge_target, options=[("grpc.max_receive_message_length", 16 << 20)]) as ch:
        events = list(edge_pb2_grpc.EdgeDenoiserStub(ch).Generate(edge_pb2.GenerateRequest(
            prompt="a red circle", seed=1, num_steps=num_steps, strategy="ecdiff"), timeout=300))
    with grpc.insecure_channel(services.cloud_target) as ch:
        handoff = list(cloud_pb2_grpc.CloudDenoiserStub(ch).Denoise(cloud_pb2.DenoiseRequest(
            prompt="a red circle", seed=1, num_steps=num_steps, strategy="hybrid"), timeout=300))[-1].handoff
    return events[-1].result.summary, handoff


@pytest.mark.parametrize("how", ["shipped", "path", "environment"])
def test_omitted_parameters_come_from_the_strategy_config(tiny_pair, tmp_path, monkeypatch, how):
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    path, configs = DEFAULT_CONFIG_PATH, (CloudConfig(), EdgeConfig())
    if how != "shipped":
        path = tmp_path / "strategy.toml"
        path.write_text(CUSTOM)
    if how == "path":
        configs = (CloudConfig(strategy_config=str(path)), EdgeConfig(strategy_config=str(path)))
    elif how == "environment":
        monkeypatch.setenv(CONFIG_ENV, str(path))
    num_steps, ecdiff, cloud_steps = config_values(path)
    with BackgroundServices(*tiny_pair, *configs) as services:
        summary, handoff = served_params(services, num_steps)
    assert ecdiff_params(summary.params) == ecdiff and summary.strategy == "ecdiff"
    assert summary.handoff_step == ecdiff["switch_step"]
    assert handoff.params.cloud_steps == handoff.step == cloud_steps
    if how != "shipped":
        assert ecdiff != PAPER and ecdiff_params(summary.params) != config_values(DEFAULT_CONFIG_PATH)[1]
