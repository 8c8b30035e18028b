"""Who is calling and what they may do: roles, permissions and camera scope.

Transport-neutral (the gRPC interceptor and the HTTP API both produce a `Principal`; the
services decide with it). Authorisation is one table, ROLE_PERMISSIONS, plus each principal's
camera globs. Scope is decided from the camera *id* alone, before any lookup, so a principal
learns nothing about cameras outside its scope: out-of-scope ids are PERMISSION_DENIED whether
or not they exist; in-scope ids that do not exist are NOT_FOUND.
"""

from __future__ import annotations

import enum
import fnmatch
from dataclasses import dataclass

from vmsd.errors import ErrorKind, VmsdError


class Permission(enum.Enum):
    CAMERAS_VIEW = "cameras.view"  # list cameras, status, health
    CAMERAS_MANAGE = "cameras.manage"  # add, update, remove cameras
    # Change what decides which footage exists: a camera's source (URL, transport) — repointing
    # it records something else under its id — or its retention, which can erase its unheld
    # footage at the next pass. Only roles that may already dispose of footage (release holds).
    CAMERAS_SOURCE_RETENTION = "cameras.source_retention"
    RECORDINGS_SEARCH = "recordings.search"  # spans, gaps, timelines (metadata only)
    RECORDINGS_PLAY = "recordings.play"  # review recorded footage
    LIVE_RELAY = "live.relay"  # watch live
    HOLDS_VIEW = "holds.view"
    HOLDS_ADD = "holds.add"
    HOLDS_RELEASE = "holds.release"
    EXPORT_CREATE = "export.create"
    EXPORT_DOWNLOAD = "export.download"
    AUDIT_READ = "audit.read"
    # The management report: availability, checks, reviews, releases, holds, erasures and access
    # of the principal's cameras (who reviewed and released what: the audit trail, summarised).
    REPORTS_READ = "reports.read"

    # Watch the event stream (services/events.py): camera events in scope and recorder-wide ones;
    # the access events (who reviewed or relayed, denials) also need AUDIT_READ.
    EVENTS_WATCH = "events.watch"


P = Permission
_VIEWER = {P.CAMERAS_VIEW, P.RECORDINGS_SEARCH, P.RECORDINGS_PLAY, P.LIVE_RELAY}
_OPERATOR = _VIEWER | {P.HOLDS_VIEW, P.HOLDS_ADD, P.EXPORT_CREATE, P.EXPORT_DOWNLOAD, P.EVENTS_WATCH}
_SUPERVISOR = _OPERATOR | {
    P.HOLDS_RELEASE,
    P.AUDIT_READ,
    P.REPORTS_READ,
    P.CAMERAS_MANAGE,
    P.CAMERAS_SOURCE_RETENTION,
}

# The one place roles are defined (documented in docs/grpc.md, "Roles").
ROLE_PERMISSIONS: dict[str, frozenset[Permission]] = {
    # Control-room staff who watch and review.
    "viewer": frozenset(_VIEWER),
    # Control-room operators: also place holds and produce exports on request.
    "operator": frozenset(_OPERATOR),
    # Supervisors: also release holds, read the audit trail and the management report, and
    # manage cameras including their source and retention (the scheme's decisions about what is recorded and kept).
    "supervisor": frozenset(_SUPERVISOR),
    # Other systems: camera management and metadata, never pictures, and never a camera's source
    # or retention once it has footage.
    # They are told what happens (the event stream) rather than poll for it.
    "integrator": frozenset({P.CAMERAS_VIEW, P.CAMERAS_MANAGE, P.RECORDINGS_SEARCH, P.EVENTS_WATCH}),
    # The police control room's link: live pictures of its cameras only.
    "police-link": frozenset({P.CAMERAS_VIEW, P.LIVE_RELAY}),
    # Everything.
    "admin": frozenset(Permission),
}

# The role of another recorder of the same site, calling with the site token ([site] token_file).
# It is not in ROLE_PERMISSIONS: on its own it may do nothing, and no user token may have it
# (config validation). A site call acts for the principal it forwards (services/forwarding.py),
# re-authorised by the receiving recorder against its own tokens.
SITE_ROLE = "site"


@dataclass(frozen=True)
class Principal:
    name: str
    role: str
    camera_globs: tuple[str, ...]
    peer: str = ""
    # The site recorder (its recorder_id) that forwarded this principal's call; "" for a direct call.
    via: str = ""

    def can(self, permission: Permission) -> bool:
        return permission in ROLE_PERMISSIONS.get(self.role, frozenset())

    def in_scope(self, camera_id: str) -> bool:
        return any(fnmatch.fnmatchcase(camera_id, glob) for glob in self.camera_globs)

    def require(self, permission: Permission, camera_id: str | None = None) -> None:
        """Raise PERMISSION_DENIED unless the role has `permission` (and the camera is in scope)."""
        if not self.can(permission):
            raise VmsdError(
                ErrorKind.PERMISSION_DENIED, f"role '{self.role}' does not have permission '{permission.value}'"
            )
        if camera_id is not None and not self.in_scope(camera_id):
            raise VmsdError(ErrorKind.PERMISSION_DENIED, f"camera_id {camera_id!r} is outside this principal's scope")
