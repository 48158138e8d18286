"""Benchmark scripts over the core, the kernels and the services (ecdiff.bench)."""
