"""Debian's chromium driven by playwright in the end-to-end tests: what a page logged wrong."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from tests.support.daemon import DaemonProcess

CHROMIUM = "/usr/bin/chromium"


@dataclass
class Problems:
    """Console errors and uncaught exceptions of every page a test opened.

    Chromium logs every HTTP error answer as a console error ("Failed to load resource"); the
    refusals a test provokes on purpose are named in `expected` as (path, status) and only those
    are let through."""

    seen: list[str] = field(default_factory=list)
    expected: set[tuple[str, int]] = field(default_factory=set)

    def watch(self, page: Any) -> None:
        page.on("console", self._console)
        page.on("pageerror", lambda e: self.seen.append(f"pageerror: {e}"))

    def _console(self, message: Any) -> None:
        if message.type != "error":
            return
        path = urlsplit(message.location.get("url", "")).path
        for expected_path, status in self.expected:
            if path == expected_path and f"status of {status} " in message.text:
                return
        self.seen.append(f"console.error: {message.text} ({message.location})")


def datetime_input(page: Any, ms: int) -> str:
    """A datetime-local input's value (the browser's local time, whole seconds) for wall time `ms`."""
    return str(
        page.evaluate(
            "ms => { const d = new Date(ms); const p = n => String(n).padStart(2, '0');"
            " return `${d.getFullYear()}-${p(d.getMonth()+1)}-${p(d.getDate())}T${p(d.getHours())}:"
            "${p(d.getMinutes())}:${p(d.getSeconds())}`; }",
            ms,
        )
    )


def web_port(process: DaemonProcess) -> int:
    """The port the daemon's console listens on (`[web] listen` with port 0), from its log."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for line in process.log().splitlines():
            if '"web_started"' in line:
                return int(json.loads(line)["port"])
        time.sleep(0.1)
    raise AssertionError(f"the daemon never logged web_started:\n{process.log()}")
