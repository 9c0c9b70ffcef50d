"""The metanode: the one source of truth for buckets, object versions and where every chunk
lives, cluster membership and the ring's epochs; it also collects garbage.

Layers only look down: ``store`` (records in transactions) → ``refs`` (blob reference counts)
→ ``catalog``/``listing``/``versions``/``multipart``/``rename``/``membership``/``gc`` (the
logic) → ``servicer`` (gRPC) → ``__main__`` (the process). docs/metadata.md describes the
records and the invariants garbage collection relies on.
"""
