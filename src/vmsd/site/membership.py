"""This recorder's membership of the site: one etcd lease, its member key, and its fencing deadline.

The lease (TTL [site] lease_ttl) carries the member key and every owner key this recorder holds:
when the recorder dies, etcd deletes them all one TTL after its last keepalive, and its peers
take the cameras over. Keepalives go every TTL/3.

The fencing deadline is the recorder's own view of how long its ownership certainly lasts: the
time the last ANSWERED keepalive was sent, plus the TTL, minus a margin (etcd counts the TTL from
when it received the keepalive, later than we sent it). Past the deadline a peer may own our
cameras already: the recorder treats itself as unfenced (it keeps recording, and says so).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from vmsd import __version__
from vmsd.clock import Clock
from vmsd.config import SiteConfig
from vmsd.errors import ErrorKind, VmsdError
from vmsd.log import get_logger
from vmsd.site.etcd import SiteEtcdClient, explain
from vmsd.site.keys import MemberInfo, SiteKeys, decode_member, encode
from vmsd.units import NS_PER_S

log = get_logger(component="site")

# Taken off the TTL for the fencing deadline: clock rates differ a little, and etcd's leader may
# count from a moment before our send when a keepalive is retried.
FENCING_MARGIN_NS = NS_PER_S


class Membership:
    """Join (grant a lease, create the member key), keep the lease alive, know the deadline.

    `on_lease_lost` is called (on the event loop) when etcd says the lease is gone: every key on it,
    owner keys included, has been deleted; the coordinator re-joins with a new lease."""

    def __init__(
        self,
        client: SiteEtcdClient,
        site: SiteConfig,
        recorder_id: str,
        address: str,
        clock: Clock,
        *,
        on_lease_lost: Callable[[], None],
    ) -> None:
        self._client = client
        self._site = site
        self.keys = SiteKeys(site.name)
        self.recorder_id = recorder_id
        self._address = address
        self._clock = clock
        self._on_lease_lost = on_lease_lost
        self.ttl_ns = site.lease_ttl_ns
        self.lease_id: int | None = None
        self.owned = 0
        # Mono time until which our keys certainly exist (0: never joined).
        self.deadline_mono_ns = 0
        self.keepalive_failures = 0

    def info(self) -> MemberInfo:
        return MemberInfo(
            self.recorder_id, self._address, self._site.capacity, self.owned, __version__, self._site.failback
        )

    @property
    def fenced(self) -> bool:
        return self.lease_id is not None and self._clock.mono_ns() < self.deadline_mono_ns

    async def join(self) -> None:
        """Grant a lease and create the member key on it.

        VmsdError ALREADY_EXISTS when another live recorder holds this recorder_id (the key
        exists on a lease that is not ours); the caller retries while an old lease of our own
        previous process may still be running out."""
        sent_ns = self._clock.mono_ns()
        lease = await self._client.lease(self.ttl_ns // NS_PER_S)
        key = self.keys.member(self.recorder_id)
        tx = self._client.transactions
        ok, responses = await self._client.transaction(
            compare=[tx.create(key) == 0],
            success=[tx.put(key, encode(self.info()), lease=lease.id)],
            failure=[tx.get(key)],
        )
        if not ok:
            await self._client.revoke_lease(lease.id)
            holder = "?"
            if responses and responses[0]:
                holder = decode_member(responses[0][0][0]).address
            raise VmsdError(
                ErrorKind.ALREADY_EXISTS,
                f"recorder_id {self.recorder_id!r} is already a live member of site {self._site.name!r} "
                f"(at {holder}): recorder_id must be unique in the site. If this recorder has just "
                f"restarted, its previous lease runs out within lease_ttl and it joins then",
            )
        self.lease_id = lease.id
        self.deadline_mono_ns = sent_ns + self.ttl_ns - FENCING_MARGIN_NS
        log.info("site_joined", site=self._site.name, lease=f"{lease.id:x}", ttl_s=self.ttl_ns // NS_PER_S)

    async def publish(self) -> None:
        """Rewrite the member key (owned count changed)."""
        if self.lease_id is None:
            return
        await self._client.put(self.keys.member(self.recorder_id), encode(self.info()), lease=self.lease_id)

    async def keepalive_once(self) -> bool:
        """One keepalive; True when answered (the deadline moves on). Errors count as unanswered."""
        lease_id = self.lease_id
        if lease_id is None:
            return False
        sent_ns = self._clock.mono_ns()
        try:
            reply = await self._client.refresh_lease(lease_id)
        except Exception as error:  # etcd down, no quorum, timeout: the deadline stays where it was
            self.keepalive_failures += 1
            if self.keepalive_failures in (1, 10) or self.keepalive_failures % 100 == 0:
                log.warning("site_keepalive_failed", failures=self.keepalive_failures, error=explain(error, self._site))
            return False
        if reply is None or reply.TTL <= 0:
            log.error("site_lease_lost", lease=f"{lease_id:x}")
            self.lease_id = None
            self._on_lease_lost()
            return False
        if self.keepalive_failures:
            log.info("site_keepalive_recovered", after_failures=self.keepalive_failures)
        self.keepalive_failures = 0
        self.deadline_mono_ns = max(self.deadline_mono_ns, sent_ns + self.ttl_ns - FENCING_MARGIN_NS)
        return True

    async def run(self) -> None:
        """Keepalives every TTL/3 while joined (the coordinator joins and re-joins)."""
        interval_s = self.ttl_ns / NS_PER_S / 3
        while True:
            await self.keepalive_once()
            await asyncio.sleep(interval_s)

    async def leave(self) -> None:
        """Revoke the lease: the member key and every owner key go at once (a clean stop hands the
        cameras over without waiting for the TTL)."""
        lease_id, self.lease_id = self.lease_id, None
        if lease_id is not None:
            await self._client.revoke_lease(lease_id)
