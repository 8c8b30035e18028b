"""The one interceptor: authenticate, map errors to status codes, and audit — for every RPC.

Each call gets a `Call` (in a context variable) carrying its principal. A servicer marks what
the call touched (`call.touch(camera_id=…, start_ns=…, reason=…)`); any call that touched
footage, holds, exports or configuration is audited when it ends, with its outcome, and so is
every denial (UNAUTHENTICATED or PERMISSION_DENIED), whatever the method.

Errors: a `VmsdError` becomes its status code with its message; anything else is logged with
its traceback and becomes INTERNAL with a generic message (never internals to the client).

Streams (server-streaming and bidi calls) also take a place in `StreamLimits` for as long as they
run and send through `TimedWrites` (rpc/limits.py). The records themselves are built and written
by the transport-neutral `CallAudit` (services/calls.py), which the HTTP API uses too, so both
write identical records; it also aggregates repeated denials.

Request bytes that are not a valid message of the method's request type are INVALID_ARGUMENT
naming the method (grpc.aio would answer UNKNOWN "Unexpected DecodeError" before any of our code
ran, unaudited), and are audited like a denial: they come from a broken or hostile client.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc

from vmsd.errors import ErrorKind, VmsdError
from vmsd.log import get_logger
from vmsd.rpc.limits import StreamLimits, TimedWrites
from vmsd.services.access import SITE_ROLE, Principal
from vmsd.services.activity import Activity
from vmsd.services.authn import Authenticator
from vmsd.services.calls import CallAudit
from vmsd.services.forwarding import Forwarded

log = get_logger(component="rpc")

STATUS_FOR_KIND: dict[ErrorKind, grpc.StatusCode] = {
    ErrorKind.INVALID_ARGUMENT: grpc.StatusCode.INVALID_ARGUMENT,
    ErrorKind.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    ErrorKind.ALREADY_EXISTS: grpc.StatusCode.ALREADY_EXISTS,
    ErrorKind.PERMISSION_DENIED: grpc.StatusCode.PERMISSION_DENIED,
    ErrorKind.UNAUTHENTICATED: grpc.StatusCode.UNAUTHENTICATED,
    ErrorKind.FAILED_PRECONDITION: grpc.StatusCode.FAILED_PRECONDITION,
    ErrorKind.RESOURCE_EXHAUSTED: grpc.StatusCode.RESOURCE_EXHAUSTED,
    ErrorKind.UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    ErrorKind.DATA_LOSS: grpc.StatusCode.DATA_LOSS,
    ErrorKind.INTERNAL: grpc.StatusCode.INTERNAL,
}

# Methods anyone may call: the overall health check and API discovery. Per-camera health
# (a non-empty service name) still needs a principal; see _health_needs_principal.
_OPEN_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")
DEFAULT_SEND_TIMEOUT_NS = 10_000_000_000


@dataclass(frozen=True)
class Undecodable:
    """Stands in for a request whose bytes did not decode, so that the call still reaches the
    interceptor (to be authenticated, refused and audited) instead of failing inside grpc."""

    type_name: str


def _tolerant(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserializer is None:
        return None
    message_class = getattr(deserializer, "__self__", None)  # generated handlers pass `Request.FromString`
    descriptor = getattr(message_class, "DESCRIPTOR", None)
    type_name = str(getattr(descriptor, "full_name", "request"))

    def deserialize(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception:  # DecodeError, or anything else the client's bytes provoke in the parser
            return Undecodable(type_name)

    return deserialize


@dataclass
class Call(Activity):
    """One RPC: its method, peer and principal, and what it touched (`Activity`)."""

    method: str = ""
    peer: str = ""
    principal: Principal | None = None

    def require_principal(self) -> Principal:
        if self.principal is None:
            raise VmsdError(ErrorKind.UNAUTHENTICATED, "this call needs 'authorization: Bearer <token>' metadata")
        return self.principal


_current: contextvars.ContextVar[Call] = contextvars.ContextVar("vmsd_call")


def current_call() -> Call:
    return _current.get()


class CallInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    def __init__(
        self,
        authenticator: Authenticator,
        calls: CallAudit,
        observe: Callable[[str, str, int], None] | None = None,
        *,
        limits: StreamLimits | None = None,
        send_timeout_ns: int = DEFAULT_SEND_TIMEOUT_NS,
    ) -> None:
        self._authenticator = authenticator
        self._calls = calls
        # (method, outcome, duration_ns) of every call that ends: metrics.
        self._observe = observe
        self._limits = limits
        self._send_timeout_ns = send_timeout_ns

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None:
            return None
        method: str = details.method
        metadata = dict(details.invocation_metadata or ())
        authorization = metadata.get("authorization")
        open_method = method.startswith(_OPEN_PREFIXES)

        def begin(call: Call) -> None:
            # Fills `call` in place, so that a refusal is audited with what was known by then
            # (a peer recorder whose forwarded principal is refused is named as `site`).
            _current.set(call)
            if authorization or not open_method:
                principal = self._authenticator.authenticate(
                    authorization if isinstance(authorization, str) else None, call.peer
                )
                if principal.role == SITE_ROLE:
                    # A peer recorder: the call is made for the principal it forwards.
                    call.principal = principal
                    principal = self._authenticator.forwarded(principal, Forwarded.from_headers(metadata))
                call.principal = principal

        def require_decoded(call: Call, request: Any) -> None:
            if isinstance(request, Undecodable):
                call.touch(undecodable=True)  # audited, whoever sent it
                raise VmsdError(
                    ErrorKind.INVALID_ARGUMENT,
                    f"the request to {method} is not a valid {request.type_name} message (undecodable bytes)",
                )

        if handler.unary_unary is not None:
            inner_unary = handler.unary_unary

            async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
                started_ns = time.monotonic_ns()
                call = Call(method=method, peer=context.peer() or "")
                try:
                    begin(call)
                    require_decoded(call, request)
                    if open_method and method.startswith("/grpc.health.v1.Health/"):
                        _health_needs_principal(call, request)
                    response = await inner_unary(request, context)
                except BaseException as error:
                    await self._fail(context, call, error, started_ns)
                    raise
                await self._finish(call, "OK", started_ns)
                return response

            return grpc.unary_unary_rpc_method_handler(
                unary,
                request_deserializer=_tolerant(handler.request_deserializer),
                response_serializer=handler.response_serializer,
            )

        if handler.unary_stream is not None or handler.stream_stream is not None:
            inner_stream = handler.unary_stream or handler.stream_stream

            async def stream(request: Any, context: grpc.aio.ServicerContext) -> None:
                # Always a coroutine that sends with `await context.write()` (never a generator
                # yielding to grpc), so that every send can time out when the client stops reading.
                started_ns = time.monotonic_ns()
                call = Call(method=method, peer=context.peer() or "")
                try:
                    begin(call)
                    require_decoded(call, request)
                    if open_method and method.startswith("/grpc.health.v1.Health/"):
                        _health_needs_principal(call, request)
                    with self._stream_place(call):
                        timed = TimedWrites(context, self._send_timeout_ns, method)
                        if inspect.isasyncgenfunction(inner_stream):
                            async with contextlib.aclosing(inner_stream(request, timed)) as responses:
                                async for response in responses:
                                    await timed.write(response)
                        else:
                            await inner_stream(request, timed)
                except BaseException as error:
                    await self._fail(context, call, error, started_ns)
                    raise
                await self._finish(call, "OK", started_ns)

            make = (
                grpc.unary_stream_rpc_method_handler if handler.unary_stream else grpc.stream_stream_rpc_method_handler
            )
            return make(
                stream,
                # Bidi (reflection) passes its messages through unchanged: a stand-in would reach its code.
                request_deserializer=_tolerant(handler.request_deserializer)
                if handler.unary_stream
                else handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler  # client streaming: none of ours

    def _stream_place(self, call: Call) -> contextlib.AbstractContextManager[None]:
        if self._limits is None:
            return contextlib.nullcontext()
        return self._limits.hold(call.principal.name if call.principal else None, call.peer)

    async def _fail(self, context: grpc.aio.ServicerContext, call: Call, error: BaseException, started_ns: int) -> None:
        """Record the failure and turn it into a status (re-raised by the caller)."""
        if isinstance(error, VmsdError):
            code = STATUS_FOR_KIND[error.kind]
            await self._finish(call, code.name, started_ns, error.message)
            await context.abort(code, error.message)
        elif isinstance(error, grpc.aio.AbortError):
            await self._finish(call, _code_name(context), started_ns)
        elif isinstance(error, (GeneratorExit, KeyboardInterrupt)):
            return
        elif isinstance(error, asyncio.CancelledError):
            await self._finish(call, "CANCELLED", started_ns)
        else:
            log.exception("rpc_failed", method=call.method)
            await self._finish(call, "INTERNAL", started_ns, "internal error")
            await context.abort(grpc.StatusCode.INTERNAL, "internal error (logged by the recorder)")

    async def _finish(self, call: Call, outcome: str, started_ns: int, message: str = "") -> None:
        duration_ns = time.monotonic_ns() - started_ns
        if self._observe is not None:
            self._observe(call.method, outcome, duration_ns)
        await self._calls.finish(call.method, call.principal, call.peer, call, outcome, duration_ns, message)


def _code_name(context: grpc.aio.ServicerContext) -> str:
    code = context.code()
    return code.name if isinstance(code, grpc.StatusCode) else "UNKNOWN"


def _health_needs_principal(call: Call, request: Any) -> None:
    """Per-camera health names a camera: only principals who may see it get an answer."""
    service = getattr(request, "service", "")
    if service:
        principal = call.require_principal()
        camera_id = service.removeprefix("camera/")
        call.about(camera_id=camera_id[:64])
        if service.startswith("camera/") and not principal.in_scope(camera_id):
            raise VmsdError(ErrorKind.PERMISSION_DENIED, f"camera_id {camera_id!r} is outside this principal's scope")
