"""Run a service as a child process (`ecdiff serve ...`): used by the demo and the fault tests.

The child binds port 0 and reports the port through --port-file, so there is no port race.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional, Sequence

from grpc_health.v1 import health_pb2, health_pb2_grpc

from ecdiff.clients.credentials import ChannelSecurity, open_channel


class ServiceProcess:
    """`security`: how to reach the service's health check when `args` secure it (TLS, mutual TLS)."""

    def __init__(self, role: str, args: Sequence[str] = (), log_path: Optional[Path] = None,
                 startup_timeout: float = 120.0, security: ChannelSecurity = ChannelSecurity()) -> None:
        self.role = role
        self.security = security
        self._dir = tempfile.TemporaryDirectory(prefix=f"ecdiff-{role}-")
        port_file = Path(self._dir.name) / "port"
        self.log_path = log_path or Path(self._dir.name) / f"{role}.log"
        self._log = open(self.log_path, "w")
        command = [sys.executable, "-m", "ecdiff.cli", "serve", role, "--port", "0", "--port-file", str(port_file), *args]
        self.proc = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT, env=os.environ.copy())
        try:
            ports = self._wait_ports(port_file, startup_timeout)
            self.port = ports[0]
            self.metrics_port: Optional[int] = ports[1] if len(ports) > 1 else None
            self._wait_serving(startup_timeout)
        except BaseException:
            self.kill()
            raise

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _wait_ports(self, port_file: Path, timeout: float) -> list[int]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.role} service exited with {self.proc.returncode}; log:\n{self.log_text()}")
            text = port_file.read_text() if port_file.exists() else ""
            if text.endswith("\n"):  # written whole
                return [int(line) for line in text.split()]
            time.sleep(0.1)
        raise TimeoutError(f"{self.role} service did not start within {timeout:g} s; log:\n{self.log_text()}")

    def _wait_serving(self, timeout: float) -> None:
        with open_channel(self.target, (), self.security) as channel:
            response = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=timeout, wait_for_ready=True)
        if response.status != health_pb2.HealthCheckResponse.SERVING:
            raise RuntimeError(f"{self.role} service is not serving: {response.status}")

    def log_text(self) -> str:
        self._log.flush()
        return self.log_path.read_text()

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM (graceful), then SIGKILL if it does not exit in time."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._close()
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._close()

    def _close(self) -> None:
        self._log.close()
