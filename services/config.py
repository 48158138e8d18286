"""Service configuration: one validated dataclass per role (`CloudConfig`, `EdgeConfig`), each
with only the fields its role uses; `ServerConfig` holds what both servers share.

Precedence, lowest first: the dataclass defaults, a TOML file (`--config` or
$ECDIFF_SERVICES_CONFIG; section [cloud] or [edge]), environment variables
(ECDIFF_CLOUD_PORT, ECDIFF_EDGE_BANDWIDTH_MBPS, ...: ECDIFF_<ROLE>_<FIELD>), command-line flags.

Message sizes are fixed deliberately, not configurable. Requests to either server are small:
MAX_RECEIVE_BYTES = 1 MiB, so larger messages are refused by gRPC with RESOURCE_EXHAUSTED before
they are parsed. The largest latent supported is CogVideoX's at its default size, 1 x 13 x 16 x 60 x 90
(49 frames, 480x720) float32 = 4.3 MiB (an image family's largest, SDXL at 1024 px, is 4 x 128 x 128
= 256 KiB), every value within +-MAX_LATENT_ABS; a handoff or checkpoint carrying it comes from the cloud to the edge, whose channel to
the cloud accepts MAX_CLOUD_MESSAGE_BYTES = 8 MiB, and a tensor of more elements is refused when
decoded. Whatever the limits, the edge refuses a latent whose shape is not its model's. Results carry
a PNG (a video's is an animated PNG, at most 49 x 720 x 480 x 3 bytes = 48.4 MiB plus its latent
even for incompressible frames), hence MAX_SEND_BYTES = 64 MiB.

Security (docs/services.md, "Security"): paths to PEM files and token files are settings like any
other; a secret itself (`tokens`, `cloud_token`) comes only from the environment or the TOML file,
never a flag (argv is public), and is left out of every repr.
"""

from __future__ import annotations

import math
import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping, Optional

from ecdiff.clients.credentials import ChannelSecurity, read_token
from ecdiff.conventions import MAX_PROMPT_CHARS
from ecdiff.engine.config import EngineConfig
from ecdiff.placement import AUTO, Placement, PlacementError, check_device_name, check_dtype_name
from ecdiff.strategy_config import Frontier
from ecdiff.wire.tensors import ENCODINGS

from .tokens import TokenTable

MAX_LATENT_ELEMENTS = 13 * 16 * 60 * 90
# Latents beyond this are refused: real ones stay far below (SD's are within +-100 even at the first
# Euler step), and a finite but huge value (3e38) overflows to NaN in the first UNet call: garbage out.
MAX_LATENT_ABS = 1e4
MAX_RECEIVE_BYTES = 1 << 20
MAX_CLOUD_MESSAGE_BYTES = 8 << 20
MAX_SEND_BYTES = 64 << 20
CONFIG_ENV = "ECDIFF_SERVICES_CONFIG"
# A Ray replica sends its engine's snapshot to the front end's exporter this often (so its metrics
# lag by up to this much).
REPLICA_STATS_EVERY_S = 1.0

CHANNEL_OPTIONS = (
    ("grpc.max_receive_message_length", MAX_RECEIVE_BYTES),
    ("grpc.max_send_message_length", MAX_SEND_BYTES),
)


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _check_files(config, *names: str) -> None:
    for name in names:
        path = getattr(config, name)
        _check(path is None or Path(path).expanduser().is_file(), f"{name}: no such file {path}")


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 0  # each role sets its own default; 0 = any free port
    model: Optional[str] = None  # None: the shipped toyworld model of the role (an error when missing)
    device: str = AUTO  # auto | cpu | cuda | cuda:N (ecdiff.placement); auto = CUDA when available
    dtype: str = AUTO  # auto | float32 | float16 | bfloat16; auto = float16 on CUDA, float32 on the CPU
    guidance: Optional[float] = None  # None: the model's own default (recorded in every handoff)
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
    # TLS: this server's certificate chain and key (PEM); unset = plaintext, for loopback only.
    tls_cert: Optional[str] = None
    tls_key: Optional[str] = None
    tls_client_ca: Optional[str] = None  # mutual TLS: callers must present a certificate signed by this CA
    # Bearer tokens (services/tokens.py gives the format): a file, or the same lines inline (environment
    # or TOML only). Neither = no token is asked for.
    tokens_file: Optional[str] = None
    tokens: Optional[str] = field(default=None, repr=False)
    health_needs_token: bool = False  # health and reflection stay open by default (load balancers, grpcurl)
    reflection_needs_token: bool = False

    def __post_init__(self) -> None:
        _check(0 <= self.port <= 65535, f"port must be in [0, 65535], got {self.port}")
        _check(self.metrics_port is None or 0 <= self.metrics_port <= 65535,
               f"metrics_port must be in [0, 65535], got {self.metrics_port}")
        _check(math.isfinite(self.grace_seconds) and self.grace_seconds >= 0, f"grace_seconds must be >= 0, got {self.grace_seconds}")
        _check(self.max_prompt_chars >= 1, f"max_prompt_chars must be >= 1, got {self.max_prompt_chars}")
        _check(1 <= self.max_steps <= 1000, f"max_steps must be in [1, 1000], got {self.max_steps}")
        _check(self.torch_threads >= 0, f"torch_threads must be >= 0, got {self.torch_threads}")
        try:
            check_device_name(self.device)
            check_dtype_name(self.dtype)
        except PlacementError as exc:
            raise ValueError(str(exc)) from None
        _check(self.guidance is None or (math.isfinite(self.guidance) and self.guidance >= 0),
               f"guidance must be >= 0, got {self.guidance}")
        _check((self.tls_cert is None) == (self.tls_key is None), "tls_cert and tls_key go together")
        _check(self.tls_client_ca is None or self.tls_cert is not None, "tls_client_ca (mutual TLS) needs tls_cert and tls_key")
        _check(self.tokens is None or self.tokens_file is None, "give the tokens once: tokens or tokens_file")
        _check(self.tls_cert is not None or (self.tokens is None and self.tokens_file is None),
               "tokens need TLS (tls_cert, tls_key): a bearer token must not travel in plaintext")
        _check_files(self, "tls_cert", "tls_key", "tls_client_ca", "tokens_file")
        self.token_table()  # validates the tokens' format

    def placement(self) -> Placement:
        """Where this server's model runs; raises PlacementError when this machine cannot provide it."""
        return Placement.resolve(self.device, self.dtype)

    def token_table(self) -> Optional[TokenTable]:
        """The tokens this server accepts; None = it asks for none."""
        if self.tokens_file:
            return TokenTable.parse(Path(self.tokens_file).expanduser().read_text(), self.tokens_file)
        if self.tokens:  # the source named in errors is never the value: it holds secrets
            return TokenTable.parse(self.tokens, "tokens (ECDIFF_<ROLE>_TOKENS or the TOML key)")
        return None


@dataclass(frozen=True)
class RayConfig:
    """The cloud on Ray Serve (`ecdiff serve cloud --ray`): where Ray runs and how many replicas of
    (model + engine) serve; services/ray_server.py uses it."""

    address: Optional[str] = None  # None: start a local Ray instance; else join it ("auto", "HOST:6379", "ray://...")
    app: str = "ecdiff-cloud"  # the Serve application's name (several clouds can share a cluster)
    replicas: int = 1  # replicas at start (a fixed count unless min_replicas/max_replicas are set)
    replica_cpus: float = 1.0  # CPUs Ray reserves per replica; also its torch threads unless torch_threads is set
    replica_gpus: float = 0.0  # GPUs per replica (fractions share a GPU)
    # Autoscaling on ongoing requests, when both are set: min_replicas <= replicas <= max_replicas.
    min_replicas: Optional[int] = None
    max_replicas: Optional[int] = None
    # Ongoing requests per replica that autoscaling aims at: about max_batch keeps its batches full.
    target_ongoing_requests: float = float(EngineConfig.max_batch)
    upscale_delay_s: float = 30.0  # autoscaling: load must stay above target this long before adding a replica
    # A replica dying mid-stream: the cloud phase (or refinement) resumes on another from the last
    # checkpoint of the loop's state, which replicas send the front end every `resume_every` steps (0:
    # none, resume from the start), at most `max_resumes` times per request (0: never; the edge then degrades).
    resume_every: int = 5
    max_resumes: int = 2
    # A replica sends a stream's events that follow the first unsent one within this many seconds as
    # one Ray item (the stream's end at once): each item costs CPU in the replica and the front end;
    # progress reaches the edge up to this much later (0: each engine iteration's events at once).
    stream_window_s: float = 0.5
    # Also serve CloudDenoiser through Ray Serve's own gRPC proxy on this port, on the same replicas,
    # to compare it with our front end (`ecdiff bench ray-proxy`); None: no Ray proxy.
    grpc_port: Optional[int] = None

    def __post_init__(self) -> None:
        _check(self.replicas >= 1, f"replicas must be >= 1, got {self.replicas}")
        _check(math.isfinite(self.replica_cpus) and self.replica_cpus > 0, f"replica_cpus must be > 0, got {self.replica_cpus}")
        _check(math.isfinite(self.replica_gpus) and self.replica_gpus >= 0, f"replica_gpus must be >= 0, got {self.replica_gpus}")
        _check((self.min_replicas is None) == (self.max_replicas is None),
               "min_replicas and max_replicas go together (autoscaling)")
        if self.min_replicas is not None:
            _check(1 <= self.min_replicas <= self.replicas <= self.max_replicas,
                   f"need 1 <= min_replicas <= replicas <= max_replicas, got {self.min_replicas}, {self.replicas}, "
                   f"{self.max_replicas}")
        _check(math.isfinite(self.target_ongoing_requests) and self.target_ongoing_requests > 0,
               f"target_ongoing_requests must be > 0, got {self.target_ongoing_requests}")
        _check(math.isfinite(self.upscale_delay_s) and self.upscale_delay_s >= 0,
               f"upscale_delay_s must be >= 0, got {self.upscale_delay_s}")
        _check(self.resume_every >= 0, f"resume_every must be >= 0, got {self.resume_every}")
        _check(self.max_resumes >= 0, f"max_resumes must be >= 0, got {self.max_resumes}")
        _check(math.isfinite(self.stream_window_s) and 0 <= self.stream_window_s <= 10,
               f"stream_window_s must be in [0, 10] seconds, got {self.stream_window_s}")
        _check(self.grpc_port is None or 1 <= self.grpc_port <= 65535,
               f"grpc_port must be in [1, 65535], got {self.grpc_port}")
        _check(bool(self.app.strip()), "app must not be empty")

    @property
    def autoscaling(self) -> bool:
        return self.min_replicas is not None


@dataclass(frozen=True)
class CloudConfig(ServerConfig):
    port: int = 50051
    refine_steps: int = 50  # DiffusionX: the cloud refinement's DDIM schedule
    # The shared engine (ecdiff.engine.config.EngineConfig documents each; defaults from there).
    max_batch: int = EngineConfig.max_batch
    max_running: int = EngineConfig.max_running
    max_queue: int = EngineConfig.max_queue
    adaptive_quality: bool = EngineConfig.adaptive_quality
    adaptive_queue: int = EngineConfig.adaptive_queue
    frontier_config: Optional[str] = None  # the ladder adaptive quality serves; None: configs/frontier.toml
    # Ray Serve (RayConfig documents each; defaults from there): off unless `ray`.
    ray: bool = False
    ray_address: Optional[str] = RayConfig.address
    ray_app: str = RayConfig.app
    replicas: int = RayConfig.replicas
    replica_cpus: float = RayConfig.replica_cpus
    replica_gpus: float = RayConfig.replica_gpus
    min_replicas: Optional[int] = RayConfig.min_replicas
    max_replicas: Optional[int] = RayConfig.max_replicas
    target_ongoing_requests: float = RayConfig.target_ongoing_requests
    upscale_delay_s: float = RayConfig.upscale_delay_s
    resume_every: int = RayConfig.resume_every
    max_resumes: int = RayConfig.max_resumes
    stream_window_s: float = RayConfig.stream_window_s
    ray_grpc_port: Optional[int] = RayConfig.grpc_port

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(self.ray_grpc_port is None or (self.tls_cert is None and self.token_table() is None),
               "ray_grpc_port: Ray Serve's gRPC proxy has no TLS and asks for no token; it cannot serve "
               "beside a front end that requires them")
        _check(not (self.ray and check_device_name(self.device).startswith("cuda") and not self.replica_gpus),
               f"device {self.device!r} on Ray Serve: replicas need GPUs reserved (replica_gpus, e.g. 1; Ray "
               "reserves none by default, and a replica without one runs on the CPU)")
        _check(1 <= self.refine_steps <= 1000, f"refine_steps must be in [1, 1000], got {self.refine_steps}")
        self.engine()  # validates the engine's knobs
        self.ray_config()  # validates Ray's
        self.frontier()  # validates the ladder

    def engine(self) -> EngineConfig:
        return EngineConfig(max_batch=self.max_batch, max_running=self.max_running, max_queue=self.max_queue,
                            adaptive_quality=self.adaptive_quality, adaptive_queue=self.adaptive_queue)

    def frontier(self) -> Optional[Frontier]:
        """The ladder of cheaper EC-Diff points load-adaptive quality serves; None when it is off."""
        if not self.adaptive_quality:
            return None
        try:
            return Frontier.load(self.frontier_config)
        except FileNotFoundError as exc:
            raise ValueError(str(exc)) from None

    def ray_config(self) -> RayConfig:
        return RayConfig(address=self.ray_address, app=self.ray_app, replicas=self.replicas,
                         replica_cpus=self.replica_cpus, replica_gpus=self.replica_gpus, min_replicas=self.min_replicas,
                         max_replicas=self.max_replicas, target_ongoing_requests=self.target_ongoing_requests,
                         upscale_delay_s=self.upscale_delay_s, resume_every=self.resume_every,
                         max_resumes=self.max_resumes, stream_window_s=self.stream_window_s,
                         grpc_port=self.ray_grpc_port)


@dataclass(frozen=True)
class EdgeConfig(ServerConfig):
    port: int = 50052
    max_concurrency: int = 2  # edge generations at once; more get RESOURCE_EXHAUSTED (a device is small)
    cloud: str = "127.0.0.1:50051"  # the CloudDenoiser to call
    bandwidth_mbps: float = 0.0  # shaping of the edge<->cloud hop; 0 = unshaped
    latency_ms: float = 0.0  # one-way latency added to every message on that hop
    checkpoint_every: int = 5  # ask the cloud for its latent every n steps (fault recovery); 0 = never
    # Latents on the cloud->edge hop when a request does not say: "int8" (measured by `ecdiff bench
    # handoff`: image SSIM >= 0.9996 against float32 on every bench prompt, 3.6x fewer latent bytes;
    # docs/services.md, "Compact handoffs") or "raw" (float32 unless the request asks for 16 bits: exact).
    transfer_encoding: str = "int8"
    cloud_event_timeout_s: float = 30.0  # no cloud event for this long: the stream is treated as broken
    # DiffusionX sessions: an SQLite file, so a restarted edge keeps its sessions (":memory:" = none).
    session_db: str = "~/.cache/ecdiff/edge-sessions.sqlite"
    session_ttl_s: float = 3600.0
    max_sessions: int = 1000
    preview_steps: int = 25  # DDIM steps of a preview schedule
    # The edge's channel to the cloud: the CA to verify the cloud with (unset = plaintext), the edge's
    # own certificate for mutual TLS, and the token the cloud knows the edge by (not a user's token).
    cloud_tls_ca: Optional[str] = None
    cloud_tls_cert: Optional[str] = None
    cloud_tls_key: Optional[str] = None
    cloud_token_file: Optional[str] = None
    cloud_token: Optional[str] = field(default=None, repr=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(self.max_concurrency >= 1, f"max_concurrency must be >= 1, got {self.max_concurrency}")
        _check(math.isfinite(self.bandwidth_mbps) and self.bandwidth_mbps >= 0, f"bandwidth_mbps must be >= 0, got {self.bandwidth_mbps}")
        _check(math.isfinite(self.latency_ms) and self.latency_ms >= 0, f"latency_ms must be >= 0, got {self.latency_ms}")
        _check(self.checkpoint_every >= 0, f"checkpoint_every must be >= 0, got {self.checkpoint_every}")
        _check(self.transfer_encoding in ENCODINGS,
               f"transfer_encoding must be one of {sorted(ENCODINGS)}, got {self.transfer_encoding!r}")
        _check(self.cloud_event_timeout_s > 0, f"cloud_event_timeout_s must be > 0, got {self.cloud_event_timeout_s}")
        _check(":" in self.cloud, f"cloud must be HOST:PORT, got {self.cloud!r}")
        _check(self.session_ttl_s > 0, f"session_ttl_s must be > 0, got {self.session_ttl_s}")
        _check(self.max_sessions >= 1, f"max_sessions must be >= 1, got {self.max_sessions}")
        _check(1 <= self.preview_steps <= 1000, f"preview_steps must be in [1, 1000], got {self.preview_steps}")
        _check(self.cloud_token is None or self.cloud_token_file is None,
               "give the cloud token once: cloud_token or cloud_token_file")
        _check_files(self, "cloud_tls_ca", "cloud_tls_cert", "cloud_tls_key", "cloud_token_file")
        self.cloud_security()  # validates the combination (a token or a certificate needs the CA)

    def cloud_security(self) -> ChannelSecurity:
        token = read_token(self.cloud_token_file) if self.cloud_token_file else self.cloud_token
        return ChannelSecurity(self.cloud_tls_ca, self.cloud_tls_cert, self.cloud_tls_key, token)


BOOLEAN_WORDS = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}


def _coerce(cls, name: str, value: Any) -> Any:
    kind = {f.name: f.type for f in fields(cls)}[name]
    if isinstance(value, str) and kind in ("int", "float", "Optional[int]", "Optional[float]"):
        return float(value) if kind in ("float", "Optional[float]") else int(value)
    if isinstance(value, str) and kind == "bool":
        if value.lower() not in BOOLEAN_WORDS:
            raise ValueError(value)
        return BOOLEAN_WORDS[value.lower()]
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
