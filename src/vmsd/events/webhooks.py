"""Webhooks: each event (of the kinds asked for) POSTed as JSON to a configured URL, signed.

`[[events.webhooks]]`: `url`, `kinds`, `secret_file`. The body is the event as a JSON object
(`seq`, `time_ns`, `kind`, `camera_id`, `recorder_id`, `fields`); the header `X-Vmsd-Signature` is
`sha256=` and the hex HMAC-SHA256 of the body under the secret. A receiver should drop a `seq` it
has already handled: a delivery whose answer was lost is sent again.

Each webhook is a consumer of the stored events with its own cursor, so a receiver that is down
gets every event after it comes back (within `[events] keep`), in order: the same event is retried
with exponential backoff (RETRY_INITIAL_S doubling to RETRY_MAX_S) until it answers 2xx. Failures
are logged (`webhook_delivery_failed`, the URL without credentials) and counted in `status`.
Deliveries start with the events published after the daemon started. The POST runs in a worker
thread (urllib): the event loop never waits for a receiver.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from vmsd.errors import ErrorKind, VmsdError
from vmsd.events.bus import EventBus, SubscriberCutOff, Subscription
from vmsd.events.kinds import Event, EventKind
from vmsd.log import get_logger, redact_url, scrub
from vmsd.waits import wait_event

log = get_logger(component="webhooks")

TIMEOUT_S = 10.0
RETRY_INITIAL_S = 0.5
RETRY_MAX_S = 60.0
PAGE = 100
MAX_QUEUE = 1000  # wake-ups only: a cut-off subscription is simply renewed


@dataclass
class WebhookStatus:
    delivered: int = 0
    failures: int = 0  # failed attempts (each retry counts)
    last_error: str = ""
    last_seq: int = 0  # the newest event handled (delivered, or not of its kinds)


def signature(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def body(event: Event, recorder_id: str) -> bytes:
    document = {
        "seq": event.seq,
        "time_ns": event.time_ns,
        "kind": str(event.kind),
        "camera_id": event.camera_id,
        "recorder_id": recorder_id,
        "fields": event.fields,
    }
    return json.dumps(document, sort_keys=True).encode()


class Webhook:
    """Delivers to one URL until `aclose()`. The constructor does no I/O (the secret is read by `run`)."""

    def __init__(self, bus: EventBus, url: str, kinds: list[str], secret_file: str, recorder_id: str) -> None:
        self._bus = bus
        self.url = url
        self._kinds = frozenset(EventKind(k) for k in kinds)
        self._secret_file = secret_file
        self._recorder_id = recorder_id
        self._stop = asyncio.Event()
        self._secret = b""
        self.status = WebhookStatus()

    def open(self) -> None:
        """Read the secret (blocking); a missing or empty secret file stops the daemon's start."""
        try:
            self._secret = Path(self._secret_file).read_bytes().strip()
        except OSError as error:
            raise VmsdError(
                ErrorKind.FAILED_PRECONDITION,
                f"[[events.webhooks]] secret_file {self._secret_file!r}: cannot read it ({error.strerror or error})",
            ) from None
        if not self._secret:
            raise VmsdError(
                ErrorKind.FAILED_PRECONDITION, f"[[events.webhooks]] secret_file {self._secret_file!r} is empty"
            )

    async def aclose(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        secret = self._secret
        loop = asyncio.get_running_loop()
        subscription = self._bus.subscribe(loop, max_queue=MAX_QUEUE)
        self.status.last_seq = self._bus.window()[1]
        try:
            while not self._stop.is_set():
                page = await asyncio.to_thread(self._bus.stored_after, self.status.last_seq, PAGE)
                for event in page:
                    wanted = not self._kinds or event.kind in self._kinds
                    if wanted and not await self._deliver(secret, event):
                        return  # stopping
                    self.status.last_seq = event.seq
                if len(page) < PAGE:
                    subscription = await self._wait(subscription, loop)
        finally:
            subscription.close()

    async def _wait(self, subscription: Subscription, loop: asyncio.AbstractEventLoop) -> Subscription:
        """Until something new is published (or stop); renews a cut-off subscription."""
        stop = asyncio.ensure_future(self._stop.wait())
        nxt = asyncio.ensure_future(subscription.next())
        try:
            await asyncio.wait({stop, nxt}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (stop, nxt):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, SubscriberCutOff):
                    await task
        if nxt.done() and not nxt.cancelled() and isinstance(nxt.exception(), SubscriberCutOff):
            subscription.close()
            return self._bus.subscribe(loop, max_queue=MAX_QUEUE)
        return subscription

    async def _deliver(self, secret: bytes, event: Event) -> bool:
        """POST until the receiver answers 2xx; False when asked to stop first."""
        data = body(event, self._recorder_id)
        delay_s = RETRY_INITIAL_S
        while not self._stop.is_set():
            try:
                await asyncio.to_thread(self._post, data, signature(secret, data))
                self.status.delivered += 1
                return True
            except Exception as error:
                # connection, a malformed status line, an HTTP error) is one failed try: the
                # delivery is retried, never abandoned with the task ending unseen.
                self.status.failures += 1
                self.status.last_error = scrub(str(error))
                log.warning(
                    "webhook_delivery_failed",
                    url=redact_url(self.url),
                    seq=event.seq,
                    error=self.status.last_error,
                    retry_in_s=delay_s,
                )
            await wait_event(self._stop, delay_s)
            delay_s = min(delay_s * 2, RETRY_MAX_S)
        return False

    def _post(self, data: bytes, signed: str) -> None:
        request = urllib.request.Request(  # the operator's configured http(s) URL
            self.url,
            data=data,
            method="POST",
            headers={"Content-Type": "application/json", "X-Vmsd-Signature": signed},
        )
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as answer:
            if not 200 <= answer.status < 300:
                raise OSError(f"HTTP {answer.status}")
