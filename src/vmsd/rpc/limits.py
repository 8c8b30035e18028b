"""How many streams a caller may hold, and how long a stream may wait for its reader.

Streams (Play, Download, CreateExport, Relay, Health/Watch, reflection) are the calls that can
last; each holds one of the server's `max_concurrent_rpcs` slots while it runs. Three counts keep
any one caller from holding them all:

- per principal (the token's name): a leaked or misused token cannot starve other principals;
- per connection (the peer as gRPC reports it, ip:port): one client connection cannot hog them.
  Deliberately not per IP address: every local client — the police link's relay on the same box
  included — shares 127.0.0.1, and behind NAT a whole control room shares one address, so a
  per-address limit would let an attacker lock out the callers it shares an address with;
- streams without a token (standard Health/Watch and reflection, open to anyone who reaches the
  port): all of them together, so that an unauthenticated flood takes at most this many slots.
Config validation keeps tokenless + per-principal below max_concurrent_rpcs, so a tokenless flood
plus one principal's flood still leave room for everyone else.

A client that stops reading fills its flow-control window and each send then waits; after the
send timeout the stream is ended with RESOURCE_EXHAUSTED (audited like any end of an audited
call, and logged).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Iterator
from typing import Any

import grpc

from vmsd.errors import ErrorKind, VmsdError
from vmsd.log import get_logger
from vmsd.units import NS_PER_S

log = get_logger(component="rpc")


class StreamLimits:
    """Counts of running streams; `hold()` takes a place or raises RESOURCE_EXHAUSTED. No I/O.

    Used on the event loop only (the interceptor), so no lock.
    """

    def __init__(self, *, per_principal: int, per_connection: int, tokenless: int) -> None:
        self._per_principal = per_principal
        self._per_connection = per_connection
        self._tokenless = tokenless
        self._principals: Counter[str] = Counter()
        self._connections: Counter[str] = Counter()
        self._without_token = 0

    @property
    def tokenless_streams(self) -> int:
        return self._without_token

    @contextlib.contextmanager
    def hold(self, principal: str | None, peer: str) -> Iterator[None]:
        """Hold one stream place for `principal` (None: no token) on connection `peer`."""
        if principal is None and self._without_token >= self._tokenless:
            raise _exhausted(f"at most {self._tokenless} streams at once without a token", "max_tokenless_streams")
        if principal is not None and self._principals[principal] >= self._per_principal:
            raise _exhausted(
                f"at most {self._per_principal} streams at once per principal", "max_streams_per_principal"
            )
        if self._connections[peer] >= self._per_connection:
            raise _exhausted(
                f"at most {self._per_connection} streams at once per connection", "max_streams_per_connection"
            )
        if principal is None:
            self._without_token += 1
        else:
            self._principals[principal] += 1
        self._connections[peer] += 1
        try:
            yield
        finally:
            _release(self._connections, peer)
            if principal is None:
                self._without_token -= 1
            else:
                _release(self._principals, principal)


def _release(counts: Counter[str], key: str) -> None:
    counts[key] -= 1
    if counts[key] <= 0:
        del counts[key]  # no entry left behind per connection that ever streamed


def _exhausted(what: str, key: str) -> VmsdError:
    return VmsdError(ErrorKind.RESOURCE_EXHAUSTED, f"{what} ([grpc] {key}); try again when one has ended")


class TimedWrites:
    """A servicer context whose `write()` gives up on a client that has stopped reading.

    Everything else is the real context. Streaming servicers get this instead of the context, so
    the timeout applies to servicers that write themselves (Relay, Health/Watch) as well as to the
    interceptor's sends for generator servicers.
    """

    def __init__(self, context: Any, timeout_ns: int, method: str) -> None:
        self._context = context
        self._timeout_ns = timeout_ns
        self._method = method

    async def write(self, message: Any) -> None:
        try:
            # A timeout scope, not wait_for: on Python 3.11 wait_for wraps every send in a new task
            # (13 µs against 4 µs per send here; a live viewer is sent 25 messages a second).
            async with asyncio.timeout(self._timeout_ns / NS_PER_S):
                await self._context.write(message)
        except TimeoutError:
            log.warning(
                "stream_send_timeout", method=self._method, peer=self._context.peer(), timeout_ns=self._timeout_ns
            )
            raise VmsdError(
                ErrorKind.RESOURCE_EXHAUSTED,
                f"stream ended: the client read nothing for {self._timeout_ns / NS_PER_S:g}s ([grpc] send_timeout)",
            ) from None
        except grpc.aio.InternalError:
            # The send's batch failed: the client cancelled (or its connection went) while this
            # send was under way, before the cancellation reached the handler. It ends as CANCELLED,
            # as it would a moment later, not as a recorder error.
            raise asyncio.CancelledError from None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)
