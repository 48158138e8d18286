"""What a server asks of its callers, from its `ServerConfig`: TLS (and mutual TLS) on its port, and
the token check as an interceptor. Without TLS the port is plaintext, for loopback only, and the
start-up log says so (as a warning when bound elsewhere).
"""

from __future__ import annotations

import ipaddress
import logging

import grpc

from ecdiff.clients.credentials import read_pem

from .auth_interceptor import HEALTH_SERVICE, REFLECTION_SERVICE, AuthInterceptor
from .config import ServerConfig

log = logging.getLogger(__name__)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ServerSecurity:
    def __init__(self, config: ServerConfig, role: str) -> None:
        self.config = config
        self.role = role
        tokens = config.token_table()
        open_services = frozenset(name for name, needs_token in (
            (HEALTH_SERVICE, config.health_needs_token), (REFLECTION_SERVICE, config.reflection_needs_token))
            if not needs_token)
        self.auth = AuthInterceptor(tokens, open_services) if tokens else None
        self.token_names = tuple(token.name for token in tokens.tokens) if tokens else ()

    def interceptors(self) -> list[grpc.aio.ServerInterceptor]:
        return [self.auth] if self.auth else []

    def bind(self, server: grpc.aio.Server) -> int:
        """Add the port; returns the bound port (0 when binding failed)."""
        address = f"{self.config.host}:{self.config.port}"
        if self.config.tls_cert is None:
            return server.add_insecure_port(address)
        credentials = grpc.ssl_server_credentials(
            [(read_pem(self.config.tls_key), read_pem(self.config.tls_cert))],
            root_certificates=read_pem(self.config.tls_client_ca) if self.config.tls_client_ca else None,
            require_client_auth=self.config.tls_client_ca is not None)
        return server.add_secure_port(address, credentials)

    def log_mode(self) -> None:
        """One line at start: what callers must present (token names, never secrets)."""
        fields = {"role": self.role, "tls": self.config.tls_cert is not None,
                  "mutual_tls": self.config.tls_client_ca is not None, "tokens": list(self.token_names),
                  "open_without_token": sorted(self.auth.open_services) if self.auth else "all"}
        if self.config.tls_cert is not None:
            log.info("security", extra={"fields": fields})
        elif _is_loopback(self.config.host):
            log.info("insecure: plaintext, no tokens; loopback only", extra={"fields": fields})
        else:
            log.warning("insecure: plaintext, no tokens, bound beyond loopback; give tls_cert/tls_key and tokens",
                        extra={"fields": fields})
