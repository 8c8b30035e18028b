"""Site-wide evidence holds: every hold is kept in etcd and applied by every recorder.

    /vmsd/<site>/holds/<hold_key>                    SiteHold (JSON), no lease; released, never deleted
    /vmsd/<site>/applied/<hold_key>/<recorder_id>    the id of the recorder's local copy

A hold is made on one recorder (its local catalogue first: it protects that recorder's footage
at once, whatever etcd does), then published by `sync()` under the key "<recorder>.<local id>".
Every recorder's `sync()` copies the site's holds it has not applied into its own catalogue
(retention there keeps the footage they cover: retention/policy.py), records which local hold
is its copy, and carries releases both ways: a copy released here (by an operator on this
recorder) releases the site's hold, a released site hold releases every copy. A recorder that
was down when a hold was made or released applies it at its next start-up sync, which the daemon
runs before retention starts (app.py), and on every change afterwards (a watch).

Every recorder applies every site hold (the same camera list on each): one that holds none of
the camera's footage keeps a harmless copy, and is covered if the camera fails over to it.
A crash between a local copy and its `applied` key leaves a copy that the next sync publishes as
a hold of its own (one hold too many, never one too few); the operator releases both.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict, dataclass

from vmsd.audit import AuditEntry, AuditLog
from vmsd.errors import ErrorKind, VmsdError
from vmsd.log import get_logger
from vmsd.retention.holds import Holds
from vmsd.site.link import SiteLink
from vmsd.storage.catalogue import HoldRow
from vmsd.waits import wait_event

__all__ = ["HoldSync", "SiteHold"]

log = get_logger(component="site")

# A safety net beside the watch (a missed event, a watch broken while etcd was away).
SYNC_INTERVAL_S = 30.0
WATCH_RETRY_S = 1.0


@dataclass(frozen=True)
class SiteHold:
    camera_ids: list[str]
    start_ns: int
    end_ns: int
    case_ref: str
    reason: str
    created_by: str
    created_ns: int
    until_ns: int | None
    origin: str  # the recorder it was made on
    released_ns: int | None = None
    released_by: str | None = None
    release_reason: str | None = None

    @classmethod
    def of(cls, row: HoldRow, origin: str) -> SiteHold:
        return cls(
            list(row.camera_ids), row.start_ns, row.end_ns, row.case_ref, row.reason, row.created_by,
            row.created_ns, row.until_ns, origin, row.released_ns, row.released_by, row.release_reason,
        )  # fmt: skip

    def encode(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def decode(cls, data: bytes) -> SiteHold:
        value = json.loads(data)
        if not isinstance(value, dict):
            raise ValueError("expected a JSON object")
        return cls(**value)


class HoldSync:
    """Keeps this recorder's holds and the site's in step. No I/O in the constructor.

    `sync()` once (raises UNAVAILABLE when etcd does not answer); `run()` syncs on every change
    of the site's holds and every SYNC_INTERVAL_S until cancelled; `synced` is set after the
    first successful sync (retention waits for it)."""

    def __init__(self, link: SiteLink, holds: Holds, recorder_id: str, *, audit: AuditLog | None = None) -> None:
        self._link = link
        self._holds = holds
        self._recorder_id = recorder_id
        # What the site's holds change here is audited here, by the daemon (principal "vmsd"):
        # `site.hold_applied` and `site.hold_released`, naming the site's hold and its maker.
        self._audit = audit
        self._prefix = link.keys.prefix + b"holds/"
        self._applied = link.keys.prefix + b"applied/"
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self.synced = asyncio.Event()
        self._revision = 0  # of the site's holds as the last sync read them

    def _hold_key(self, key: str) -> bytes:
        return self._prefix + key.encode()

    def _applied_key(self, key: str) -> bytes:
        return self._applied + key.encode() + b"/" + self._recorder_id.encode()

    async def sync(self) -> None:
        """Apply the site's holds here and publish this recorder's (see the module docstring)."""
        async with self._lock:  # one sync at a time: two would both copy a new hold
            try:
                await self._sync()
            except VmsdError:
                raise
            except Exception as error:
                raise VmsdError(ErrorKind.UNAVAILABLE, f"the site's holds could not be synced ({error})") from error
        self.synced.set()

    async def _sync(self) -> None:
        client = await self._link.client()
        site: dict[str, SiteHold] = {}
        found = await client.get_prefix(self._prefix)
        # The watch resumes after what this read saw: a change made before the watch is set up
        # (or while it was broken) is still told to it.
        self._revision = max(self._revision, int(found.header.revision))
        for kv in found:
            key = bytes(kv.key)[len(self._prefix) :].decode()
            try:
                site[key] = SiteHold.decode(kv.value)
            except (ValueError, TypeError) as error:
                log.warning("site_hold_unreadable", key=key, error=str(error))
        mine: dict[str, int] = {}
        suffix = b"/" + self._recorder_id.encode()
        for kv in await client.get_prefix(self._applied):
            raw = bytes(kv.key)
            if raw.endswith(suffix):
                mine[raw[len(self._applied) : -len(suffix)].decode()] = int(kv.value)
        local = {row.id: row for row in await asyncio.to_thread(self._holds.list, include_released=True)}
        # 1. The site's holds not applied here: copy them (released ones too, so that `mine` is complete).
        for key, hold in sorted(site.items()):
            if key in mine and mine[key] in local:
                continue
            row = await asyncio.to_thread(self._copy, hold)
            await self._record("site.hold_applied", key, row, hold.reason, created_by=hold.created_by)
            await client.put(self._applied_key(key), str(row.id).encode())
            mine[key] = row.id
            local[row.id] = row
            log.info("site_hold_applied", hold=key, local_hold_id=row.id, released=hold.released_ns is not None)
        # 2. Releases, both ways.
        for key, local_id in mine.items():
            copy, site_hold = local.get(local_id), site.get(key)
            if copy is None or site_hold is None:
                continue
            if site_hold.released_ns is not None and copy.released_ns is None:
                released = await asyncio.to_thread(
                    self._holds.release,
                    local_id,
                    released_by=site_hold.released_by or "",
                    reason=site_hold.release_reason or "",
                )
                await self._record(
                    "site.hold_released", key, released, site_hold.release_reason or "",
                    released_by=site_hold.released_by or "",
                )  # fmt: skip
                log.info("site_hold_released_here", hold=key, local_hold_id=local_id)
            elif copy.released_ns is not None and site_hold.released_ns is None:
                await client.put(self._hold_key(key), SiteHold.of(copy, site_hold.origin).encode())
                log.info("site_hold_released", hold=key, local_hold_id=local_id)
        # 3. Holds made here and not yet on the site: publish them.
        copies = set(mine.values())
        for local_id, row in sorted(local.items()):
            if local_id in copies or row.released_ns is not None:  # released before it was published: moot
                continue
            key = f"{self._recorder_id}.{local_id}"
            await client.put(self._hold_key(key), SiteHold.of(row, self._recorder_id).encode())
            await client.put(self._applied_key(key), str(local_id).encode())
            log.info("site_hold_published", hold=key, local_hold_id=local_id)

    async def _record(self, action: str, key: str, row: HoldRow, reason: str, **detail: str) -> None:
        if self._audit is None:
            return
        entry = AuditEntry(
            action=action,
            principal="vmsd",
            camera_id=",".join(row.camera_ids)[:200],
            start_ns=row.start_ns,
            end_ns=row.end_ns,
            reason=reason,
            case_ref=row.case_ref,
            detail={"site_hold": key, "hold_id": row.id, **detail},
        )
        await asyncio.to_thread(self._audit.append, entry)

    def _copy(self, hold: SiteHold) -> HoldRow:
        row = self._holds.mirror(
            camera_ids=hold.camera_ids,
            start_ns=hold.start_ns,
            end_ns=hold.end_ns,
            case_ref=hold.case_ref,
            reason=hold.reason,
            created_by=hold.created_by,
            created_ns=hold.created_ns,
            until_ns=hold.until_ns,
        )
        if hold.released_ns is not None:
            row = self._holds.release(row.id, released_by=hold.released_by or "", reason=hold.release_reason or "")
        return row

    def changed(self) -> None:
        """A hold was made or released here: sync soon (`run()` does it)."""
        self._wake.set()

    async def run(self) -> None:
        watcher = asyncio.create_task(self._watch(), name="site-holds-watch")
        try:
            while True:
                self._wake.clear()
                try:
                    await self.sync()
                except VmsdError as error:
                    log.warning("site_holds_not_synced", error=error.message)
                await wait_event(self._wake, SYNC_INTERVAL_S)
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)

    async def _watch(self) -> None:
        """Wake `run()` on every change of the site's holds after the revision the last sync
        read (so that none falls between a sync and the watch being set up)."""
        await self.synced.wait()
        while True:
            try:
                client = await self._link.client()
                watch = await client.watch_prefix(self._prefix, start_revision=self._revision + 1)
                async for _event in watch:
                    self._wake.set()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.debug("site_holds_watch_failed", error=str(error) or type(error).__name__)
            self._wake.set()  # whatever the broken watch missed, a sync finds
            await asyncio.sleep(WATCH_RETRY_S)
