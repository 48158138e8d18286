"""Prometheus metrics over HTTP on both services, read after real requests."""

import urllib.request

import grpc
from prometheus_client.parser import text_string_to_metric_families

from ecdiff.services.background import BackgroundServices
from ecdiff.services.config import CloudConfig, EdgeConfig
from ecdiff.v1 import edge_pb2, edge_pb2_grpc, strategy_pb2


def scrape(port):
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    return {sample.name + str(sorted(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def test_both_services_export_what_they_count(tiny_pair):
    with BackgroundServices(*tiny_pair, CloudConfig(metrics_port=0, predictors="none"),
                            EdgeConfig(metrics_port=0, predictors="none", session_db=":memory:")) as services:
        with grpc.insecure_channel(services.edge_target, options=[("grpc.max_receive_message_length", 16 << 20)]) as ch:
            stub = edge_pb2_grpc.EdgeDenoiserStub(ch)
            for seed in (1, 2):
                list(stub.Generate(edge_pb2.GenerateRequest(
                    prompt="a small red circle", seed=seed, num_steps=8, strategy="ecdiff",
                    params=strategy_pb2.StrategyParams(pre_steps=2, k=2, alpha=0.5, switch_step=6)), timeout=60))
        cloud = scrape(services.cloud.metrics_port)
        edge = scrape(services.edge.metrics_port)
    # ECDiff(2, 2, 0.5, 6) over 8 steps: real calls at 0, 1, 4 and approximated 2, 3, 5 before the switch.
    assert cloud["ecdiff_unet_samples_total[]"] == 2 * 3
    assert cloud["ecdiff_approximated_steps_total[]"] == 2 * 3
    assert cloud["ecdiff_batch_size_count[]"] == cloud["ecdiff_unet_calls_total[]"] >= 3
    assert cloud["ecdiff_engine_requests_total[('outcome', 'ok')]"] == 2
    assert cloud["ecdiff_engine_queue_length[]"] == 0 and cloud["ecdiff_requests_running[]"] == 0
    assert cloud["ecdiff_rpcs_total[('method', '/ecdiff.v1.CloudDenoiser/Denoise'), ('status', 'OK')]"] == 2
    assert edge["ecdiff_rpcs_total[('method', '/ecdiff.v1.EdgeDenoiser/Generate'), ('status', 'OK')]"] == 2
    assert edge["ecdiff_rpc_seconds_count[('method', '/ecdiff.v1.EdgeDenoiser/Generate')]"] == 2
    assert edge["ecdiff_refused_total[('reason', 'busy')]"] == 0
