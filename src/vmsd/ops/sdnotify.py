"""The sd_notify protocol, spoken directly (no libsystemd, no dependency).

systemd passes `NOTIFY_SOCKET` (a filesystem path, or `@name` for an abstract socket) to a
`Type=notify` service, plus `WATCHDOG_USEC` (and `WATCHDOG_PID`) when `WatchdogSec=` is set. The
service sends newline-separated `KEY=VALUE` assignments, one datagram per message, on an
AF_UNIX datagram socket: `READY=1`, `STATUS=…`, `WATCHDOG=1`, `STOPPING=1`.

Contract of `Notifier`:
* The constructor reads the environment (or the mapping given) and does no I/O; the socket is
  created on first use.
* Every method is a no-op returning False when not running under systemd (no `NOTIFY_SOCKET`).
* No method raises: a failure to send is logged once (until a later send succeeds again) and
  reported by the False return value. A watchdog ping that cannot be delivered is, to systemd,
  the same as one that was never sent, which is the safe failure.
* Sends may block for at most `SEND_TIMEOUT_S` (systemd reads its socket promptly; the bound
  only matters if it is wedged itself). Methods are thread-safe.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Mapping

from vmsd.log import get_logger

log = get_logger(component="sdnotify")

SEND_TIMEOUT_S = 1.0
NS_PER_US = 1_000


def _parse_address(value: str) -> str | bytes | None:
    """`/run/systemd/notify` → the path; `@name` → the abstract name (a leading NUL byte)."""
    if value.startswith("/"):
        return value
    if value.startswith("@") and len(value) > 1:
        return b"\0" + value[1:].encode()
    return None  # e.g. `vsock:…` (systemd in a VM): not supported here


def _parse_watchdog_ns(environ: Mapping[str, str]) -> int | None:
    """The watchdog timeout for this process, or None when the watchdog is off or not ours."""
    usec = environ.get("WATCHDOG_USEC", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    pid = environ.get("WATCHDOG_PID", "")
    # WATCHDOG_PID names the process the watchdog is meant for; a child that inherited the
    # environment must not ping on its parent's behalf.
    if pid and (not pid.isdigit() or int(pid) != os.getpid()):
        return None
    return int(usec) * NS_PER_US


class Notifier:
    """Sends state changes and watchdog pings to systemd; a no-op outside systemd."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        raw = env.get("NOTIFY_SOCKET", "")
        self._address = _parse_address(raw) if raw else None
        self._unsupported = raw if raw and self._address is None else ""
        self._watchdog_ns = _parse_watchdog_ns(env) if self._address is not None else None
        self._lock = threading.Lock()
        self._socket: socket.socket | None = None
        self._failing = False

    @property
    def enabled(self) -> bool:
        """True when running under systemd with a notification socket we can use."""
        return self._address is not None

    @property
    def watchdog_timeout_ns(self) -> int | None:
        """systemd's watchdog timeout (`WatchdogSec=`), or None when the watchdog is off."""
        return self._watchdog_ns

    def ready(self, status: str = "") -> bool:
        """Start-up is complete (systemd considers the service started from now on)."""
        return self.notify("READY=1", *([f"STATUS={status}"] if status else []))

    def status(self, text: str) -> bool:
        """A one-line status shown by `systemctl status`."""
        return self.notify(f"STATUS={text}")

    def watchdog(self, status: str = "") -> bool:
        """Keep-alive ping; only meaningful when `watchdog_timeout_ns` is set."""
        return self.notify("WATCHDOG=1", *([f"STATUS={status}"] if status else []))

    def stopping(self, status: str = "") -> bool:
        """Shutdown has begun (systemd stops expecting watchdog pings)."""
        return self.notify("STOPPING=1", *([f"STATUS={status}"] if status else []))

    def notify(self, *assignments: str) -> bool:
        """Send `KEY=VALUE` assignments as one datagram; True if it was delivered to the socket."""
        if self._address is None:
            if self._unsupported:
                self._warn_once(f"unsupported NOTIFY_SOCKET address {self._unsupported!r}")
            return False
        # A newline inside a value would start a new assignment: keep each on one line.
        message = "\n".join(a.replace("\n", " ") for a in assignments).encode()
        with self._lock:
            try:
                if self._socket is None:
                    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                    sock.settimeout(SEND_TIMEOUT_S)
                    self._socket = sock
                self._socket.sendto(message, self._address)
            except OSError as error:
                self._warn_once_locked(f"{type(error).__name__}: {error}")
                return False
            if self._failing:
                self._failing = False
                log.info("sd_notify_recovered")
            return True

    def close(self) -> None:
        with self._lock:
            if self._socket is not None:
                self._socket.close()
                self._socket = None

    def _warn_once(self, error: str) -> None:
        with self._lock:
            self._warn_once_locked(error)

    def _warn_once_locked(self, error: str) -> None:
        if not self._failing:
            self._failing = True
            log.warning("sd_notify_failed", error=error, detail="further failures are not logged until one succeeds")
