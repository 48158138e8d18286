"""Session-wide test setup, loaded by pytest before any test module.

Without a GPU, Triton kernels run in Triton's CPU interpreter. TRITON_INTERPRET must be set before
anything imports triton: `triton.jit` reads it when a function is decorated, triton.language's own
helpers (tl.zeros, ...) included, and torch or diffusers may import triton while other test
folders are collected. So it is set here rather than in tests/kernels/conftest.py.
"""

import os

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")


@pytest.fixture(scope="session")
def dev_credentials(tmp_path_factory):
    """The folder `make certs` writes (CA, server and client certificates, tokens), made once a session."""
    from ecdiff.services.dev_credentials import write_dev_credentials

    return write_dev_credentials(tmp_path_factory.mktemp("credentials"))
