"""`ecdiff.cli_options`: what a command hands on to the services it starts."""

import argparse

from ecdiff.cli_options import placement_flags
from ecdiff.placement import DEVICE_ENV, DTYPE_ENV


def test_services_started_by_a_command_get_its_placement_from_flags_or_the_environment(monkeypatch):
    monkeypatch.delenv(DEVICE_ENV, raising=False)
    monkeypatch.delenv(DTYPE_ENV, raising=False)
    assert placement_flags(argparse.Namespace(device=None, dtype=None)) == []  # each service resolves auto
    monkeypatch.setenv(DEVICE_ENV, "cpu")  # a service reads ECDIFF_<ROLE>_DEVICE, not this: handed on as a flag
    monkeypatch.setenv(DTYPE_ENV, "bfloat16")
    assert placement_flags(argparse.Namespace(device=None, dtype=None)) == ["--device", "cpu", "--dtype", "bfloat16"]
    assert placement_flags(argparse.Namespace(device="cuda:1", dtype=None)) == ["--device", "cuda:1", "--dtype", "bfloat16"]
