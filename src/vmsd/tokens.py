"""Bearer tokens: making a new one, and spotting published ones in a configuration.

vmsd stores only the SHA-256 of a token (services/authn.py compares digests). A new token is 256 random
bits from `secrets`, shown once to whoever creates it; its `[[auth.tokens]]` stanza carries only
the digest. Tokens that appear in this repository (the demo configuration, the documentation,
the tests) are public: anyone who has read the README can present them, so a configuration that
accepts one is reported by `vmsd check-config` and logged by `vmsd run` — by the token's name,
never the token.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import tomllib
from collections.abc import Sequence

from vmsd.config import Config, TokenConfig

TOKEN_BYTES = 32  # 256 bits: far beyond guessing, even offline against a stolen digest

# Every token published with vmsd. Keep in step with config/demo.toml, the docs and the tests
# (tests/test_tokens.py checks the demo configuration and the docs against this list).
PUBLISHED_TOKENS: tuple[str, ...] = (
    # config/demo.toml, README.md, scripts/demo.py
    "demo-admin-token",
    "demo-viewer-token",
    # placeholders in config/vmsd.example.toml and the docs
    "the-token",
    "changeme",
    "token",
    "secret",
    "password",
    "admin",
    # the test suite and the benchmarks (tests/support/rpc.py and the tests' TOKEN constants)
    *(f"test-token-for-{role}" for role in ("viewer", "operator", "supervisor", "integrator", "police-link", "admin")),
    "reflection-token",
    "disk-faults-admin-token",
    "control-plane-admin-token",
    "relay-test-token",
    "relay-test-token-2",
    "retention-e2e-admin-token",
    "function-check-token",
    "outsider-token-7d1e",
    "bench-token",
    "bench-relay",
)


def token_sha256(token: str) -> str:
    """The digest a configuration stores for `token` (as the authenticator computes it)."""
    return hashlib.sha256(token.strip().encode()).hexdigest()


_PUBLISHED_DIGESTS = frozenset(token_sha256(t) for t in PUBLISHED_TOKENS)


def published(config: Config) -> list[tuple[int, TokenConfig]]:
    """The configured tokens (with their index in [[auth.tokens]]) whose token is public."""
    return [(i, t) for i, t in enumerate(config.auth.tokens) if t.sha256 in _PUBLISHED_DIGESTS]


def published_warnings(config: Config) -> list[str]:
    """One line per published token, naming it by its `name` (never the token)."""
    return [
        f"auth.tokens[{i}] (name {t.name!r}, role {t.role}): its sha256 is that of a well-known token "
        "(vmsd's demo, documentation or tests, or a common placeholder) that anyone can present; "
        "replace it with one from `vmsd token create`"
        for i, t in published(config)
    ]


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def _toml_string(value: str) -> str:
    # JSON's escapes (with everything outside ASCII as \\uXXXX) are all valid in a TOML basic string.
    return json.dumps(value, ensure_ascii=True)


def stanza(name: str, role: str, cameras: Sequence[str], token: str) -> str:
    """The `[[auth.tokens]]` table for `token`: its digest, never the token.

    Raises ValueError (naming the field) when the result would not be a valid token entry.
    """
    text = (
        "[[auth.tokens]]\n"
        f"name = {_toml_string(name)}\n"
        f"sha256 = {_toml_string(token_sha256(token))}\n"
        f"role = {_toml_string(role)}\n"
        f"cameras = [{', '.join(_toml_string(c) for c in cameras)}]\n"
    )
    # Read it back as vmsd will: the stanza must load, and mean exactly what was asked for.
    (entry,) = tomllib.loads(text)["auth"]["tokens"]
    TokenConfig.model_validate(entry)
    return text
