"""Generated protobuf/gRPC modules for protos/ecdiff/v1 (`make protos`; do not edit by hand)."""
