"""Python SDK and CLI over the generated gRPC stubs (ecdiff.clients)."""
