"""Which recorders of the site hold footage of which camera, in etcd, for site-wide answers.

    /vmsd/<site>/footage/<camera_id>/<recorder_id>   "{}", no lease: it outlives the recorder
    /vmsd/<site>/recorders/<recorder_id>             "{}", no lease: every recorder that ever ran

A recorder publishes a key for every camera its catalogue has footage of (at start-up and then
periodically: `publish`), so that a recorder that is down is still known to hold footage and is
reported UNAVAILABLE instead of being silently left out of an answer. Ownership and liveness are
the coordinator's keys (keys.py): the camera's current owner is a holder too (its first segment
may not be published yet), and a holder is live when its member key exists (on its lease).

Blocking I/O: none (aetcd is asyncio). etcd errors become UNAVAILABLE `VmsdError`s.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from vmsd.errors import ErrorKind, VmsdError
from vmsd.log import get_logger
from vmsd.recordings.search import Unavailable
from vmsd.site.link import SiteLink
from vmsd.storage.catalogue import Catalogue

__all__ = ["SITE_PART", "FootageDirectory", "PeerRecorder"]

log = get_logger(component="site")

# How often the cameras with footage here are looked for and published: a camera this recorder
# started recording (a failover) is a holder through its owner key meanwhile.
PUBLISH_INTERVAL_S = 10.0

# The "recorder" of an unavailable part that is the site itself (etcd), not one recorder.
SITE_PART = "site"


@dataclass(frozen=True)
class PeerRecorder:
    """Another recorder of the site: its recorder_id and where its gRPC answers (HOST:PORT)."""

    recorder_id: str
    address: str


def _json(data: bytes) -> dict[str, Any]:
    value = json.loads(data)
    return value if isinstance(value, dict) else {}


class FootageDirectory:
    """The holders of each camera's footage, from etcd. No I/O in the constructor; `run()`
    publishes this recorder's cameras until cancelled."""

    def __init__(self, link: SiteLink, recorder_id: str) -> None:
        self._link = link
        self._prefix = link.keys.prefix
        self._recorder_id = recorder_id
        self._published: set[str] = set()

    def _footage(self, camera_id: str) -> bytes:
        return self._prefix + b"footage/" + camera_id.encode() + b"/"

    async def publish(self, camera_ids: list[str]) -> None:
        """Say that this recorder is one of the site's, and holds footage of these cameras (each
        key written once per run)."""
        keys = [(f"recorder:{self._recorder_id}", self._prefix + b"recorders/" + self._recorder_id.encode())]
        keys += [(c, self._footage(c) + self._recorder_id.encode()) for c in sorted(set(camera_ids))]
        for name, key in keys:
            if name in self._published:
                continue
            try:
                client = await self._link.client()
                await client.put(key, b"{}")
            except Exception as error:
                raise VmsdError(ErrorKind.UNAVAILABLE, f"the site's etcd cannot be reached ({error})") from None
            self._published.add(name)

    async def owner(self, camera_id: str) -> PeerRecorder | None:
        """The OTHER recorder that owns (records) the camera now, with its address; None when
        this recorder owns it or nobody does. UNAVAILABLE when etcd does not answer."""
        keys = self._link.keys
        try:
            client = await self._link.client()
            owner = await client.get(keys.owner(camera_id))
            recorder_id = str(_json(owner.value).get("recorder_id", "")) if owner is not None else ""
            if not recorder_id or recorder_id == self._recorder_id:
                return None
            member = await client.get(keys.member(recorder_id))
        except Exception as error:
            raise VmsdError(ErrorKind.UNAVAILABLE, f"the site's etcd cannot be reached ({error})") from None
        address = str(_json(member.value).get("address", "")) if member is not None else ""
        return PeerRecorder(recorder_id, address) if address else None

    async def recorders(self) -> tuple[list[PeerRecorder], list[Unavailable]]:
        """Every OTHER recorder of the site: the live ones (to ask) and those that ran once and
        are not live now (unavailable), as `holders` does for one camera."""
        return await self._peers(self._prefix + b"recorders/", None)

    async def run(self, catalogue: Catalogue) -> None:
        """Publish the cameras the catalogue has footage of, now and every PUBLISH_INTERVAL_S."""
        while True:
            try:
                await self.publish(await asyncio.to_thread(_cameras_with_footage, catalogue))
            except VmsdError as error:
                log.warning("site_footage_not_published", error=error.message)
            except Exception:  # a bug here must not end the publishing (nor the daemon)
                log.exception("site_footage_publish_failed")
            await asyncio.sleep(PUBLISH_INTERVAL_S)

    async def holders(self, camera_id: str) -> tuple[list[PeerRecorder], list[Unavailable]]:
        """The OTHER recorders holding footage of `camera_id` (published, or its owner now): the
        live ones with their address, and the others as unavailable. Without etcd: nobody to
        ask, and the site itself unavailable (this recorder's own part still answers)."""
        return await self._peers(self._footage(camera_id), camera_id)

    async def _peers(self, prefix: bytes, camera_id: str | None) -> tuple[list[PeerRecorder], list[Unavailable]]:
        keys = self._link.keys
        try:
            client = await self._link.client()
            # Three independent reads, at once (a search waits for them).
            listed, owner, members = await asyncio.gather(
                client.get_prefix(prefix, keys_only=True),
                client.get(keys.owner(camera_id)) if camera_id is not None else _none(),
                client.get_prefix(keys.members),
            )
        except Exception as error:
            log.warning("site_directory_unavailable", camera_id=camera_id, error=str(error))
            reason = (
                f"UNAVAILABLE: the site's etcd cannot be reached ({type(error).__name__}): "
                "other recorders' part is missing"
            )
            return [], [Unavailable(SITE_PART, reason)]
        ids = {kv.key.rsplit(b"/", 1)[-1].decode() for kv in listed}
        if owner is not None:
            ids.add(str(_json(owner.value).get("recorder_id", "")))
        live = {kv.key.rsplit(b"/", 1)[-1].decode(): str(_json(kv.value).get("address", "")) for kv in members}
        if camera_id is None:
            ids |= set(live)
        ids.discard("")
        ids.discard(self._recorder_id)
        peers = [PeerRecorder(r, live[r]) for r in sorted(ids) if live.get(r)]
        missing = [
            Unavailable(r, "UNAVAILABLE: not a live member of the site (no lease): its part cannot be listed")
            for r in sorted(ids)
            if not live.get(r)
        ]
        return peers, missing


async def _none() -> None:
    return None


def _cameras_with_footage(catalogue: Catalogue) -> list[str]:
    return [c for c in catalogue.camera_ids() if catalogue.last_segment(c) is not None]
