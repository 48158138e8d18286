"""The codec between the generated protobuf messages in `ecdiff.v1` and core values (torch tensors,
strategy parameters, step records), shared by the servicers and the SDK. It never opens a channel."""
