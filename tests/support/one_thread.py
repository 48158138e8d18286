"""An autouse fixture for test folders that run tiny models: import it into their conftest.py."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    # Tiny models on a shared 2-core machine: one thread is faster than two contending ones.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
