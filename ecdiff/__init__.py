"""ecdiff: edge-cloud collaborative inference for diffusion models.

The transport-free core lives here (strategies, schedules, sampling, ...). The product's
top-level folders are mapped into this package: kernels/ -> ecdiff.kernels, services/ ->
ecdiff.services, clients/ -> ecdiff.clients, bench/ -> ecdiff.bench.
"""

__version__ = "0.1.0"
