"""`make certs` (`python -m ecdiff.services.dev_credentials --out DIR`): development credentials
for running both services with TLS, mutual TLS and tokens on one machine. Not for production:
the CA's key is thrown away, names cover loopback only (plus --host), and everything is rewritten.

Writes into DIR:
  ca.pem                           the CA every party trusts
  server.pem, server-key.pem       the certificate both services present (localhost, 127.0.0.1, ::1)
  client.pem, client-key.pem       a client certificate for mutual TLS (the edge, the SDK)
  edge-tokens, cloud-tokens        what each server accepts (services/tokens.py format)
  user.token, edge-to-cloud.token  the secrets alone, for `ecdiff generate --token-file` and the edge
Keys and token files are readable by their owner only.
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import os
import secrets
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALID_DAYS = 30  # development certificates: short-lived on purpose
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
# Users of the edge may call its client-facing services; the edge's token may call the cloud's.
EDGE_USER_RIGHTS = ("ecdiff.v1.EdgeDenoiser", "ecdiff.v1.EdgeSessions")
EDGE_TO_CLOUD_RIGHTS = ("ecdiff.v1.CloudDenoiser", "ecdiff.v1.CloudRefiner")


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ecdiff development"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _alternative_names(hosts) -> x509.SubjectAlternativeName:
    names = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


def _certificate(subject: str, key, issuer: x509.Name, issuer_key, *, ca: bool = False, hosts=(),
                 usage=None) -> x509.Certificate:
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(issuer)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))  # tolerate small clock skew
               .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
    if hosts:
        builder = builder.add_extension(_alternative_names(hosts), critical=False)
    if usage:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _write(path: Path, data: bytes, private: bool = False) -> None:
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if private else 0o644)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def _key_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def write_dev_credentials(out: Path, hosts=()) -> Path:
    """Everything listed in the module's docstring, into `out`; returns `out`."""
    out.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("ecdiff development CA", ca_key, _name("ecdiff development CA"), ca_key, ca=True)
    _write(out / "ca.pem", _pem(ca))
    for stem, subject, usage, names in (
            ("server", "ecdiff service", ExtendedKeyUsageOID.SERVER_AUTH, (*LOOPBACK_NAMES, *hosts)),
            ("client", "ecdiff client", ExtendedKeyUsageOID.CLIENT_AUTH, ())):
        key = ec.generate_private_key(ec.SECP256R1())
        _write(out / f"{stem}.pem", _pem(_certificate(subject, key, ca.subject, ca_key, hosts=names, usage=usage)))
        _write(out / f"{stem}-key.pem", _key_pem(key), private=True)
    user, edge = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    _write(out / "edge-tokens", f"# NAME SECRET RIGHT...\nuser {user} {' '.join(EDGE_USER_RIGHTS)}\n".encode(), private=True)
    _write(out / "cloud-tokens", f"# NAME SECRET RIGHT...\nedge {edge} {' '.join(EDGE_TO_CLOUD_RIGHTS)}\n".encode(),
           private=True)
    _write(out / "user.token", f"{user}\n".encode(), private=True)
    _write(out / "edge-to-cloud.token", f"{edge}\n".encode(), private=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ecdiff.services.dev_credentials", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("out/certs"), help="folder to write (default: out/certs)")
    parser.add_argument("--host", action="append", default=[],
                        help="a further name or IP address for the server certificate; repeatable (default: loopback only)")
    args = parser.parse_args(argv)
    print(f"development credentials in {write_dev_credentials(args.out, args.host)}/ (valid {VALID_DAYS} days)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
