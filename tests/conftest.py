"""Session-wide test setup, loaded by pytest before any test module.

Without a GPU, Triton kernels run in Triton's CPU interpreter. TRITON_INTERPRET must be set before
anything imports triton: `triton.jit` reads it when a function is decorated, triton.language's own
helpers (tl.zeros, ...) included, and torch or diffusers may import triton while other test
folders are collected. So it is set here rather than in tests/kernels/conftest.py.

The suite runs its models on the CPU in float32 on every machine: a placement left to `auto` would
put the tiny pair and the services on a GPU in float16 where one exists, and the golden and
exactness tests compare CPU float32 numbers. So $ECDIFF_DEVICE and the services' own
$ECDIFF_<ROLE>_DEVICE default to `cpu` here, before anything resolves a placement, and service
children the tests start inherit it. A test that checks the GPU asks for CUDA by name (tensors on
"cuda", `Placement.resolve("cuda")`, tests/kernels' DEVICE) or clears these variables itself.
"""

import os
import socket

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

TEST_DEVICE_ENV = ("ECDIFF_DEVICE", "ECDIFF_CLOUD_DEVICE", "ECDIFF_EDGE_DEVICE")
for name in TEST_DEVICE_ENV:
    os.environ.setdefault(name, "cpu")


# The pace knob (tests/support/pace.py): ECDIFF_TEST_PACE=10 or 0.1 runs every tiny UNet call of
# this process (and of the service children tests start) 10x slower or faster.
from support.pace import install_from_env  # noqa: E402

PACE = install_from_env()


def pytest_report_header(config):
    return f"ecdiff test pace: {PACE or 1:g}x model time per tiny UNet call (ECDIFF_TEST_PACE)"


def pytest_collection_modifyitems(config, items):
    if PACE is not None and PACE < 1:
        skip = pytest.mark.skip(reason="ECDIFF_TEST_PACE < 1 replaces the tiny UNets by a stand-in; stored numbers differ")
        for item in items:
            if "tests/golden/" in str(item.path).replace("\\", "/"):
                item.add_marker(skip)


@pytest.fixture
def dead_target():
    """HOST:PORT where nothing listens, for the whole test: a socket bound without listen() holds
    the port, so no other process can take it, and every connection to it is refused."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield f"127.0.0.1:{held.getsockname()[1]}"


@pytest.fixture(scope="session")
def dev_credentials(tmp_path_factory):
    """The folder `make certs` writes (CA, server and client certificates, tokens), made once a session."""
    from ecdiff.services.dev_credentials import write_dev_credentials

    return write_dev_credentials(tmp_path_factory.mktemp("credentials"))


@pytest.fixture(scope="session")
def family_folders(tmp_path_factory):
    """{family: {role: folder}}: the tiny random pairs of every model family, saved as diffusers folders."""
    from ecdiff.models.tiny_families import FAMILIES, write_family

    out = tmp_path_factory.mktemp("families")
    return {family: write_family(family, out) for family in FAMILIES}
