"""Tensors across Ray as numpy arrays (services/ray_wire.py): the conversions themselves; that the
replicas stream in this form is tested through a running cloud in test_ray_server.py."""

import numpy as np
import pytest
import torch

from ecdiff.services.ray_wire import tensor_from_wire, tensor_to_wire


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64, torch.int64, torch.bool])
def test_every_dtype_comes_back_bit_identical(dtype):
    tensor = (torch.randn(2, 4, 3, 5, generator=torch.Generator().manual_seed(0)) * 7).to(dtype)
    back = tensor_from_wire(tensor_to_wire(tensor))
    assert back.dtype == dtype and back.shape == tensor.shape
    assert torch.equal(back, tensor)


def test_views_and_autograd_tensors_travel_as_their_values():
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    for tensor in (base.t(), base[:, ::2], torch.ones(3, requires_grad=True) * 2, torch.tensor(1.5)):
        back = tensor_from_wire(tensor_to_wire(tensor))
        assert torch.equal(back, tensor.detach()) and not back.requires_grad


def test_a_received_tensor_is_writable_and_does_not_share_rays_buffer():
    array, dtype = tensor_to_wire(torch.zeros(4))
    array = array.copy()
    array.setflags(write=False)  # as Ray hands out its buffer
    back = tensor_from_wire((array, dtype))
    back += 1  # a resumed checkpoint is written in place
    assert np.all(array == 0) and torch.equal(back, torch.ones(4))
