"""How torch tensors cross Ray between the front end and the replicas: as numpy arrays.

Ray pickles a torch tensor through torch's own storage pickling, which builds a new pickler class for
every tensor (and an unpickler class on load): about 2.5x the CPU of a numpy array, which Ray sends
as an out-of-band buffer, on every streamed step, checkpoint and handoff, in the replica (whose
engine is the bottleneck) and the front end. `use_numpy_tensors()` registers this form for what the
calling process sends (Ray's serializers are per process; the deserializer travels by reference with
the data, so any process of ours can read it): each replica calls it in its constructor. The front end
does not (it sends tensors only to resume a request, and its process may be an owner's whose other
Ray work would change form). A received array is copied: Ray hands out read-only views of its
buffer, and a resumed checkpoint's tensors are written in place.

bfloat16 has no numpy dtype: it travels as its 16 bits and is viewed back.
"""

from __future__ import annotations

import numpy as np
import ray
import torch

_BITS = {torch.bfloat16: torch.int16}


def use_numpy_tensors() -> None:
    ray.util.register_serializer(torch.Tensor, serializer=tensor_to_wire, deserializer=tensor_from_wire)


# Module-level functions: Ray pickles them by reference (a lambda would travel by value with every tensor).
def tensor_to_wire(tensor: torch.Tensor) -> tuple[np.ndarray, str]:
    host = tensor.detach().cpu()
    bits = _BITS.get(host.dtype)
    return (host if bits is None else host.view(bits)).numpy(), str(host.dtype).removeprefix("torch.")


def tensor_from_wire(wire: tuple[np.ndarray, str]) -> torch.Tensor:
    array, dtype_name = wire
    tensor = torch.from_numpy(np.array(array))  # a writable copy of Ray's read-only buffer
    dtype = getattr(torch, dtype_name)
    return tensor.view(dtype) if dtype in _BITS else tensor
