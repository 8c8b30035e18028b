"""Evidence holds: the footage a case needs, kept whatever retention would do.

A hold names cameras, a time range, a case reference and a reason, and who placed it when.
Any segment overlapping an active hold is kept whole (policy.py). A hold is active until it is
released (with a reason, by a supervisor) or until its optional expiry date passes.
"""

from __future__ import annotations

from vmsd.clock import Clock
from vmsd.errors import ErrorKind, VmsdError
from vmsd.events.bus import EventBus
from vmsd.events.kinds import EventKind
from vmsd.storage.catalogue import Catalogue, HoldRow


def no_such_hold(hold_id: int) -> VmsdError:
    """The answer for an absent hold id, and for one outside the caller's scope (indistinguishable)."""
    return VmsdError(ErrorKind.NOT_FOUND, f"hold_id {hold_id} does not exist")


class Holds:
    """Blocking (SQLite): call from a worker thread."""

    def __init__(self, catalogue: Catalogue, clock: Clock, *, events: EventBus | None = None) -> None:
        self._catalogue = catalogue
        self._clock = clock
        self._events = events

    def _publish(self, kind: EventKind, hold: HoldRow, **fields: object) -> None:
        # One event per camera of the hold, so that each consumer sees those of its cameras. No
        # case reference or reason: those are for roles that may list holds (holds.view).
        if self._events is not None:
            for camera_id in hold.camera_ids:
                self._events.publish(kind, camera_id, hold_id=hold.id, **fields)

    def add(
        self,
        *,
        camera_ids: list[str],
        start_ns: int,
        end_ns: int,
        case_ref: str,
        reason: str,
        created_by: str,
        until_ns: int | None,
    ) -> HoldRow:
        known = set(self._catalogue.camera_ids())
        missing = [c for c in camera_ids if c not in known]
        if missing:
            raise VmsdError(ErrorKind.NOT_FOUND, f"camera_ids {missing} do not exist")
        now_ns = self._clock.wall_ns()
        if until_ns is not None and until_ns <= now_ns:
            raise VmsdError(ErrorKind.INVALID_ARGUMENT, "until_ns must be in the future")
        hold_id = self._catalogue.add_hold(
            camera_ids=sorted(set(camera_ids)),
            start_ns=start_ns,
            end_ns=end_ns,
            case_ref=case_ref,
            reason=reason,
            created_by=created_by,
            created_ns=now_ns,
            until_ns=until_ns,
        )
        hold = self.get(hold_id)
        self._publish(
            EventKind.HOLD_ADDED,
            hold,
            start_ns=start_ns,
            end_ns=end_ns,
            until_ns=until_ns,
            created_by=created_by,
        )
        return hold

    def mirror(
        self,
        *,
        camera_ids: list[str],
        start_ns: int,
        end_ns: int,
        case_ref: str,
        reason: str,
        created_by: str,
        created_ns: int,
        until_ns: int | None,
    ) -> HoldRow:
        """A copy of a hold made on another recorder of the site (vmsd.site.holds), as it was
        made there: its maker and time, its expiry even if past; cameras this recorder does not
        know are kept in the hold (it protects nothing of theirs here until they exist)."""
        hold_id = self._catalogue.add_hold(
            camera_ids=sorted(set(camera_ids)),
            start_ns=start_ns,
            end_ns=end_ns,
            case_ref=case_ref,
            reason=reason,
            created_by=created_by,
            created_ns=created_ns,
            until_ns=until_ns,
        )
        hold = self.get(hold_id)
        self._publish(
            EventKind.HOLD_ADDED, hold, start_ns=start_ns, end_ns=end_ns, until_ns=until_ns, created_by=created_by
        )
        return hold

    def get(self, hold_id: int) -> HoldRow:
        hold = self._catalogue.hold(hold_id)
        if hold is None:
            raise no_such_hold(hold_id)
        return hold

    def list(self, *, include_released: bool) -> list[HoldRow]:
        return self._catalogue.holds(include_released=include_released)

    def release(self, hold_id: int, *, released_by: str, reason: str) -> HoldRow:
        hold = self.get(hold_id)
        if hold.released_ns is not None:
            raise VmsdError(ErrorKind.FAILED_PRECONDITION, f"hold_id {hold_id} was already released")
        self._catalogue.release_hold(hold_id, released_ns=self._clock.wall_ns(), released_by=released_by, reason=reason)
        released = self.get(hold_id)
        self._publish(EventKind.HOLD_RELEASED, released, released_by=released_by)
        return released
