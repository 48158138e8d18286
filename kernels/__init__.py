"""Fused Triton kernels for EC-Diff with pure-torch references (ecdiff.kernels)."""
