import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    # Tiny models on a shared 2-core machine: one thread is faster than two contending ones.
    torch.set_num_threads(1)
