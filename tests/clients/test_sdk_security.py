"""The SDK and `ecdiff generate` against an edge that asks for TLS and a token (the cloud asks the
edge for its own token), with the credentials `make certs` writes."""

import argparse
import asyncio

import grpc
import pytest
from PIL import Image
from support.one_thread import one_torch_thread  # noqa: F401  (autouse fixture)

from ecdiff.cli import main
from ecdiff.clients.credentials import TOKEN_ENV, add_security_flags, read_token, security_from_flags
from ecdiff.clients.sdk import AsyncEdgeClient, EdgeClient
from ecdiff.loading import load_model
from ecdiff.services.background import BackgroundServices
from ecdiff.services.config import CloudConfig, EdgeConfig


@pytest.fixture(scope="module")
def secured(dev_credentials):
    d = dev_credentials
    tls = dict(tls_cert=str(d / "server.pem"), tls_key=str(d / "server-key.pem"), predictors="none")
    cloud = CloudConfig(**tls, tokens_file=str(d / "cloud-tokens"))
    edge = EdgeConfig(**tls, tokens_file=str(d / "edge-tokens"), session_db=":memory:",
                      cloud_tls_ca=str(d / "ca.pem"), cloud_token_file=str(d / "edge-to-cloud.token"))
    with BackgroundServices(load_model("cloud", "tiny"), load_model("edge", "tiny"), cloud, edge) as running:
        yield running


def test_sync_and_async_clients_with_tls_and_a_token(secured, dev_credentials):
    ca, token = str(dev_credentials / "ca.pem"), read_token(str(dev_credentials / "user.token"))
    with EdgeClient(secured.edge_target, tls_ca=ca, token=token) as client:
        assert client.health() == "SERVING"
        result = client.generate("a red circle", seed=1, num_steps=4, strategy="ecdiff", require_cloud=True)

    async def run():
        async with AsyncEdgeClient(secured.edge_target, tls_ca=ca, token=token) as client:
            return await client.generate("a red circle", seed=1, num_steps=4, strategy="ecdiff", require_cloud=True)

    assert asyncio.run(run()).image_png == result.image_png and result.summary.cloud_calls > 0


def test_a_client_without_its_token_is_refused(secured, dev_credentials):
    with EdgeClient(secured.edge_target, tls_ca=str(dev_credentials / "ca.pem")) as client, \
            pytest.raises(grpc.RpcError) as info:
        client.generate("a red circle", num_steps=4)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(ValueError, match="needs TLS"):
        EdgeClient(secured.edge_target, token="0123456789abcdef")


def test_generate_cli_with_tls_and_a_token_file(secured, dev_credentials, tmp_path, capsys):
    d, out = dev_credentials, tmp_path / "img.png"
    common = ["--edge", secured.edge_target, "--steps", "4", "--tls-ca", str(d / "ca.pem")]
    assert main(["generate", "a red circle", "--out", str(out), *common, "--token-file", str(d / "user.token")]) == 0
    assert Image.open(out).size == (64, 64)
    capsys.readouterr()
    assert main(["generate", "a red circle", "--out", str(tmp_path / "refused.png"), *common]) == 1
    assert "UNAUTHENTICATED" in capsys.readouterr().out
    assert main(["generate", "x", "--out", str(tmp_path / "x.png"), "--token", "0123456789abcdef"]) == 2
    assert "needs TLS" in capsys.readouterr().out


def test_token_flags_beat_the_environment(tmp_path):
    parser = argparse.ArgumentParser()
    add_security_flags(parser)
    token_file = tmp_path / "token"
    token_file.write_text("from-the-file\n")
    environ = {TOKEN_ENV: "from-the-environment"}
    assert security_from_flags(parser.parse_args(["--tls-ca", str(token_file)]), environ).token == "from-the-environment"
    assert security_from_flags(parser.parse_args(["--tls-ca", str(token_file), "--token-file", str(token_file)]),
                               environ).token == "from-the-file"
    with pytest.raises(ValueError, match="once"):
        security_from_flags(parser.parse_args(["--token", "a", "--token-file", str(token_file)]), environ)
    with pytest.raises(ValueError, match="--tls-ca: no such file"):
        security_from_flags(parser.parse_args(["--tls-ca", str(tmp_path / "missing.pem")]), {})
