"""Session-wide test setup, loaded by pytest before any test module.

Without a GPU, Triton kernels run in Triton's CPU interpreter. TRITON_INTERPRET must be set before
anything imports triton: `triton.jit` reads it when a function is decorated, triton.language's own
helpers (tl.zeros, ...) included, and torch or diffusers may import triton while other test
folders are collected. So it is set here rather than in tests/kernels/conftest.py.
"""

import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
