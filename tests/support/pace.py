"""The test pace knob: ECDIFF_TEST_PACE=f makes every tiny UNet call take f times as long.

Tests that depend on how fast the models are relative to the clock (grace periods, deadlines,
cancellations in transit) are written to hold at any pace; this knob checks it:

    ECDIFF_TEST_PACE=10  .venv/bin/python -m pytest tests/services tests/clients   # 10x slower
    ECDIFF_TEST_PACE=0.1 .venv/bin/python -m pytest tests/services tests/clients   # 10x faster

f > 1: each call runs the real UNet, then sleeps (f - 1) times what the call took.
f < 1: a forward pass cannot be made cheaper, so each call runs a cheap deterministic stand-in
(row-wise in the batch, a function of the latent, the timestep and the text embedding) padded to f
times the real UNet's measured cost. Everything in the process (services, references) runs the
same stand-in, so comparisons between them still hold bit for bit; stored numbers (tests/golden)
do not, and tests/conftest.py skips those at f < 1.

`install_from_env()` wraps the UNets of the process's tiny pair (`ecdiff.loading`'s one build per
process). tests/conftest.py calls it for the test process; service child processes started by
tests get it through `child_env()` (tests/support/child/sitecustomize.py), with a gate too, and
optionally a gate on loading a model.
"""

from __future__ import annotations

import importlib
import os
import statistics
import time
from pathlib import Path
from typing import Optional

import torch

PACE_ENV = "ECDIFF_TEST_PACE"
# "N:PATH": the (N+1)-th and later UNet calls of a child process wait until PATH exists.
GATE_ENV = "ECDIFF_TEST_GATE"
# "PATH": a child's `ecdiff.loading.load_model` waits until PATH exists (a Ray replica that Ray
# restarts stays STARTING, not ready, until the test lets it load its model).
LOAD_GATE_ENV = "ECDIFF_TEST_LOAD_GATE"
CHILD_DIR = Path(__file__).parent / "child"


def pace_from_env() -> Optional[float]:
    text = os.environ.get(PACE_ENV, "").strip()
    if not text:
        return None
    pace = float(text)
    if not (pace > 0 and pace != float("inf")):
        raise ValueError(f"${PACE_ENV} must be a positive number, got {text!r}")
    return None if pace == 1 else pace


def _stand_in(sample, timestep, encoder_hidden_states, *args, return_dict=True, **kwargs):
    from diffusers.models.unets.unet_2d_condition import UNet2DConditionOutput

    rows = sample.shape[0]
    t = torch.as_tensor(timestep, dtype=sample.dtype).reshape(-1).expand(rows).reshape(rows, 1, 1, 1)
    text = encoder_hidden_states.to(sample.dtype).mean(dim=(1, 2)).reshape(rows, 1, 1, 1)
    out = 0.9 * sample + 0.05 * torch.tanh(text) + 1e-4 * t
    return UNet2DConditionOutput(sample=out) if return_dict else (out,)


def _measured_cost(unet) -> float:
    """Median seconds of one real call on a CFG batch (2 rows), the shape the services run."""
    config = unet.config
    sample = torch.randn(2, config.in_channels, config.sample_size, config.sample_size)
    text = torch.randn(2, 16, config.cross_attention_dim)
    costs, threads = [], torch.get_num_threads()
    torch.set_num_threads(1)  # as the tests and the services' children run
    with torch.no_grad():
        for _ in range(5):
            started = time.perf_counter()
            unet(sample, 500, encoder_hidden_states=text)
            costs.append(time.perf_counter() - started)
    torch.set_num_threads(threads)
    return statistics.median(costs)


def pace_unet(unet, pace: float) -> None:
    """Wrap `unet.forward` (an instance attribute, so forward hooks still run around it)."""
    if getattr(unet, "_ecdiff_test_pace", None) is not None:
        return
    real = unet.forward
    cost_per_row = _measured_cost(unet) / 2 if pace < 1 else 0.0

    def paced(sample, *args, **kwargs):
        started = time.perf_counter()
        out = real(sample, *args, **kwargs) if pace > 1 else _stand_in(sample, *args, **kwargs)
        took = time.perf_counter() - started
        wanted = (pace - 1) * took if pace > 1 else pace * cost_per_row * sample.shape[0] - took
        if wanted > 0:
            time.sleep(wanted)
        return out

    unet.forward = paced
    unet._ecdiff_test_pace = pace


def gate_unet(unet, spec: str) -> None:
    """Calls after the first N wait until PATH exists (a service child that must not finish early).
    While a file PATH.below holds a timestep T, calls at timesteps below T wait too, however many came
    before: a request runs its first steps, then waits mid-way for the test."""
    count, path = spec.split(":", 1)
    free, released, below, calls = int(count), Path(path), Path(path + ".below"), [0]

    def shut(timesteps) -> bool:
        if not released.exists():
            return True
        try:
            return bool((torch.as_tensor(timesteps) < float(below.read_text())).any())
        except (FileNotFoundError, ValueError):  # no partial gate (or one being written)
            return False

    def hold(_, args):
        calls[0] += 1
        deadline = time.monotonic() + 300
        while (calls[0] > free or below.exists()) and shut(args[1]) and time.monotonic() < deadline:
            time.sleep(0.005)

    unet.register_forward_pre_hook(hold)


def gate_loading(path: str) -> None:
    """`ecdiff.loading.load_model` waits until PATH exists (patched before anything imports it by name)."""
    loading = importlib.import_module("ecdiff.loading")
    real, released = loading.load_model, Path(path)

    def gated(*args, **kwargs):
        deadline = time.monotonic() + 300
        while not released.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        return real(*args, **kwargs)

    loading.load_model = gated


def install_from_env() -> Optional[float]:
    """Pace (and, in a child, gate) the tiny pair's UNets and the model loading as the environment says;
    the pace or None."""
    pace, gate, load_gate = pace_from_env(), os.environ.get(GATE_ENV), os.environ.get(LOAD_GATE_ENV)
    if load_gate:
        gate_loading(load_gate)
    if pace is None and not gate:
        return None
    from ecdiff.loading import _tiny_pair
    from ecdiff.placement import Placement

    # The placement the process's services resolve by default ($ECDIFF_DEVICE / $ECDIFF_DTYPE, else auto).
    cloud, edge = _tiny_pair(Placement.resolve())
    if pace is not None:
        for pipe in (cloud, edge):
            pace_unet(pipe.unet, pace)
    if gate:
        gate_unet(cloud.unet, gate)  # the cloud's: the child services tests start are clouds
    return pace


def child_env(gate: Optional[str] = None, load_gate: Optional[Path] = None) -> dict[str, str]:
    """Variables to set for a service child process (`ServiceProcess` copies os.environ): the
    pace it inherits (and `gate`, "N:PATH", and `load_gate`) is installed at its start-up by
    tests/support/child/sitecustomize.py."""
    paths = [str(CHILD_DIR), str(CHILD_DIR.parent.parent), os.environ.get("PYTHONPATH", "")]
    env = {"PYTHONPATH": os.pathsep.join(filter(None, paths))}
    if gate:
        env[GATE_ENV] = gate
    if load_gate:
        env[LOAD_GATE_ENV] = str(load_gate)
    return env
