"""gRPC control plane: thin servicers translating protobuf to domain calls."""
