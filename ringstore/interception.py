"""What every server interceptor of ours shares: which behaviour of a method handler runs a
call, and how a call is ended with an error of the one hierarchy (mapped to its gRPC status by
:func:`ringstore.grpc_errors.grpc_status`, the one place that does)."""

from __future__ import annotations

import grpc
from grpc import aio

from ringstore import tracing
from ringstore.errors import RingstoreError
from ringstore.grpc_errors import grpc_status


def behaviour_kind(handler: grpc.RpcMethodHandler) -> str:
    """The name of ``handler``'s behaviour attribute: ``unary_unary``, ``unary_stream``,
    ``stream_unary`` or ``stream_stream``."""
    return ("stream" if handler.request_streaming else "unary") + (
        "_stream" if handler.response_streaming else "_unary"
    )


async def abort(context: aio.ServicerContext, err: RingstoreError) -> None:
    """End the call with ``err``: its status, its details and the error code in the trailers,
    with the request's id (:mod:`ringstore.tracing`)."""
    code, details, trailing = grpc_status(err)
    await context.abort(code, details, trailing_metadata=(*trailing, *tracing.outgoing()))
