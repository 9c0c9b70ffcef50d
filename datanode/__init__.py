"""The datanode: stores immutable blobs (the chunks of objects) on its local disk, verifies their
checksums on the way in and out, streams them over ``ringstore.v1.Blob``, and registers and
heartbeats to the metanode. Run it with ``ringstore-datanode`` (see :mod:`datanode.__main__`)."""
