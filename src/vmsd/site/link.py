"""The etcd client of the site-wide operations (footage directory, site holds), apart from the
coordinator's: a slow or failing search or hold sync never delays a keepalive.

Opened on first use (`client()`), so that constructing it does no I/O and a recorder whose etcd
is down at start-up still starts; `aclose()` closes it.
"""

from __future__ import annotations

import asyncio
import contextlib

from vmsd.config import SiteConfig
from vmsd.site.etcd import SiteEtcdClient, open_client
from vmsd.site.keys import SiteKeys

__all__ = ["SiteLink"]


class SiteLink:
    def __init__(self, site: SiteConfig) -> None:
        self._site = site
        self.keys = SiteKeys(site.name)
        self._client: SiteEtcdClient | None = None
        self._lock = asyncio.Lock()

    async def client(self) -> SiteEtcdClient:
        async with self._lock:
            if self._client is None:
                self._client = await open_client(self._site)
            return self._client

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await client.close()
