import argparse
from dataclasses import fields

import pytest

from ecdiff.conventions import MAX_PROMPT_CHARS
from ecdiff.services.cli import register
from ecdiff.services.config import CloudConfig, EdgeConfig, RayConfig, load_config
from ecdiff.strategy_config import DEFAULT_FRONTIER_PATH, Frontier


def test_precedence_defaults_file_environment_flags(tmp_path):
    path = tmp_path / "services.toml"
    path.write_text("[edge]\nport = 6000\nbandwidth_mbps = 18.88\nlatency_ms = 5\n[cloud]\nport = 7000\n")
    env = {"ECDIFF_EDGE_LATENCY_MS": "12.5", "ECDIFF_EDGE_MAX_CONCURRENCY": "3"}
    config = load_config(EdgeConfig, "edge", {"max_concurrency": 4, "port": None}, str(path), environ=env)
    assert config.port == 6000  # file (the flag was not given)
    assert config.bandwidth_mbps == 18.88  # file
    assert config.latency_ms == 12.5  # environment beats file
    assert config.max_concurrency == 4  # flag beats environment
    assert config.checkpoint_every == EdgeConfig().checkpoint_every  # default
    assert load_config(CloudConfig, "cloud", {}, str(path), environ={}).port == 7000


@pytest.mark.parametrize("section, env, fragment", [
    ("[edge]\nbogus = 1\n", {}, "unknown keys"),
    ("[edge]\nport = 70000\n", {}, "port must be"),
    ("", {"ECDIFF_EDGE_BANDWIDTH_MBPS": "fast"}, "BANDWIDTH_MBPS"),
    ("", {"ECDIFF_EDGE_LATENCY_MS": "-1"}, "latency_ms must be >= 0"),
    ("[edge]\ncloud = 'nowhere'\n", {}, "HOST:PORT"),
    ("", {"ECDIFF_EDGE_TRANSFER_ENCODING": "zip"}, r"transfer_encoding must be one of \['int8', 'raw'\]"),
    ("[edge\n", {}, "services config"),
])
def test_bad_configuration_is_refused(tmp_path, section, env, fragment):
    path = tmp_path / "services.toml"
    path.write_text(section)
    with pytest.raises(ValueError, match=fragment):
        load_config(EdgeConfig, "edge", {}, str(path), environ=env)


def test_each_role_has_only_its_own_fields():
    cloud, edge = {f.name for f in fields(CloudConfig)}, {f.name for f in fields(EdgeConfig)}
    assert "refine_steps" in cloud - edge
    assert {"cloud", "bandwidth_mbps", "checkpoint_every", "session_db", "preview_steps"} <= edge - cloud
    assert (CloudConfig().port, EdgeConfig().port) == (50051, 50052)
    assert CloudConfig().max_prompt_chars == EdgeConfig().max_prompt_chars == MAX_PROMPT_CHARS


def test_a_key_of_the_other_role_is_refused(tmp_path):
    path = tmp_path / "services.toml"
    path.write_text("[edge]\nrefine_steps = 8\n")
    with pytest.raises(ValueError, match=r"unknown keys \['refine_steps'\]"):
        load_config(EdgeConfig, "edge", {}, str(path), environ={})


@pytest.mark.parametrize("role, own, other", [("cloud", "--refine-steps", "--checkpoint-every"),
                                              ("edge", "--checkpoint-every", "--refine-steps")])
def test_serve_help_offers_only_the_roles_flags(capsys, role, own, other):
    parser = argparse.ArgumentParser(prog="ecdiff")
    register(parser.add_subparsers(dest="command"))
    with pytest.raises(SystemExit):
        parser.parse_args(["serve", role, "--help"])
    text = capsys.readouterr().out
    assert own in text and other not in text


def test_ray_settings_from_flags_file_and_environment(tmp_path):
    path = tmp_path / "services.toml"
    path.write_text("[cloud]\nray = true\nreplicas = 2\nmin_replicas = 1\nmax_replicas = 4\n")
    env = {"ECDIFF_CLOUD_REPLICA_CPUS": "0.5", "ECDIFF_CLOUD_RAY_ADDRESS": "auto", "ECDIFF_CLOUD_STREAM_WINDOW_S": "0"}
    config = load_config(CloudConfig, "cloud", {"replica_gpus": 1.0, "max_resumes": 0}, str(path), environ=env)
    ray = config.ray_config()
    assert (ray.resume_every, ray.max_resumes, ray.grpc_port) == (RayConfig.resume_every, 0, None)
    assert config.ray and ray.autoscaling and (ray.min_replicas, ray.replicas, ray.max_replicas) == (1, 2, 4)
    assert (ray.replica_cpus, ray.replica_gpus, ray.address, ray.stream_window_s) == (0.5, 1.0, "auto", 0.0)
    assert not CloudConfig().ray and not CloudConfig().ray_config().autoscaling
    assert {"ray", "replicas"} <= {f.name for f in fields(CloudConfig)} - {f.name for f in fields(EdgeConfig)}


@pytest.mark.parametrize("values, fragment", [
    ({"replicas": 0}, "replicas must be >= 1"),
    ({"replica_cpus": 0.0}, "replica_cpus must be > 0"),
    ({"replica_gpus": -1.0}, "replica_gpus must be >= 0"),
    ({"min_replicas": 1}, "go together"),
    ({"min_replicas": 3, "max_replicas": 4, "replicas": 2}, "min_replicas <= replicas <= max_replicas"),
    ({"target_ongoing_requests": 0.0}, "target_ongoing_requests must be > 0"),
    ({"ray_app": " "}, "app must not be empty"),
    ({"resume_every": -1}, "resume_every must be >= 0"),
    ({"max_resumes": -1}, "max_resumes must be >= 0"),
    ({"stream_window_s": -0.1}, "stream_window_s must be in"),
    ({"stream_window_s": float("nan")}, "stream_window_s must be in"),
    ({"ray_grpc_port": 70000}, "grpc_port must be in"),
    ({"ray": True, "device": "cuda"}, "replicas need GPUs reserved"),
])
def test_bad_ray_settings_are_refused(values, fragment):
    with pytest.raises(ValueError, match=fragment):
        CloudConfig(**values)


def test_cuda_replicas_with_gpus_reserved_are_accepted():
    assert CloudConfig(ray=True, device="cuda:0", replica_gpus=0.5).ray_config().replica_gpus == 0.5
    assert CloudConfig(ray=False, device="cuda").device == "cuda"  # the plain cloud: checked when it loads


def test_rays_own_grpc_proxy_is_refused_beside_tls(tmp_path):
    """Ray's proxy has no TLS and asks for no token: it would be an open door beside a guarded front end."""
    for name in ("cert.pem", "key.pem"):
        (tmp_path / name).write_text("x")
    tls = dict(tls_cert=str(tmp_path / "cert.pem"), tls_key=str(tmp_path / "key.pem"))
    assert CloudConfig(ray_grpc_port=9000).ray_config().grpc_port == 9000 and CloudConfig(**tls).tls_cert
    with pytest.raises(ValueError, match="Ray Serve's gRPC proxy has no TLS"):
        CloudConfig(ray_grpc_port=9000, **tls)


def test_adaptive_quality_settings_from_flags_file_and_environment(tmp_path):
    path = tmp_path / "services.toml"
    path.write_text("[cloud]\nadaptive_quality = true\n")
    config = load_config(CloudConfig, "cloud", {"adaptive_queue": 8}, str(path),
                         environ={"ECDIFF_CLOUD_FRONTIER_CONFIG": str(DEFAULT_FRONTIER_PATH)})
    engine = config.engine()
    assert (engine.adaptive_quality, engine.adaptive_queue) == (True, 8)
    assert config.frontier() == Frontier.load()
    off = CloudConfig()
    assert (off.adaptive_quality, off.engine().adaptive_queue) == (False, 0)  # off unless the operator turns it on
    assert off.frontier() is None  # no ladder to offer
    assert load_config(CloudConfig, "cloud", {}, environ={"ECDIFF_CLOUD_ADAPTIVE_QUALITY": "on"}).adaptive_quality


@pytest.mark.parametrize("values, fragment", [
    ({"adaptive_queue": 4}, "needs adaptive_quality on"),
    ({"adaptive_quality": True, "adaptive_queue": -2}, "adaptive_queue must be an integer >= 0"),
    ({"adaptive_quality": True, "frontier_config": "/nonexistent/frontier.toml"}, "frontier .* not found"),
])
def test_bad_adaptive_quality_settings_are_refused(values, fragment):
    with pytest.raises(ValueError, match=fragment):
        CloudConfig(**values)


def test_serve_cloud_offers_the_adaptive_quality_flags(capsys):
    parser = argparse.ArgumentParser(prog="ecdiff")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["serve", "cloud", "--adaptive-quality", "--adaptive-queue", "3", "--frontier-config", "f.toml"])
    assert (args.adaptive_quality, args.adaptive_queue, args.frontier_config) == (True, 3, "f.toml")
    assert parser.parse_args(["serve", "cloud"]).adaptive_quality is None  # unset: the config decides
