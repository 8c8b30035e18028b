"""Who is calling: bearer tokens to principals (what they may do: vmsd.services.access).

Authentication: `authorization: Bearer <token>` (gRPC metadata or HTTP header); the token's
SHA-256 is compared in constant time with every configured digest (the tokens themselves are
never stored). With mTLS the client certificate is checked by TLS itself; the bearer token still
names the principal. One Authenticator serves both transports, so a reload of [auth] tokens
(SIGHUP: `replace`) takes effect on both at once.

With a [site], the site token ([site] token_file, shared by the site's recorders) authenticates
a peer recorder as role `site`; such a call acts only for the principal it forwards, which
`forwarded` re-authorises against this recorder's own tokens (services/forwarding.py).
"""

from __future__ import annotations

import hashlib
import hmac

from vmsd.config import TokenConfig
from vmsd.errors import ErrorKind, VmsdError
from vmsd.services.access import SITE_ROLE, Principal
from vmsd.services.forwarding import Forwarded

__all__ = ["Authenticator"]


class Authenticator:
    """Maps bearer tokens to principals. No I/O."""

    def __init__(self, tokens: list[TokenConfig]) -> None:
        self._site_digest: bytes | None = None
        self.replace(tokens)

    def accept_site_token(self, token: str) -> None:
        """Accept `token` (the [site] token_file's content) as a peer recorder's credential from
        now on. Only its digest is kept, like the users' tokens'."""
        if not token.strip():
            raise VmsdError(ErrorKind.FAILED_PRECONDITION, "the site token is empty ([site] token_file)")
        self._site_digest = hashlib.sha256(token.strip().encode()).digest()

    def replace(self, tokens: list[TokenConfig]) -> None:
        """Accept exactly these tokens from now on (a reload); calls already running are not ended."""
        self._tokens = [(bytes.fromhex(t.sha256), t) for t in tokens]
        self._by_name = {t.name: t for t in tokens}

    def forwarded(self, site: Principal, forwarded: Forwarded) -> Principal:
        """The principal a site call is made for, as THIS recorder knows it: the forwarded name
        must be one of this recorder's tokens with the forwarded role; its camera scope is this
        recorder's. PERMISSION_DENIED otherwise (the peer is trusted, the principal is not known
        here as what it claims to be)."""
        if site.role != SITE_ROLE:
            raise VmsdError(ErrorKind.PERMISSION_DENIED, "only a site recorder may forward a principal")
        config = self._by_name.get(forwarded.name)
        if config is None or config.role != forwarded.role:
            raise VmsdError(
                ErrorKind.PERMISSION_DENIED,
                f"principal {forwarded.name[:128]!r} with role {forwarded.role[:32]!r}, forwarded by recorder "
                f"{forwarded.via[:64]!r}, is not configured on this recorder with that role",
            )
        return Principal(config.name, config.role, tuple(config.cameras), site.peer, via=forwarded.via)

    def authenticate(self, authorization: str | None, peer: str = "") -> Principal:
        """The principal of a call: a user's, or role `site` for the site token (a peer recorder,
        which acts only for the principal it forwards: `forwarded`)."""
        if self._site_digest is not None and authorization:
            scheme, _, token = authorization.partition(" ")
            digest = hashlib.sha256(token.strip().encode()).digest()
            if scheme.lower() == "bearer" and hmac.compare_digest(digest, self._site_digest):
                return Principal(SITE_ROLE, SITE_ROLE, (), peer)
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
        if self._site_digest is not None and hmac.compare_digest(digest, self._site_digest):
            # A peer recorder is not a user: it has no TokenConfig and cannot open a session.
            raise VmsdError(ErrorKind.UNAUTHENTICATED, "the site token authenticates recorders' calls, not users")
        if match is None:
            raise VmsdError(ErrorKind.UNAUTHENTICATED, "unknown or revoked token")
        return Principal(match.name, match.role, tuple(match.cameras), peer), match
