"""Ownership of the site's cameras: claims, failover, fencing, operator moves and failback.

Invariants (docs/design/site.md):
- A camera's owner key exists only on its owner's lease and is created only if absent (a
  transaction comparing create_revision to 0). Its create revision is the ownership EPOCH: a
  later owner always has a larger one. Never a home-made election: etcd leases and transactions.
- Unowned cameras are claimed only by the live eligible recorder placement chooses (weighted
  rendezvous hashing), so peers do not race; a disagreement costs a failed transaction.
- Coordination faults never stop recording. A recorder keeps recording every camera it has; past
  its fencing deadline it marks those runs unfenced; it stops a camera (after the current
  segment) only once it SEES a newer epoch for it. Overlap is recorded by both, never merged.
- Moves are make-before-break: the target claims and records at once, the old owner records on
  until its current segment ends.

The coordinator re-reads the site's keys on every watch event and at least every POLL_S (the
watch may be down while etcd is), and drives the CameraManager: `record_owned` / `release_owned`.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

from vmsd.cameras import CameraManager, OwnedCamera
from vmsd.clock import Clock
from vmsd.config import Config, SiteConfig
from vmsd.errors import ErrorKind, VmsdError
from vmsd.ingest.fencing import Fencing
from vmsd.log import get_logger
from vmsd.ops.metrics import SiteSample
from vmsd.site import placement
from vmsd.site.etcd import SiteEtcdClient, explain, open_client
from vmsd.site.keys import (
    MoveRequest,
    OwnerInfo,
    SiteKeys,
    encode,
)
from vmsd.site.membership import Membership
from vmsd.site.view import Owner, SiteView, read_view
from vmsd.units import NS_PER_S
from vmsd.waits import wait_event

log = get_logger(component="site")

POLL_S = 0.5  # the longest a change goes unnoticed when the watch is down
WATCH_RETRY_S = 1.0
MAX_SETTLE_NS = 5 * NS_PER_S


@dataclass
class SiteCounters:
    failovers: int = 0  # cameras taken over from an owner that was lost
    moves: int = 0  # cameras claimed by an operator's move or failback
    releases: int = 0  # cameras handed over to a newer epoch
    unfenced_marked: int = 0  # runs marked unfenced by this process


@dataclass(frozen=True)
class MemberStatus:
    recorder_id: str
    address: str
    alive: bool
    owned: int
    spare: int
    capacity: int
    version: str


@dataclass(frozen=True)
class OwnerStatus:
    camera_id: str
    owner: str  # "" when unowned
    epoch: int


@dataclass(frozen=True)
class SiteStatus:
    site: str
    recorder_id: str
    fenced: bool
    lease_ttl_ns: int
    members: list[MemberStatus]
    owners: list[OwnerStatus]
    recording: list[str] = field(default_factory=list)  # cameras this recorder records now


class SiteCoordinator:
    """This recorder's part in the site. Constructed without I/O; `run()` joins and coordinates
    until cancelled; `aclose()` leaves (revoking the lease hands the cameras over at once)."""

    def __init__(self, config: Config, cameras: CameraManager, clock: Clock) -> None:
        if config.site is None:
            raise ValueError("SiteCoordinator needs a [site] table")
        self._config = config
        self._site: SiteConfig = config.site
        self._cameras = cameras
        self._clock = clock
        self.recorder_id = config.recorder_id
        self.keys = SiteKeys(self._site.name)
        self._client: SiteEtcdClient | None = None
        self._membership: Membership | None = None
        self._wake = asyncio.Event()
        # The cameras this recorder records, with the fencing state their runs carry.
        self._fencing: dict[str, Fencing] = {}
        # Cameras whose owner key we have seen under the current lease (cleared when it is lost).
        self._confirmed: set[str] = set()
        # Another recorder's ownership we saw last, and when we first saw the camera unowned.
        self._last_owner: dict[str, Owner] = {}
        self._unowned_since_ns: dict[str, int] = {}
        self._ever_members: set[str] = set()
        self._fenced_state = False
        self._etcd_ok_mono_ns: int | None = None
        # Unowned cameras are claimed only a while (lease_ttl, at most MAX_SETTLE_NS) after this
        # process first joined: recorders
        # of a site started together see each other first, so the cameras are split among them
        # instead of all going to whichever joined first.
        self._claims_from_mono_ns: int | None = None
        self.counters = SiteCounters()
        self.alarms: dict[str, str] = {}
        self.view = SiteView({}, {}, {})
        self._tasks: list[asyncio.Task[None]] = []

    # -- lifecycle -----------------------------------------------------------------------------

    async def run(self) -> None:
        self._client = await open_client(self._site)
        self._membership = Membership(
            self._client,
            self._site,
            self.recorder_id,
            self._config.site_advertise,
            self._clock,
            on_lease_lost=self._lease_lost,
        )
        self._etcd_ok_mono_ns = self._clock.mono_ns()
        self._tasks = [
            asyncio.create_task(self._membership.run(), name="site-keepalive"),
            asyncio.create_task(self._watch(), name="site-watch"),
        ]
        try:
            while True:
                try:
                    await self.reconcile()
                except Exception:  # a bug in one pass must not end coordination (recording goes on)
                    log.exception("site_pass_failed")
                self._wake.clear()
                await wait_event(self._wake, POLL_S)
        finally:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def aclose(self) -> None:
        """After the recorders have stopped: revoke the lease so peers take over at once."""
        if self._membership is not None:
            try:
                await self._membership.leave()
                log.info("site_left", site=self._site.name)
            except Exception as error:  # etcd down: the lease runs out by itself
                log.warning("site_leave_failed", error=str(error) or type(error).__name__)
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.close()

    def _lease_lost(self) -> None:
        self._confirmed.clear()
        self._wake.set()

    async def _watch(self) -> None:
        """Wake the coordinator on every change under the site's prefix (deleted owner keys above all)."""
        assert self._client is not None
        while True:
            try:
                watch = await self._client.watch_prefix(self.keys.prefix)
                async for _event in watch:
                    self._wake.set()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.debug("site_watch_failed", error=str(error) or type(error).__name__)
            await asyncio.sleep(WATCH_RETRY_S)

    # -- one pass ------------------------------------------------------------------------------

    async def reconcile(self) -> None:
        """Join if needed, read the site, act on what changed. Every etcd failure leaves the
        cameras recording as they are."""
        membership = self._membership
        assert membership is not None and self._client is not None
        await self._apply_fencing()
        if membership.lease_id is None:
            try:
                await membership.join()
            except VmsdError as error:
                self._set_alarm("site_duplicate_recorder_id", error.message)
                return
            except Exception as error:
                self._etcd_failed(error)
                return
            self._set_alarm("site_duplicate_recorder_id", None)
            if self._claims_from_mono_ns is None:
                settle_ns = min(self._site.lease_ttl_ns, MAX_SETTLE_NS)
                self._claims_from_mono_ns = self._clock.mono_ns() + settle_ns
        try:
            view = await read_view(self._client, self.keys)
        except Exception as error:
            self._etcd_failed(error)
            return
        self._etcd_ok_mono_ns = self._clock.mono_ns()
        self._set_alarm("site_quorum_lost", None)
        self.view = view
        self._ever_members.update(view.members)
        owned_before = membership.owned
        await self._act(view)
        membership.owned = len(self._fencing)
        if membership.owned != owned_before:
            with contextlib.suppress(Exception):
                await membership.publish()
        await self._apply_fencing()

    async def _act(self, view: SiteView) -> None:
        me = self.recorder_id
        membership = self._membership
        assert membership is not None
        lease = membership.lease_id
        site_cameras = {c.id: c for c in self._cameras.site_cameras()}
        for camera_id in site_cameras:
            owner = view.owners.get(camera_id)
            if owner is None:
                self._unowned_since_ns.setdefault(camera_id, self._clock.wall_ns())
            else:
                self._unowned_since_ns.pop(camera_id, None)
                if owner.info.recorder_id != me:
                    self._last_owner[camera_id] = owner
        # 1. The cameras this recorder records: still ours, re-claim, or hand over to a newer epoch.
        reclaims: list[tuple[str, str]] = []
        for camera_id, fencing in list(self._fencing.items()):
            owner = view.owners.get(camera_id)
            if owner is not None and owner.info.recorder_id == me and owner.lease == lease:
                fencing.epoch = owner.epoch
                self._confirmed.add(camera_id)
            elif owner is not None and owner.epoch > fencing.epoch:
                self._release(camera_id, f"recorded by {owner.info.recorder_id} from epoch {owner.epoch}")
            elif owner is None and camera_id in site_cameras:
                move = view.moves.get(camera_id)
                if move is not None and move.to != me and move.to in view.members:
                    continue  # a move's target took the key and is claiming it: record on until it has
                # Our key went with a lost lease: claim it again (we never stopped recording).
                reclaims.append((camera_id, "reclaim"))
        await self._claim_all(reclaims)
        # 2. Owner keys of ours that we do not record (a claim whose recorder was still stopping).
        starts: list[tuple[str, int, tuple[int, str] | None]] = []
        for camera_id, owner in view.owners.items():
            mine = owner.info.recorder_id == me and owner.lease == lease
            if mine and camera_id not in self._fencing and camera_id in site_cameras:
                self._confirmed.add(camera_id)
                starts.append((camera_id, owner.epoch, self._hole(camera_id, owner.info, owner.epoch)))
        await self._start_all(starts)
        # 3. Moves: the target claims (make), the old owner sees the newer epoch (break).
        for camera_id, move in view.moves.items():
            await self._act_on_move(camera_id, move, view)
        # 4. Unowned cameras: claimed by the recorder placement chooses, unless reserved by a move.
        settling = self._claims_from_mono_ns is None or self._clock.mono_ns() < self._claims_from_mono_ns
        claims: list[tuple[str, str]] = []
        for camera_id, camera in site_cameras.items():
            if settling:
                break
            if camera_id in view.owners or camera_id in self._fencing:
                continue
            pending = view.moves.get(camera_id)
            if pending is not None and pending.to in view.members and pending.to != me:
                continue
            if placement.choose(camera_id, view.members.values(), camera.recorders) == me:
                claims.append((camera_id, "failover" if camera_id in self._last_owner else "placement"))
        await self._claim_all(claims)
        # 5. Failback: hand cameras placement prefers elsewhere to that recorder (make-before-break).
        if self._site.failback == "auto":
            await self._failback(view, site_cameras)

    async def _act_on_move(self, camera_id: str, move: MoveRequest, view: SiteView) -> None:
        assert self._client is not None and self._membership is not None
        me = self.recorder_id
        owner = view.owners.get(camera_id)
        tx = self._client.transactions
        if move.to not in view.members:
            # The target is gone: whoever owns the camera drops the request.
            if owner is not None and owner.info.recorder_id == me:
                await self._client.delete(self.keys.move(camera_id))
            return
        if move.to != me:
            return
        if owner is not None and owner.info.recorder_id == me and owner.lease == self._membership.lease_id:
            await self._client.delete(self.keys.move(camera_id))  # done
            return
        if owner is not None:
            # Take the key from the old owner only if it is still the one the request saw: the
            # camera is reserved for us (peers do not claim it) until we have claimed it.
            ok, _ = await self._client.transaction(
                compare=[tx.mod(self.keys.owner(camera_id)) == owner.mod_revision],
                success=[tx.delete(self.keys.owner(camera_id))],
                failure=[],
            )
            if not ok:
                return
        claimed = await self._claim_all([(camera_id, "move" if move.principal != "vmsd" else "failback")])
        if claimed:
            self.counters.moves += 1
            await self._client.delete(self.keys.move(camera_id))

    async def _failback(self, view: SiteView, site_cameras: dict[str, Any]) -> None:
        assert self._client is not None
        for camera_id in list(self._fencing):
            camera = site_cameras.get(camera_id)
            if camera is None or camera_id in view.moves:
                continue
            target = placement.preferred(camera_id, view.members.values(), camera.recorders)
            if target is None or target == self.recorder_id:
                continue
            request = MoveRequest(camera_id, target, "vmsd", "failback", self._clock.wall_ns())
            tx = self._client.transactions
            await self._client.transaction(
                compare=[tx.create(self.keys.move(camera_id)) == 0],
                success=[tx.put(self.keys.move(camera_id), encode(request))],
                failure=[],
            )
            log.info("site_failback_requested", camera_id=camera_id, to=target)

    # -- claims and recorders --------------------------------------------------------------------

    async def _claim_all(self, claims: list[tuple[str, str]]) -> set[str]:
        """Claim these (camera_id, how) and start recording the ones won; returns those claimed.

        All at once: the transactions concurrently, the recorders they start in one catalogue
        transaction. One by one, the 64 cameras of a lost recorder took seconds to claim on a busy
        box, on top of the lease running out (issue #15's failover goal)."""
        results = await asyncio.gather(*(self._claim_key(camera_id, how) for camera_id, how in claims))
        claimed: set[str] = set()
        starts: list[tuple[str, int, tuple[int, str] | None]] = []
        for (camera_id, _how), result in zip(claims, results, strict=True):
            if result is None:
                continue
            info, epoch = result
            claimed.add(camera_id)
            if camera_id in self._fencing:
                self._fencing[camera_id].epoch = epoch  # a re-claim: the recorder never stopped
            else:
                starts.append((camera_id, epoch, self._hole(camera_id, info, epoch)))
        await self._start_all(starts)
        return claimed

    async def _claim_key(self, camera_id: str, how: str) -> tuple[OwnerInfo, int] | None:
        """Create the camera's owner key on our lease if absent: (what we stored, the epoch), or
        None when another recorder has it (or etcd did not answer)."""
        assert self._client is not None and self._membership is not None
        lease = self._membership.lease_id
        if lease is None:
            return None
        previous = self._last_owner.get(camera_id)
        info = OwnerInfo(
            self.recorder_id,
            self._clock.wall_ns(),
            previous.epoch if previous else 0,
            previous.info.recorder_id if previous else "",
            how,
        )
        key = self.keys.owner(camera_id)
        tx = self._client.transactions
        try:
            ok, responses = await self._client.transaction(
                compare=[tx.create(key) == 0], success=[tx.put(key, encode(info), lease=lease)], failure=[]
            )
        except Exception as error:
            # No answer (an etcd election, a timeout): the claim may still have been applied. The
            # next pass sees the key on our lease and starts recording from it (step 2 of _act).
            log.warning("site_claim_unanswered", camera_id=camera_id, error=str(error) or type(error).__name__)
            return None
        if not ok:
            return None
        epoch = int(responses[0].response_put.header.revision)
        self._confirmed.add(camera_id)
        log.info("site_camera_claimed", camera_id=camera_id, epoch=epoch, how=how, previous_owner=info.previous_owner)
        return info, epoch

    def _hole(self, camera_id: str, info: OwnerInfo, epoch: int) -> tuple[int, str] | None:
        """The `failover` gap of a camera taken over from a lost owner (None for other claims).

        The old owner's last keepalive was about a TTL before its key went away: the hole starts
        no later than that (the gap closes at our first segment)."""
        if info.how != "failover" or not info.previous_owner or info.previous_owner == self.recorder_id:
            return None
        since_ns = self._unowned_since_ns.get(camera_id, info.claimed_ns)
        detail = (
            f"{info.previous_owner} lost (epoch {info.previous_epoch}); recorded by {self.recorder_id} "
            f"from epoch {epoch}"
        )
        return since_ns - self._site.lease_ttl_ns, detail

    async def _start_all(self, starts: list[tuple[str, int, tuple[int, str] | None]]) -> None:
        """Start recording (camera_id, epoch, hole) under their epochs."""
        if not starts:
            return
        assert self._membership is not None
        unfenced = not self._membership.fenced
        owned = [OwnedCamera(c, Fencing(epoch, unfenced=unfenced), hole) for c, epoch, hole in starts]
        started = await self._cameras.record_owned(owned)
        for camera in owned:
            if camera.camera_id in started:
                self._fencing[camera.camera_id] = camera.fencing
                if camera.hole is not None:
                    self.counters.failovers += 1

    def _release(self, camera_id: str, detail: str) -> None:
        fencing = self._fencing.pop(camera_id)
        self._confirmed.discard(camera_id)
        self.counters.releases += 1
        log.info("site_camera_released", camera_id=camera_id, epoch=fencing.epoch, detail=detail)
        self._cameras.release_owned(camera_id, detail)

    # -- fencing ---------------------------------------------------------------------------------

    async def _apply_fencing(self) -> None:
        """Mark the cameras we record unfenced past our deadline (and their open runs in the
        catalogue), fenced again once a keepalive is answered and the key is ours again."""
        membership = self._membership
        assert membership is not None
        fenced = membership.fenced
        newly_unfenced = False
        for camera_id, fencing in self._fencing.items():
            unfenced = not (fenced and camera_id in self._confirmed)
            if unfenced and not fencing.unfenced:
                newly_unfenced = True
            fencing.unfenced = unfenced
        if newly_unfenced:
            marked = await self._cameras.mark_runs_unfenced()
            self.counters.unfenced_marked += marked
            log.warning("site_unfenced", cameras=sum(f.unfenced for f in self._fencing.values()), runs=marked)
        unfenced_now = sorted(c for c, f in self._fencing.items() if f.unfenced)
        self._set_alarm(
            "site_unfenced",
            f"recording {len(unfenced_now)} camera(s) without a live etcd lease (unfenced): "
            f"{', '.join(unfenced_now[:10])}"
            if unfenced_now
            else None,
        )
        self._fenced_state = fenced

    def _etcd_failed(self, error: BaseException) -> None:
        assert self._membership is not None
        since = self._etcd_ok_mono_ns
        if since is not None and self._clock.mono_ns() - since >= self._site.lease_ttl_ns:
            self._set_alarm(
                "site_quorum_lost",
                f"etcd of site {self._site.name!r} unreachable or without quorum for "
                f"{(self._clock.mono_ns() - since) // NS_PER_S}s; recording goes on; "
                f"last error: {explain(error, self._site)}",
            )

    def _set_alarm(self, kind: str, message: str | None) -> None:
        previous = self.alarms.get(kind)
        if message is None:
            if previous is not None:
                self.alarms.pop(kind, None)
                log.info("alarm_cleared", kind=kind)
        elif previous != message:
            if previous is None:
                log.warning("alarm", kind=kind, message=message)
            self.alarms[kind] = message

    def sample(self) -> SiteSample:
        """Figures for the metrics endpoint (read from its thread: plain attribute reads)."""
        fencing = list(self._fencing.copy().values())  # dict.copy is atomic under the GIL
        membership = self._membership
        return SiteSample(
            owned=len(fencing),
            fenced=membership.fenced if membership is not None else False,
            unfenced_cameras=sum(f.unfenced for f in fencing),
            failovers=self.counters.failovers,
            moves=self.counters.moves,
            unfenced_runs=self.counters.unfenced_marked,
            alarms=len(self.alarms),
        )

    # -- operator view and moves -----------------------------------------------------------------

    async def status(self) -> SiteStatus:
        """A fresh read of the site (UNAVAILABLE when etcd does not answer)."""
        view = await self._read_or_unavailable()
        self._ever_members.update(view.members)
        counts: dict[str, int] = {}
        for owner in view.owners.values():
            counts[owner.info.recorder_id] = counts.get(owner.info.recorder_id, 0) + 1
        members = []
        for recorder_id in sorted(self._ever_members | set(counts)):
            info = view.members.get(recorder_id)
            owned = counts.get(recorder_id, 0)
            if info is None:
                members.append(MemberStatus(recorder_id, "", False, owned, 0, 0, ""))
            else:
                spare = max(0, info.capacity - owned)
                members.append(MemberStatus(recorder_id, info.address, True, owned, spare, info.capacity, info.version))
        site_ids = sorted({c.id for c in self._cameras.site_cameras()} | set(view.owners))
        owners = [
            OwnerStatus(c, view.owners[c].info.recorder_id, view.owners[c].epoch)
            if c in view.owners
            else OwnerStatus(c, "", 0)
            for c in site_ids
        ]
        return SiteStatus(
            self._site.name,
            self.recorder_id,
            self._membership.fenced if self._membership is not None else False,
            self._site.lease_ttl_ns,
            members,
            owners,
            sorted(self._fencing),
        )

    async def move(self, camera_id: str, to: str, *, principal: str, reason: str) -> MoveRequest:
        """Ask `to` to take `camera_id` over (make-before-break); returns the request stored.

        NOT_FOUND for a camera that is not the site's; FAILED_PRECONDITION when `to` is not a
        live member the camera may run on, or already owns it."""
        camera = next((c for c in self._cameras.site_cameras() if c.id == camera_id), None)
        if camera is None:
            raise VmsdError(ErrorKind.NOT_FOUND, f"camera_id {camera_id!r} is not a camera of site {self._site.name!r}")
        view = await self._read_or_unavailable()
        if to not in view.members:
            live = ", ".join(sorted(view.members)) or "none"
            raise VmsdError(ErrorKind.FAILED_PRECONDITION, f"recorder {to!r} is not a live member (live: {live})")
        if camera.recorders and to not in camera.recorders:
            raise VmsdError(
                ErrorKind.FAILED_PRECONDITION,
                f"camera {camera_id!r} may run only on {', '.join(camera.recorders)} ([[cameras]] recorders)",
            )
        owner = view.owners.get(camera_id)
        if owner is not None and owner.info.recorder_id == to:
            raise VmsdError(ErrorKind.FAILED_PRECONDITION, f"camera {camera_id!r} is already recorded by {to!r}")
        request = MoveRequest(camera_id, to, principal, reason, self._clock.wall_ns())
        assert self._client is not None
        await self._client.put(self.keys.move(camera_id), encode(request))
        log.info("site_move_requested", camera_id=camera_id, to=to, principal=principal)
        return request

    async def _read_or_unavailable(self) -> SiteView:
        if self._client is None:
            raise VmsdError(
                ErrorKind.UNAVAILABLE, f"this recorder has not reached etcd of site {self._site.name!r} yet"
            )
        try:
            return await read_view(self._client, self.keys)
        except Exception as error:
            raise VmsdError(
                ErrorKind.UNAVAILABLE,
                f"etcd of site {self._site.name!r} does not answer ({error!r})",
            ) from None
