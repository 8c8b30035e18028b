"""Command-line entry points: `vmsd` (daemon and local admin) and `vmsctl` (gRPC client)."""
