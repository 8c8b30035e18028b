"""The site-wide operations of one recorder, as one component for the daemon to run: its etcd
link (link.py), the footage directory it publishes to and reads from (footage.py), and its
client for calls to peers (peers.py). The use cases reach them through vmsd.services.site.
"""

from __future__ import annotations

from vmsd.config import Config
from vmsd.site.footage import FootageDirectory
from vmsd.site.link import SiteLink
from vmsd.site.peers import PeerClient
from vmsd.storage.catalogue import Catalogue

__all__ = ["SiteOperations"]


class SiteOperations:
    """No I/O in the constructor; `run()` until cancelled; `aclose()` closes channels."""

    def __init__(self, config: Config, catalogue: Catalogue) -> None:
        if config.site is None:
            raise ValueError("SiteOperations needs a [site] table")
        self.link = SiteLink(config.site)
        self.footage = FootageDirectory(self.link, config.recorder_id)
        # The token arrives at start (`accept_site_token`): reading its file is I/O.
        self.peers = PeerClient()
        self._catalogue = catalogue

    def accept_site_token(self, token: str) -> None:
        self.peers.accept_site_token(token)

    async def run(self) -> None:
        await self.footage.run(self._catalogue)

    async def aclose(self) -> None:
        await self.peers.aclose()
        await self.link.aclose()
