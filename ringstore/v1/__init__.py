"""Generated gRPC stubs for the ringstore.v1 protocol (`make protos` regenerates them)."""
