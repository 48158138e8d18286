"""How a client of the services proves who it is and checks whom it talks to: TLS against a CA,
an optional client certificate (mutual TLS), and a bearer token on every call.

Shared by the SDK, `ecdiff generate`, the demo and the edge's own channel to the cloud. The token
travels as gRPC call credentials (`authorization: Bearer <token>`), which gRPC sends only over a
secure channel: a token therefore needs TLS, and asking for one without a CA is an error here
rather than a silent plaintext secret.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import grpc

TOKEN_ENV = "ECDIFF_TOKEN"


def read_pem(path: str) -> bytes:
    return Path(path).expanduser().read_bytes()


def read_token(path: str) -> str:
    """A token file holds the token alone (surrounding whitespace ignored)."""
    token = Path(path).expanduser().read_text().strip()
    if not token:
        raise ValueError(f"token file {path} is empty")
    return token


@dataclass(frozen=True)
class ChannelSecurity:
    """Nothing set: a plaintext channel (loopback only). `tls_ca` set: TLS verified against that CA;
    with `tls_cert`/`tls_key` too: mutual TLS; `token`: sent on every call (needs TLS)."""

    tls_ca: Optional[str] = None
    tls_cert: Optional[str] = None
    tls_key: Optional[str] = None
    token: Optional[str] = field(default=None, repr=False)  # a secret: never in a repr or a log

    def __post_init__(self) -> None:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("a client certificate needs both the certificate and its key")
        if self.tls_cert is not None and self.tls_ca is None:
            raise ValueError("a client certificate (mutual TLS) needs TLS: give the CA as well")
        if self.token is not None and self.tls_ca is None:
            raise ValueError("a token needs TLS (gRPC sends call credentials only over a secure channel): give the CA")

    @property
    def secure(self) -> bool:
        return self.tls_ca is not None

    def credentials(self) -> grpc.ChannelCredentials:
        """Only for a secure channel (`secure` is true)."""
        tls = grpc.ssl_channel_credentials(
            root_certificates=read_pem(self.tls_ca),
            private_key=read_pem(self.tls_key) if self.tls_key else None,
            certificate_chain=read_pem(self.tls_cert) if self.tls_cert else None)
        if self.token is None:
            return tls
        return grpc.composite_channel_credentials(tls, grpc.access_token_call_credentials(self.token))


def open_channel(target: str, options: Sequence, security: ChannelSecurity) -> grpc.Channel:
    if security.secure:
        return grpc.secure_channel(target, security.credentials(), options=options)
    return grpc.insecure_channel(target, options=options)


def open_aio_channel(target: str, options: Sequence, security: ChannelSecurity) -> grpc.aio.Channel:
    if security.secure:
        return grpc.aio.secure_channel(target, security.credentials(), options=options)
    return grpc.aio.insecure_channel(target, options=options)


def add_security_flags(parser: argparse.ArgumentParser) -> None:
    """The flags of a command that calls a service (`ecdiff generate`)."""
    parser.add_argument("--tls-ca", help="CA certificate (PEM) to verify the server with; enables TLS (default: none, plaintext)")
    parser.add_argument("--tls-cert", help="client certificate (PEM) for mutual TLS (default: none)")
    parser.add_argument("--tls-key", help="private key (PEM) of --tls-cert (default: none)")
    parser.add_argument("--token", help=f"bearer token sent on every call; other local users can read it in the "
                                         f"process list, prefer --token-file or ${TOKEN_ENV} (default ${TOKEN_ENV}, else none)")
    parser.add_argument("--token-file", help=f"file holding the bearer token (default: none; beats ${TOKEN_ENV})")


def security_from_flags(args: argparse.Namespace, environ=os.environ) -> ChannelSecurity:
    """--token or --token-file, else $ECDIFF_TOKEN. A ValueError says what is wrong with the flags."""
    if args.token is not None and args.token_file is not None:
        raise ValueError("give the token once: --token or --token-file")
    for flag, path in (("--tls-ca", args.tls_ca), ("--tls-cert", args.tls_cert), ("--tls-key", args.tls_key),
                       ("--token-file", args.token_file)):
        if path is not None and not Path(path).expanduser().is_file():
            raise ValueError(f"{flag}: no such file {path}")
    token = read_token(args.token_file) if args.token_file else args.token or environ.get(TOKEN_ENV)
    return ChannelSecurity(args.tls_ca, args.tls_cert, args.tls_key, token)
