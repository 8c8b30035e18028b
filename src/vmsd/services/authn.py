"""Who is calling: bearer tokens to principals (what they may do: vmsd.services.access).

Authentication: `authorization: Bearer <token>` (gRPC metadata or HTTP header); the token's
SHA-256 is compared in constant time with every configured digest (the tokens themselves are
never stored). With mTLS the client certificate is checked by TLS itself; the bearer token still
names the principal. One Authenticator serves both transports, so a reload of [auth] tokens
(SIGHUP: `replace`) takes effect on both at once.
"""

from __future__ import annotations

import hashlib
import hmac

from vmsd.config import TokenConfig
from vmsd.errors import ErrorKind, VmsdError
from vmsd.services.access import Principal

__all__ = ["Authenticator"]


class Authenticator:
    """Maps bearer tokens to principals. No I/O."""

    def __init__(self, tokens: list[TokenConfig]) -> None:
        self.replace(tokens)

    def replace(self, tokens: list[TokenConfig]) -> None:
        """Accept exactly these tokens from now on (a reload); calls already running are not ended."""
        self._tokens = [(bytes.fromhex(t.sha256), t) for t in tokens]

    def authenticate(self, authorization: str | None, peer: str = "") -> Principal:
        return self.identify(authorization, peer)[0]

    def identify(self, authorization: str | None, peer: str = "") -> tuple[Principal, TokenConfig]:
        """The principal and the configured token it comes from (a session remembers the token,
        so that a reload which removes or changes it ends the session)."""
        if not authorization:
            raise VmsdError(ErrorKind.UNAUTHENTICATED, "missing 'authorization: Bearer <token>' metadata")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise VmsdError(ErrorKind.UNAUTHENTICATED, "authorization metadata must be 'Bearer <token>'")
        digest = hashlib.sha256(token.strip().encode()).digest()
        match: TokenConfig | None = None
        # Compare against every digest (no early exit) so timing says nothing about which matched.
        for expected, config in self._tokens:
            if hmac.compare_digest(digest, expected):
                match = config
        if match is None:
            raise VmsdError(ErrorKind.UNAUTHENTICATED, "unknown or revoked token")
        return Principal(match.name, match.role, tuple(match.cameras), peer), match
