"""The site-wide operations of one recorder, as one component for the daemon to run: its etcd
link (link.py), the footage directory it publishes to and reads from (footage.py), the site's
holds it keeps in step with its own (holds.py), and its client for calls to peers (peers.py).
The use cases reach them through vmsd.services.site_wide and HoldService's `on_change`.
"""

from __future__ import annotations

import asyncio

from vmsd.audit import AuditLog
from vmsd.config import Config
from vmsd.retention.holds import Holds
from vmsd.site.footage import FootageDirectory
from vmsd.site.holds import HoldSync
from vmsd.site.link import SiteLink
from vmsd.site.peers import PeerClient
from vmsd.storage.catalogue import Catalogue

__all__ = ["SiteOperations"]


class SiteOperations:
    """No I/O in the constructor; `run()` until cancelled; `aclose()` closes channels."""

    def __init__(self, config: Config, catalogue: Catalogue, holds: Holds, audit: AuditLog) -> None:
        if config.site is None:
            raise ValueError("SiteOperations needs a [site] table")
        self.link = SiteLink(config.site)
        self.footage = FootageDirectory(self.link, config.recorder_id)
        self.holds = HoldSync(self.link, holds, config.recorder_id, audit=audit)
        # The token and TLS credentials arrive at start (`accept_site_token`, `peers.accept_credentials`):
        # reading their files is I/O.
        self.peers = PeerClient(insecure=config.site.insecure)
        self._catalogue = catalogue
        # Set by the daemon when retention started without the site's holds (etcd away at start).
        self.holds_overdue = False

    @property
    def alarms(self) -> dict[str, str]:
        if self.holds_overdue and not self.holds.synced.is_set():
            return {
                "site_holds_unsynced": "retention runs without the site's holds: etcd did not answer since start-up"
            }
        return {}

    def accept_site_token(self, token: str) -> None:
        self.peers.accept_site_token(token)

    async def run(self) -> None:
        """Publish footage and sync holds until cancelled (`holds.synced`: the first sync is done)."""
        await asyncio.gather(self.footage.run(self._catalogue), self.holds.run())

    async def aclose(self) -> None:
        await self.peers.aclose()
        await self.link.aclose()
