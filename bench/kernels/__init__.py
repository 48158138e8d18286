"""Microbenchmarks of ecdiff.kernels (ecdiff.bench.kernels)."""
