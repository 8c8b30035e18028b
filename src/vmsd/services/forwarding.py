"""A principal forwarded through a peer recorder of the same site (transport-neutral).

A recorder that needs another recorder's part of an answer (site-wide search, holds, audit) calls
it with the site credential and forwards the ORIGINAL principal: its name and role, and the
recorder it comes through. The receiver never trusts the forwarded scope or permissions: it
looks the name up in ITS OWN [auth] tokens (`Authenticator.forwarded`), so a principal has no
more on a peer than that peer's operator gave it. The forwarded facts travel as three
headers (gRPC metadata here, HTTP headers would do as well), percent-encoded because a token's
name may be any text and metadata values are printable ASCII.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, unquote

from vmsd.errors import ErrorKind, VmsdError
from vmsd.services.access import Principal

__all__ = ["FOR_NAME", "FOR_ROLE", "VIA", "Forwarded"]

FOR_NAME = "x-vmsd-for"
FOR_ROLE = "x-vmsd-for-role"
VIA = "x-vmsd-via"


@dataclass(frozen=True)
class Forwarded:
    """Who a site call is made for (`name`, `role`) and which recorder makes it (`via`)."""

    name: str
    role: str
    via: str

    @classmethod
    def of(cls, principal: Principal, via: str) -> Forwarded:
        """What a recorder forwards when it calls a peer for `principal`. A principal that came
        in through a peer is forwarded as itself (never a chain: a peer's answer is its own)."""
        return cls(principal.name, principal.role, via)

    def headers(self) -> list[tuple[str, str]]:
        return [
            (FOR_NAME, quote(self.name, safe="")),
            (FOR_ROLE, quote(self.role, safe="")),
            (VIA, quote(self.via, safe="")),
        ]

    @classmethod
    def from_headers(cls, headers: dict[str, str]) -> Forwarded:
        """The forwarded principal of a site call; UNAUTHENTICATED when a header is missing (a
        site credential alone acts for nobody)."""
        values = [headers.get(key) for key in (FOR_NAME, FOR_ROLE, VIA)]
        if not all(isinstance(v, str) and v for v in values):
            raise VmsdError(
                ErrorKind.UNAUTHENTICATED,
                f"a call with the site token must forward the principal it is made for ({FOR_NAME}, {FOR_ROLE}, {VIA})",
            )
        name, role, via = (unquote(str(v)) for v in values)
        return cls(name, role, via)
