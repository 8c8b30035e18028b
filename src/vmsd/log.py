"""Structured logging with credentials scrubbed from every event.

Camera URLs carry user:password, and bearer tokens pass through the control plane. Every secret
the daemon learns is registered here, and a structlog processor replaces it (plain and
URL-encoded) in every rendered field, so no code path can leak one by accident — including
exception messages from FFmpeg that quote the URL.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections.abc import MutableMapping
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import structlog

_secrets_lock = threading.Lock()
_secrets: set[str] = set()
_URL_USERINFO_RE = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/@\s]+)@")
# Some cameras take credentials in the query string (`?user=admin&password=…`, `&pwd=`, `&token=`):
# a parameter whose name contains one of these words has its value hidden, whatever the case.
_QUERY_SECRET_WORDS = ("user", "usr", "login", "pass", "pwd", "pw", "token", "auth", "secret", "key", "cred", "sig")
_QUERY_SECRET_RE = re.compile(
    r"(?P<name>[?&;][^=&;#\s]*(?:" + "|".join(_QUERY_SECRET_WORDS) + r")[^=&;#\s]*=)(?P<value>[^&;#\s]*)",
    re.IGNORECASE,
)


def register_secret(secret: str) -> None:
    """Remember a secret so that it is scrubbed from all later log output."""
    if len(secret) < 3:  # Too short to scrub without mangling ordinary text.
        return
    with _secrets_lock:
        _secrets.update({secret, quote(secret, safe=""), unquote(secret)})


def _redact_query(text: str) -> str:
    return _QUERY_SECRET_RE.sub(r"\g<name>***", text)


def redact_url(url: str) -> str:
    """Return the URL with any user:password and query-string credentials replaced by '***'
    (for logs, errors and the API)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return _redact_query(_URL_USERINFO_RE.sub(r"\g<scheme>***@", url))
    if parts.username is None and parts.password is None:
        return _redact_query(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = parts.netloc.rpartition("@")[2].rpartition("]")[2].partition(":")[2]
    netloc = f"***@{host}" + (f":{port}" if port else "")
    return _redact_query(urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment)))


def register_url_credentials(url: str) -> None:
    try:
        parts = urlsplit(url)
    except ValueError:
        return
    for secret in (parts.password, parts.username and parts.password and f"{parts.username}:{parts.password}"):
        if secret:
            register_secret(secret)
    # Query-string secrets, but not user names: scrubbing a name such as "admin" everywhere would
    # mangle ordinary log text (scrub() still hides it wherever the URL itself is quoted).
    for match in _QUERY_SECRET_RE.finditer("?" + parts.query):
        if not any(word in match["name"].lower() for word in ("user", "usr", "login")):
            register_secret(unquote(match["value"]))


def scrub(text: str) -> str:
    """Remove URL userinfo, query-string credentials and every registered secret from text."""
    text = _redact_query(_URL_USERINFO_RE.sub(r"\g<scheme>***@", text))
    with _secrets_lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, "***")
    return text


def _scrub_event(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in event.items():
        if isinstance(value, str):
            event[key] = scrub(value)
        elif value is not None and not isinstance(value, int | float | bool):
            event[key] = scrub(str(value))
    return event


def configure_logging(*, json: bool | None = None, level: str = "info") -> None:
    """Configure structlog: JSON lines when stdout is not a terminal (journald), console otherwise.

    Exceptions are rendered into the event (with traceback) before scrubbing, so a traceback that
    quotes a camera URL is scrubbed too.
    """
    if json is None:
        json = not sys.stdout.isatty()
    renderer: Any = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            _scrub_event,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stdout),
        cache_logger_on_first_use=False,
    )


def get_logger(**bound: Any) -> Any:
    """A lazy logger: safe at import time, it takes the configuration in force when it logs."""
    return structlog.get_logger(**bound)
