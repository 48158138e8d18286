"""Fused Triton kernels for EC-Diff with pure-torch references (ecdiff.kernels).

approx_steps: k approximated steps in one pass (approx_steps_curved: with an increment that
changes by a constant curvature). correct_step: guidance + noise gradient + DDIM update of a real
step in one pass. fit_gradient: an extrapolation's increment (and curvature) from the last real noises. encode_int8/decode_int8: per-channel int8
latents for transfer. backend=None picks Triton for CUDA tensors, else torch;
ECDIFF_KERNELS=triton|torch|auto sets the default. See docs/kernels.md.
"""

from .dispatch import ENV_VAR, BackendUnavailableError
from .ops import approx_steps, approx_steps_curved, correct_step, decode_int8, encode_int8, fit_gradient
from .validation import SUPPORTED_DTYPES

__all__ = ["approx_steps", "approx_steps_curved", "fit_gradient", "correct_step", "encode_int8", "decode_int8",
           "BackendUnavailableError", "ENV_VAR", "SUPPORTED_DTYPES"]
