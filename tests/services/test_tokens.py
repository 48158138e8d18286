"""Bearer tokens: the table's format and matching, and the check on every RPC over TLS (both services,
unary and server-streaming calls), as an outside client with the generated stubs sees it."""

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from ecdiff.clients.credentials import ChannelSecurity, open_channel
from ecdiff.services.background import BackgroundServices
from ecdiff.services.config import CloudConfig, EdgeConfig, load_config
from ecdiff.services.tokens import TokenTable
from ecdiff.v1 import cloud_pb2, cloud_pb2_grpc, edge_pb2, edge_pb2_grpc

SECRETS = {"edge": "edge-to-cloud-0123456789", "reader": "reader-0123456789abcdef", "user": "user-0123456789abcdef",
           "nobody": "nobody-0123456789abcdef", "wrong": "wrong-0123456789abcdef"}
# The cloud knows the edge (everything it calls) and a reader (model info only); the edge knows its users.
CLOUD_TOKENS = (f"edge {SECRETS['edge']} ecdiff.v1.CloudDenoiser ecdiff.v1.CloudRefiner; "
                f"reader {SECRETS['reader']} ecdiff.v1.CloudDenoiser/GetModelInfo")
EDGE_TOKENS = f"user {SECRETS['user']} ecdiff.v1.EdgeDenoiser ecdiff.v1.EdgeSessions\nnobody {SECRETS['nobody']}\n"
RECEIVE = [("grpc.max_receive_message_length", 16 << 20)]


# --- the table -----------------------------------------------------------------------------


def test_rights_are_everything_a_service_or_one_method():
    table = TokenTable.parse("# comment\nall 0123456789abcdef *\nsvc 1123456789abcdef a.B  # trailing\n"
                             "one 2123456789abcdef a.B/C\nnone 3123456789abcdef", "test")
    may = {t.name: t for t in table.tokens}
    assert may["all"].may_call("/x.Y/Z")
    assert may["svc"].may_call("/a.B/C") and may["svc"].may_call("/a.B/D") and not may["svc"].may_call("/a.Bc/C")
    assert may["one"].may_call("/a.B/C") and not may["one"].may_call("/a.B/D")
    assert not may["none"].may_call("/a.B/C")
    assert table.find("1123456789abcdef").name == "svc" and table.find("1123456789abcdeX") is None


@pytest.mark.parametrize("text, fragment", [
    ("name-only", "expected NAME SECRET"),
    ("a short *", "at least 16"),
    ("a 0123456789abcdef *\na 1123456789abcdef *", "given twice"),
    ("# nothing", "no tokens"),
])
def test_a_bad_table_is_refused_without_echoing_it(text, fragment):
    with pytest.raises(ValueError, match=fragment) as info:
        TokenTable.parse(text, "the table")
    assert "0123456789abcdef" not in str(info.value)


def test_tokens_need_tls_and_secrets_stay_out_of_reprs(dev_credentials):
    with pytest.raises(ValueError, match="tokens need TLS"):
        CloudConfig(tokens=CLOUD_TOKENS)
    config = load_config(CloudConfig, "cloud", {}, environ={
        "ECDIFF_CLOUD_TLS_CERT": str(dev_credentials / "server.pem"),
        "ECDIFF_CLOUD_TLS_KEY": str(dev_credentials / "server-key.pem"),
        "ECDIFF_CLOUD_TOKENS": CLOUD_TOKENS, "ECDIFF_CLOUD_HEALTH_NEEDS_TOKEN": "yes"})
    assert config.health_needs_token and [t.name for t in config.token_table().tokens] == ["edge", "reader"]
    edge = EdgeConfig(cloud_tls_ca=str(dev_credentials / "ca.pem"), cloud_token=SECRETS["edge"])
    assert SECRETS["edge"] not in repr(edge) and SECRETS["reader"] not in repr(config)
    with pytest.raises(ValueError, match="needs TLS"):
        EdgeConfig(cloud_token=SECRETS["edge"])


# --- on the wire ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def services(tiny_pair, dev_credentials, tmp_path_factory):
    tokens_file = tmp_path_factory.mktemp("edge") / "edge-tokens"
    tokens_file.write_text(EDGE_TOKENS)
    tls = dict(tls_cert=str(dev_credentials / "server.pem"), tls_key=str(dev_credentials / "server-key.pem"))
    cloud = CloudConfig(**tls, tokens=CLOUD_TOKENS, predictors="none")  # inline, as from $ECDIFF_CLOUD_TOKENS
    edge = EdgeConfig(**tls, tokens_file=str(tokens_file), predictors="none", session_db=":memory:",
                      cloud_tls_ca=str(dev_credentials / "ca.pem"), cloud_token=SECRETS["edge"])
    with BackgroundServices(*tiny_pair, cloud, edge) as running:
        yield running


def channel(services, dev_credentials, role, token_name=None):
    target = services.cloud_target if role == "cloud" else services.edge_target
    token = SECRETS[token_name] if token_name else None
    return open_channel(target, RECEIVE, ChannelSecurity(str(dev_credentials / "ca.pem"), token=token))


def model_info(channel):
    return cloud_pb2_grpc.CloudDenoiserStub(channel).GetModelInfo(cloud_pb2.ModelInfoRequest(), timeout=10)


def cloud_denoise(channel):
    return list(cloud_pb2_grpc.CloudDenoiserStub(channel).Denoise(cloud_pb2.DenoiseRequest(
        prompt="a blue square", seed=3, num_steps=4, strategy="cloud"), timeout=60))


def edge_generate(channel):
    return list(edge_pb2_grpc.EdgeDenoiserStub(channel).Generate(edge_pb2.GenerateRequest(
        prompt="a blue square", seed=3, num_steps=4, strategy="ecdiff", require_cloud=True), timeout=60))


# (server, call, a token with the right, a known token without it)
CALLS = {"cloud unary": ("cloud", model_info, "reader", None),
         "cloud streaming": ("cloud", cloud_denoise, "edge", "reader"),
         "edge streaming": ("edge", edge_generate, "user", "nobody")}


@pytest.mark.parametrize("name", CALLS)
@pytest.mark.parametrize("token_name, code, fragment", [
    (None, grpc.StatusCode.UNAUTHENTICATED, "missing bearer token"),
    ("wrong", grpc.StatusCode.UNAUTHENTICATED, "unknown bearer token"),
])
def test_no_token_or_a_wrong_one_is_unauthenticated(services, dev_credentials, name, token_name, code, fragment):
    role, call, _, _ = CALLS[name]
    with channel(services, dev_credentials, role, token_name) as ch, pytest.raises(grpc.RpcError) as info:
        call(ch)
    assert info.value.code() == code and fragment in info.value.details()
    assert not any(secret in info.value.details() for secret in SECRETS.values())


@pytest.mark.parametrize("name", [n for n, (_, _, _, lacking) in CALLS.items() if lacking])
def test_a_token_without_the_right_is_permission_denied(services, dev_credentials, name):
    role, call, _, lacking = CALLS[name]
    with channel(services, dev_credentials, role, lacking) as ch, pytest.raises(grpc.RpcError) as info:
        call(ch)
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert repr(lacking) in info.value.details() and SECRETS[lacking] not in info.value.details()


@pytest.mark.parametrize("name", CALLS)
def test_the_right_token_is_served(services, dev_credentials, name):
    role, call, allowed, _ = CALLS[name]
    with channel(services, dev_credentials, role, allowed) as ch:
        answer = call(ch)
    if name == "edge streaming":  # through both services: the edge's own token opened the cloud
        summary = answer[-1].result.summary
        assert summary.cloud_calls > 0 and not summary.degraded
    else:
        assert answer


@pytest.mark.parametrize("role", ["cloud", "edge"])
def test_health_and_reflection_need_no_token(services, dev_credentials, role):
    with channel(services, dev_credentials, role) as ch:
        health = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=10)
        listing = next(reflection_pb2_grpc.ServerReflectionStub(ch).ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10))
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    assert listing.list_services_response.service


def test_health_and_reflection_can_require_a_token(tiny_pair, dev_credentials):
    """Reflection is a bidirectional stream: the refusal takes every call type."""
    tls = dict(tls_cert=str(dev_credentials / "server.pem"), tls_key=str(dev_credentials / "server-key.pem"))
    cloud = CloudConfig(**tls, tokens=CLOUD_TOKENS, health_needs_token=True, reflection_needs_token=True,
                        predictors="none")
    with BackgroundServices(*tiny_pair, cloud, EdgeConfig(predictors="none", session_db=":memory:")) as running, \
            channel(running, dev_credentials, "cloud") as ch:
        with pytest.raises(grpc.RpcError) as health:
            health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=10)
        with pytest.raises(grpc.RpcError) as listing:
            next(reflection_pb2_grpc.ServerReflectionStub(ch).ServerReflectionInfo(
                iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10))
    assert health.value.code() == listing.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "missing bearer token" in listing.value.details()


def test_an_edge_the_cloud_does_not_know_degrades_and_says_why(tiny_pair, dev_credentials):
    tls = dict(tls_cert=str(dev_credentials / "server.pem"), tls_key=str(dev_credentials / "server-key.pem"))
    edge = EdgeConfig(predictors="none", session_db=":memory:", cloud_tls_ca=str(dev_credentials / "ca.pem"),
                      cloud_token=SECRETS["wrong"])
    with BackgroundServices(*tiny_pair, CloudConfig(**tls, tokens=CLOUD_TOKENS, predictors="none"), edge) as running, \
            grpc.insecure_channel(running.edge_target, options=RECEIVE) as ch:
        events = list(edge_pb2_grpc.EdgeDenoiserStub(ch).Generate(edge_pb2.GenerateRequest(
            prompt="a blue square", seed=3, num_steps=4, strategy="ecdiff"), timeout=60))
    summary = events[-1].result.summary
    assert summary.degraded and "UNAUTHENTICATED" in summary.degraded_reason
    assert SECRETS["wrong"] not in summary.degraded_reason
