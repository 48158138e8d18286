"""gRPC servicers: thin adapters over the transport-free core (ecdiff.services)."""
