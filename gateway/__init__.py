"""The ringstore gateway: the public, stateless ObjectStore service."""
