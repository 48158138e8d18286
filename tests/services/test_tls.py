"""TLS and mutual TLS on both services and on the edge->cloud hop, with the credentials `make certs`
writes (its CA, certificates and token files), as in `ecdiff demo --secure`."""

import logging
import stat

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ecdiff.clients.credentials import ChannelSecurity, open_channel, read_token
from ecdiff.services.background import BackgroundServices
from ecdiff.services.config import CloudConfig, EdgeConfig
from ecdiff.services.dev_credentials import write_dev_credentials
from ecdiff.services.server_security import ServerSecurity
from ecdiff.v1 import edge_pb2, edge_pb2_grpc

RECEIVE = [("grpc.max_receive_message_length", 16 << 20)]


def generate(channel, timeout=60):
    return list(edge_pb2_grpc.EdgeDenoiserStub(channel).Generate(edge_pb2.GenerateRequest(
        prompt="a small red circle", seed=5, num_steps=4, strategy="ecdiff", require_cloud=True), timeout=timeout))


def health(channel):
    return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10).status


@pytest.fixture(scope="module")
def mutual(tiny_pair, dev_credentials):
    """Both services on mutual TLS with tokens; the edge reaches the cloud with its certificate and its own token."""
    d = dev_credentials
    server = dict(tls_cert=str(d / "server.pem"), tls_key=str(d / "server-key.pem"), tls_client_ca=str(d / "ca.pem"),
                  predictors="none")
    cloud = CloudConfig(**server, tokens_file=str(d / "cloud-tokens"))
    edge = EdgeConfig(**server, tokens_file=str(d / "edge-tokens"), session_db=":memory:",
                      cloud_tls_ca=str(d / "ca.pem"), cloud_tls_cert=str(d / "client.pem"),
                      cloud_tls_key=str(d / "client-key.pem"), cloud_token_file=str(d / "edge-to-cloud.token"))
    with BackgroundServices(*tiny_pair, cloud, edge) as running:
        yield running


def client(dev_credentials, certificate=True, token=True) -> ChannelSecurity:
    d = dev_credentials
    return ChannelSecurity(str(d / "ca.pem"), str(d / "client.pem") if certificate else None,
                           str(d / "client-key.pem") if certificate else None,
                           read_token(str(d / "user.token")) if token else None)


def test_generate_through_both_services_over_mutual_tls_with_tokens(mutual, dev_credentials):
    with open_channel(mutual.edge_target, RECEIVE, client(dev_credentials)) as channel:
        summary = generate(channel)[-1].result.summary
    assert summary.cloud_calls > 0 and not summary.degraded  # the edge->cloud hop carried the cloud token


def test_without_a_client_certificate_there_is_no_connection(mutual, dev_credentials):
    with open_channel(mutual.edge_target, RECEIVE, client(dev_credentials, certificate=False)) as channel, \
            pytest.raises(grpc.RpcError) as info:
        generate(channel, timeout=10)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE


def test_health_over_mutual_tls_needs_the_certificate_not_a_token(mutual, dev_credentials):
    for target in (mutual.cloud_target, mutual.edge_target):
        with open_channel(target, (), client(dev_credentials, token=False)) as channel:
            assert health(channel) == health_pb2.HealthCheckResponse.SERVING


def test_plaintext_or_another_ca_cannot_reach_a_tls_server(mutual, tmp_path):
    with grpc.insecure_channel(mutual.edge_target) as channel, pytest.raises(grpc.RpcError) as info:
        health(channel)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    stranger = write_dev_credentials(tmp_path / "stranger")  # a CA the services never heard of
    with open_channel(mutual.edge_target, (), client(stranger, token=False)) as channel, \
            pytest.raises(grpc.RpcError) as info:
        health(channel)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE


def test_dev_credentials_keep_keys_and_tokens_private(dev_credentials):
    for name in ("server-key.pem", "client-key.pem", "edge-tokens", "cloud-tokens", "user.token", "edge-to-cloud.token"):
        assert stat.S_IMODE((dev_credentials / name).stat().st_mode) == 0o600, name


def test_an_insecure_start_says_so(tiny_pair, caplog):
    with caplog.at_level(logging.INFO, logger="ecdiff.services.server_security"), \
            BackgroundServices(*tiny_pair, CloudConfig(predictors="none"), EdgeConfig(predictors="none", session_db=":memory:")):
        pass
    assert [r.getMessage() for r in caplog.records].count("insecure: plaintext, no tokens; loopback only") == 2


def test_an_insecure_server_bound_beyond_loopback_warns(caplog):
    with caplog.at_level(logging.INFO, logger="ecdiff.services.server_security"):
        ServerSecurity(CloudConfig(host="0.0.0.0", predictors="none"), "cloud").log_mode()
    [record] = caplog.records
    assert record.levelno == logging.WARNING and "bound beyond loopback" in record.getMessage()
