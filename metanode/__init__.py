"""The metanode: the one source of truth for buckets, object versions and where every chunk
lives, cluster membership and the ring's epochs; it also collects garbage.

Layers only look down: ``store`` (records in transactions) → ``catalog``/``listing``/
``membership``/``gc`` (the logic) → ``servicer`` (gRPC) → ``__main__`` (the process).
"""
