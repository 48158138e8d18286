"""`make certs` (`python -m ecdiff.services.dev_credentials`): the files it writes, the names the
server certificate covers, and tokens whose rights keep the two hops apart. (The credentials at
work on the wire: test_tls.py, test_tokens.py.)"""

import ipaddress

from cryptography import x509

from ecdiff.services.dev_credentials import VALID_DAYS, main
from ecdiff.services.tokens import TokenTable

FILES = {"ca.pem", "server.pem", "server-key.pem", "client.pem", "client-key.pem", "edge-tokens", "cloud-tokens",
         "user.token", "edge-to-cloud.token"}


def test_make_certs_writes_a_ca_certificates_and_tokens_for_each_hop(tmp_path, capsys):
    out = tmp_path / "certs"
    assert main(["--out", str(out), "--host", "edge.example", "--host", "10.0.0.7"]) == 0
    assert f"valid {VALID_DAYS} days" in capsys.readouterr().out
    assert {path.name for path in out.iterdir()} == FILES
    ca = x509.load_pem_x509_certificate((out / "ca.pem").read_bytes())
    server = x509.load_pem_x509_certificate((out / "server.pem").read_bytes())
    assert server.issuer == ca.subject
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {"localhost", "edge.example"} <= set(names.get_values_for_type(x509.DNSName))
    assert {ipaddress.ip_address(a) for a in ("127.0.0.1", "::1", "10.0.0.7")} <= set(
        names.get_values_for_type(x509.IPAddress))
    # The user's token opens the edge only; the edge's token opens the cloud only.
    user, edge = ((out / name).read_text().strip() for name in ("user.token", "edge-to-cloud.token"))
    edge_table = TokenTable.parse((out / "edge-tokens").read_text(), "edge-tokens")
    cloud_table = TokenTable.parse((out / "cloud-tokens").read_text(), "cloud-tokens")
    assert edge_table.find(user).may_call("/ecdiff.v1.EdgeSessions/Finalize") and edge_table.find(edge) is None
    assert cloud_table.find(edge).may_call("/ecdiff.v1.CloudRefiner/Refine") and cloud_table.find(user) is None
    assert not edge_table.find(user).may_call("/ecdiff.v1.CloudDenoiser/Denoise")
