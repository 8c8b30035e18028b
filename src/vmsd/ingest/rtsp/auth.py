"""RTSP authentication: Basic (RFC 7617) and Digest (RFC 2617/7616: MD5, MD5-sess, SHA-256;
qop=auth with nc/cnonce, or no qop). No I/O.

``Authenticator`` answers a 401: whether to retry, and then the ``Authorization`` value for
every later request. Digest is preferred when a camera offers both. A second 401 for the same
nonce means the credentials are wrong (``AuthError``, once: a camera must not be hammered); a
401 with ``stale=true`` means only the nonce expired, so the request is retried at once with the
new nonce and the same credentials.

Credentials come from the camera URL (``split_credentials``) and are never part of an error
message, a log field or a ``repr``.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit, urlunsplit

_PARAM_RE = re.compile(r'\s*([A-Za-z0-9_-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]*)\s*,?')
_HASHES: dict[str, Callable[[bytes], str]] = {
    "MD5": lambda b: hashlib.md5(b, usedforsecurity=False).hexdigest(),
    "SHA-256": lambda b: hashlib.sha256(b).hexdigest(),
}


class AuthError(Exception):
    """The camera refused the credentials, or asks for a scheme vmsd cannot answer. The message
    names the scheme and realm, never a credential."""


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)

    def __repr__(self) -> str:
        return "Credentials(username=***, password=***)"


def split_credentials(url: str) -> tuple[str, Credentials | None]:
    """``rtsp://user:pa%40ss@host/x`` → (``rtsp://host/x``, Credentials("user", "pa@ss"))."""
    parts = urlsplit(url)
    if parts.username is None:
        return url, None
    host = parts.netloc.rpartition("@")[2]
    clean = urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    return clean, Credentials(unquote(parts.username), unquote(parts.password or ""))


@dataclass
class Challenge:
    scheme: str  # lower-case
    params: dict[str, str]  # names lower-case, values unquoted


def parse_challenges(values: list[str]) -> list[Challenge]:
    """The challenges of ``WWW-Authenticate`` headers (several per header tolerated)."""
    out: list[Challenge] = []
    for value in values:
        pos, n = 0, len(value)
        while pos < n:
            m = re.compile(r"\s*,?\s*([A-Za-z0-9_-]+)(?=\s|$)").match(value, pos)
            if m is None:
                break
            challenge = Challenge(m.group(1).lower(), {})
            pos = m.end()
            while pos < n:
                p = _PARAM_RE.match(value, pos)
                if p is None or p.end() == pos:
                    break
                raw = p.group(2)
                if raw.startswith('"'):
                    raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
                challenge.params[p.group(1).lower()] = raw
                pos = p.end()
            out.append(challenge)
    return out


class Authenticator:
    """One camera's authentication state. ``cnonce`` is injectable for tests."""

    def __init__(self, credentials: Credentials | None, cnonce: Callable[[], str] | None = None) -> None:
        self._credentials = credentials
        self._cnonce = cnonce or (lambda: os.urandom(8).hex())
        self._challenge: Challenge | None = None
        self._nc = 0
        self._answered_nonce: str | None = None

    @property
    def scheme(self) -> str | None:
        return self._challenge.scheme if self._challenge else None

    def on_unauthorized(self, www_authenticate: list[str]) -> None:
        """A 401 arrived: pick the challenge to answer, or raise AuthError (do not retry)."""
        challenges = parse_challenges(www_authenticate)
        digest = next((c for c in challenges if c.scheme == "digest"), None)
        basic = next((c for c in challenges if c.scheme == "basic"), None)
        chosen = digest or basic
        if chosen is None:
            schemes = ", ".join(sorted({c.scheme for c in challenges})) or "none"
            raise AuthError(f"the camera asks for an authentication scheme vmsd does not support ({schemes})")
        realm = chosen.params.get("realm", "")
        if self._credentials is None:
            raise AuthError(f"the camera requires {chosen.scheme.title()} authentication (realm {realm!r}) "
                            "but its URL has no user name and password")  # fmt: skip
        if chosen.scheme == "digest":
            self._check_digest(chosen)
        stale = chosen.scheme == "digest" and chosen.params.get("stale", "").lower() == "true"
        if self._answered_nonce is not None and not stale:
            # This 401 answers a request that carried credentials: only a stale nonce is a
            # reason to try again.
            raise AuthError(f"the camera refused the user name or password ({chosen.scheme.title()}, realm {realm!r})")
        if chosen.scheme == "digest" and (
            self._challenge is None or self._challenge.params.get("nonce") != chosen.params["nonce"]
        ):
            self._nc = 0
        self._challenge = chosen
        self._answered_nonce = None

    @staticmethod
    def _check_digest(c: Challenge) -> None:
        algorithm = c.params.get("algorithm", "MD5").upper()
        if algorithm.removesuffix("-SESS") not in _HASHES:
            raise AuthError(f"the camera asks for Digest algorithm {algorithm}, which vmsd does not support")
        qops = {q.strip().lower() for q in c.params.get("qop", "").split(",") if q.strip()}
        if qops and "auth" not in qops:
            raise AuthError(f"the camera asks for Digest qop {sorted(qops)}; vmsd supports only 'auth'")
        if not c.params.get("nonce"):
            raise AuthError("the camera's Digest challenge has no nonce")

    def authorization(self, method: str, uri: str) -> str | None:
        """The ``Authorization`` header value for this request (None before any 401)."""
        c, creds = self._challenge, self._credentials
        if c is None or creds is None:
            return None
        if c.scheme == "basic":
            self._answered_nonce = ""
            token = base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()
            return f"Basic {token}"
        p = c.params
        algorithm = p.get("algorithm", "MD5")
        h = _HASHES[algorithm.upper().removesuffix("-SESS")]
        realm, nonce = p.get("realm", ""), p["nonce"]
        ha1 = h(f"{creds.username}:{realm}:{creds.password}".encode())
        qop = "auth" if "auth" in {q.strip().lower() for q in p.get("qop", "").split(",")} else None
        cnonce = self._cnonce() if (qop or algorithm.upper().endswith("-SESS")) else ""
        if algorithm.upper().endswith("-SESS"):
            ha1 = h(f"{ha1}:{nonce}:{cnonce}".encode())
        ha2 = h(f"{method}:{uri}".encode())
        fields = [f'username="{_quote(creds.username)}"', f'realm="{_quote(realm)}"', f'nonce="{_quote(nonce)}"',
                  f'uri="{_quote(uri)}"']  # fmt: skip
        if qop:
            self._nc += 1
            nc = f"{self._nc:08x}"
            response = h(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}".encode())
            fields += [f'response="{response}"', f"qop={qop}", f"nc={nc}", f'cnonce="{cnonce}"']
        else:
            response = h(f"{ha1}:{nonce}:{ha2}".encode())
            fields.append(f'response="{response}"')
        if "algorithm" in p:
            fields.append(f"algorithm={algorithm}")
        if "opaque" in p:
            fields.append(f'opaque="{_quote(p["opaque"])}"')
        self._answered_nonce = nonce
        return "Digest " + ", ".join(fields)


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')
