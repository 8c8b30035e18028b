"""Talking to a running daemon's web console in tests: its URL, logins, the audit trail."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import aiohttp

from tests.support.rpc import RunningDaemon, token
from vmsd.audit import AuditRecord
from vmsd.clock import FakeClock


@dataclass
class Console:
    running: RunningDaemon
    clock: FakeClock

    @property
    def url(self) -> str:
        web = self.running.daemon.web
        assert web is not None, "the daemon was started without [web] listen"
        return f"http://127.0.0.1:{web.port}"

    async def login(self, client: aiohttp.ClientSession, role: str) -> dict[str, Any]:
        """Log `client` in with `role`'s token; the login answer (with its csrf)."""
        return await login(client, self.url, role)

    def audit(self, action: str) -> list[AuditRecord]:
        """The audit records of `action` (e.g. 'POST /api/v1/session'), oldest first."""
        daemon = self.running.daemon

        async def query() -> list[AuditRecord]:
            records, _ = daemon.audit.query(actions=[action], limit=10_000)
            return records

        return sorted(self.running.run(query()), key=lambda r: r.seq)

    def audit_count(self, action: str, count: int, timeout_s: float = 10.0) -> list[AuditRecord]:
        """The records of `action` once there are at least `count`: a streamed answer (a
        download) is audited when its handler returns, just after the client has the last byte."""
        deadline = time.monotonic() + timeout_s
        while len(records := self.audit(action)) < count:
            assert time.monotonic() < deadline, f"{action}: {len(records)} audit record(s), expected {count}"
            time.sleep(0.02)
        return records


async def login(client: aiohttp.ClientSession, url: str, role: str) -> dict[str, Any]:
    """Log `client` in to the console at `url` with `role`'s token; the login answer (with its csrf)."""
    async with client.post(f"{url}/api/v1/session", json={"token": token(role)}) as response:
        assert response.status == 200, await response.text()
        answer: dict[str, Any] = await response.json()
        return answer


def bearer(role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(role)}"}
