"""Service configuration: one validated dataclass per role (`CloudConfig`, `EdgeConfig`), each
with only the fields its role uses; `ServerConfig` holds what both servers share.

Precedence, lowest first: the dataclass defaults, a TOML file (`--config` or
$ECDIFF_SERVICES_CONFIG; section [cloud] or [edge]), environment variables
(ECDIFF_CLOUD_PORT, ECDIFF_EDGE_BANDWIDTH_MBPS, ...: ECDIFF_<ROLE>_<FIELD>), command-line flags.

Message sizes are fixed deliberately, not configurable: the largest latent supported is
1 x 4 x 128 x 128 (SDXL-size, 1024 px) float32 = 256 KiB; a handoff carrying it plus metadata
stays far below MAX_RECEIVE_BYTES = 1 MiB, so larger messages are refused by gRPC with
RESOURCE_EXHAUSTED before they are parsed. Results carry a PNG, hence the larger send limit.
"""

from __future__ import annotations

import math
import os
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Mapping, Optional

from ecdiff.conventions import MAX_PROMPT_CHARS
from ecdiff.engine.config import EngineConfig

MAX_LATENT_ELEMENTS = 4 * 128 * 128
MAX_RECEIVE_BYTES = 1 << 20
MAX_SEND_BYTES = 16 << 20
CONFIG_ENV = "ECDIFF_SERVICES_CONFIG"

CHANNEL_OPTIONS = (
    ("grpc.max_receive_message_length", MAX_RECEIVE_BYTES),
    ("grpc.max_send_message_length", MAX_SEND_BYTES),
)


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 0  # each role sets its own default; 0 = any free port
    model: Optional[str] = None  # None: the shipped toyworld model of the role (an error when missing)
    grace_seconds: float = 5.0  # SIGTERM: in-flight streams get this long, then are cancelled
    max_prompt_chars: int = MAX_PROMPT_CHARS
    max_steps: int = 500
    strategy_config: Optional[str] = None  # None: configs/strategy.toml
    torch_threads: int = 0  # torch intra-op threads; 0 = torch's default. Use 1 when several
    # services or requests share few cores: oversubscribed intra-op threads can be 100x slower.
    # DiffusionX strength predictors: a folder, "none", or None = models/diffusionx-predictors when
    # shipped (else fixed default strengths, logged).
    predictors: Optional[str] = None
    metrics_port: Optional[int] = None  # Prometheus exporter on this HTTP port; None = none, 0 = any free port

    def __post_init__(self) -> None:
        _check(0 <= self.port <= 65535, f"port must be in [0, 65535], got {self.port}")
        _check(self.metrics_port is None or 0 <= self.metrics_port <= 65535,
               f"metrics_port must be in [0, 65535], got {self.metrics_port}")
        _check(math.isfinite(self.grace_seconds) and self.grace_seconds >= 0, f"grace_seconds must be >= 0, got {self.grace_seconds}")
        _check(self.max_prompt_chars >= 1, f"max_prompt_chars must be >= 1, got {self.max_prompt_chars}")
        _check(1 <= self.max_steps <= 1000, f"max_steps must be in [1, 1000], got {self.max_steps}")
        _check(self.torch_threads >= 0, f"torch_threads must be >= 0, got {self.torch_threads}")


@dataclass(frozen=True)
class CloudConfig(ServerConfig):
    port: int = 50051
    refine_steps: int = 50  # DiffusionX: the cloud refinement's DDIM schedule
    # The shared engine (ecdiff.engine.config.EngineConfig documents each; defaults from there).
    max_batch: int = EngineConfig.max_batch
    max_running: int = EngineConfig.max_running
    max_queue: int = EngineConfig.max_queue

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(1 <= self.refine_steps <= 1000, f"refine_steps must be in [1, 1000], got {self.refine_steps}")
        self.engine()  # validates the engine's knobs

    def engine(self) -> EngineConfig:
        return EngineConfig(max_batch=self.max_batch, max_running=self.max_running, max_queue=self.max_queue)


@dataclass(frozen=True)
class EdgeConfig(ServerConfig):
    port: int = 50052
    max_concurrency: int = 2  # edge generations at once; more get RESOURCE_EXHAUSTED (a device is small)
    cloud: str = "127.0.0.1:50051"  # the CloudDenoiser to call
    bandwidth_mbps: float = 0.0  # shaping of the edge<->cloud hop; 0 = unshaped
    latency_ms: float = 0.0  # one-way latency added to every message on that hop
    checkpoint_every: int = 5  # ask the cloud for its latent every n steps (fault recovery); 0 = never
    cloud_event_timeout_s: float = 30.0  # no cloud event for this long: the stream is treated as broken
    # DiffusionX sessions: an SQLite file, so a restarted edge keeps its sessions (":memory:" = none).
    session_db: str = "~/.cache/ecdiff/edge-sessions.sqlite"
    session_ttl_s: float = 3600.0
    max_sessions: int = 1000
    preview_steps: int = 25  # DDIM steps of a preview schedule

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(self.max_concurrency >= 1, f"max_concurrency must be >= 1, got {self.max_concurrency}")
        _check(math.isfinite(self.bandwidth_mbps) and self.bandwidth_mbps >= 0, f"bandwidth_mbps must be >= 0, got {self.bandwidth_mbps}")
        _check(math.isfinite(self.latency_ms) and self.latency_ms >= 0, f"latency_ms must be >= 0, got {self.latency_ms}")
        _check(self.checkpoint_every >= 0, f"checkpoint_every must be >= 0, got {self.checkpoint_every}")
        _check(self.cloud_event_timeout_s > 0, f"cloud_event_timeout_s must be > 0, got {self.cloud_event_timeout_s}")
        _check(":" in self.cloud, f"cloud must be HOST:PORT, got {self.cloud!r}")
        _check(self.session_ttl_s > 0, f"session_ttl_s must be > 0, got {self.session_ttl_s}")
        _check(self.max_sessions >= 1, f"max_sessions must be >= 1, got {self.max_sessions}")
        _check(1 <= self.preview_steps <= 1000, f"preview_steps must be in [1, 1000], got {self.preview_steps}")


def _coerce(cls, name: str, value: Any) -> Any:
    kind = {f.name: f.type for f in fields(cls)}[name]
    if isinstance(value, str) and kind in ("int", "float", "Optional[int]"):
        return float(value) if kind == "float" else int(value)
    return value


def load_config(cls, role: str, flags: Mapping[str, Any], config_path: Optional[str] = None,
                environ: Mapping[str, str] = os.environ):
    """defaults < TOML file < environment < flags (flags that are None are unset)."""
    names = {f.name for f in fields(cls)}
    values: dict[str, Any] = {}
    path = config_path or environ.get(CONFIG_ENV)
    if path:
        try:
            section = tomllib.loads(Path(path).read_text()).get(role, {})
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ValueError(f"services config {path}: {exc}") from None
        unknown = set(section) - names
        _check(not unknown, f"services config {path} [{role}]: unknown keys {sorted(unknown)}")
        values.update(section)
    prefix = f"ECDIFF_{role.upper()}_"
    for name in names:
        if prefix + name.upper() in environ:
            try:
                values[name] = _coerce(cls, name, environ[prefix + name.upper()])
            except ValueError:
                raise ValueError(f"${prefix + name.upper()}: not a valid {name}") from None
    values.update({k: v for k, v in flags.items() if v is not None and k in names})
    return replace(cls(), **values)
