import argparse
from dataclasses import fields

import pytest

from ecdiff.conventions import MAX_PROMPT_CHARS
from ecdiff.services.cli import register
from ecdiff.services.config import CloudConfig, EdgeConfig, load_config


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
