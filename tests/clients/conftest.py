import pytest
import torch

from ecdiff.loading import load_model
from ecdiff.services.background import BackgroundServices


@pytest.fixture(scope="session")
def services():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)  # 2 shared cores: avoid oversubscribed intra-op threads
    with BackgroundServices(load_model("cloud", "tiny"), load_model("edge", "tiny")) as running:
        yield running
    torch.set_num_threads(previous)
