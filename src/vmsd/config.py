"""Typed configuration: the TOML file (every key: config/vmsd.example.toml), validated strictly.

Unknown keys are errors naming their path; durations become integer nanoseconds (`*_ns`), sizes
bytes. Loading does no I/O beyond reading the file; `check_environment()` probes the machine
(storage root writable) separately so that constructors stay I/O free.

Over the ~450-line guide on purpose: it is one schema, a model per TOML section plus the
cross-section rules (retention floor, limits that must leave room), and is read as a whole when a
key is added; splitting it by section would scatter those rules.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal, Self
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from vmsd.errors import ConfigError
from vmsd.events.kinds import EventKind
from vmsd.ids import ID_RE
from vmsd.units import NS_PER_S, format_duration_ns, parse_duration_ns, parse_percent, parse_size_bytes


def _duration(value: Any) -> Any:
    if isinstance(value, str):
        return parse_duration_ns(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("expected a duration string such as '60s', '5m' or '31d'")
    raise ValueError(f"expected a duration string with a unit, e.g. '{value}s', not a bare number")


DurationNs = Annotated[int, BeforeValidator(_duration), Field(gt=0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class MinFree(_Strict):
    """An amount of the storage filesystem: a fraction of it or an absolute size (min_free, and
    the export quota)."""

    percent: float | None = None
    size_bytes: int | None = None

    def bytes_for(self, total_bytes: int) -> int:
        if self.percent is not None:
            return int(total_bytes * self.percent / 100)
        return self.size_bytes or 0


def _min_free(value: Any) -> Any:
    if isinstance(value, MinFree | dict):
        return value
    if not isinstance(value, str):
        raise ValueError("expected a percentage such as '5%' or a size such as '50GiB'")
    percent = parse_percent(value)
    if percent is not None:
        if not 0 <= percent < 100:
            raise ValueError(f"percentage {value!r} must be between 0% and 100%")
        return MinFree(percent=percent)
    return MinFree(size_bytes=parse_size_bytes(value))


class StorageConfig(_Strict):
    root: Path
    segment_duration_ns: DurationNs = Field(default=60_000_000_000, alias="segment_duration")
    min_free: Annotated[MinFree, BeforeValidator(_min_free)] = MinFree(percent=5.0)
    # How often an open segment is fdatasync'd between fragments. kill -9 loses nothing that
    # reached the page cache; this bounds what a power cut can take.
    sync_interval_ns: DurationNs = Field(default=5_000_000_000, alias="sync_interval")

    @field_validator("segment_duration_ns")
    @classmethod
    def _segment_bounds(cls, value: int) -> int:
        if not NS_PER_S <= value <= 3600 * NS_PER_S:
            raise ValueError("segment_duration must be between 1s and 1h")
        return value


DAY_NS = 86400 * NS_PER_S


class RetentionConfig(_Strict):
    max_age_ns: DurationNs = Field(default=31 * DAY_NS, alias="max_age")
    check_interval_ns: DurationNs = Field(default=60 * NS_PER_S, alias="check_interval")
    # The shortest retention any camera may have, in the file or over the API. Incidents are
    # often reported days later (a Friday night's assault on the Monday), so an API client,
    # or a typo such as "31m", must not be able to make footage disappear before anyone asks for
    # it. Schemes set it to their own policy floor (often 31d); lower it here for tests and demos.
    min_age_ns: DurationNs = Field(default=7 * DAY_NS, alias="min_age")

    def floor_problem(self, max_age_ns: int, key: str) -> str | None:
        """Why `max_age_ns` (the value of `key`) may not be used, or None when it may."""
        if max_age_ns >= self.min_age_ns:
            return None
        return (
            f"{key}: {format_duration_ns(max_age_ns)} is shorter than this recorder's minimum retention "
            f"of {format_duration_ns(self.min_age_ns)} ([retention] min_age)"
        )


class ExportConfig(_Strict):
    """Limits on the evidence bundles kept on the recorder (under `<root>/exports/`)."""

    # Total size of the bundles kept, as a share of the storage filesystem or a size: bundles
    # outside retention's reach must not crowd out the footage retention keeps (an export that
    # would exceed it is refused with RESOURCE_EXHAUSTED). Exports also never eat into min_free.
    max_total: Annotated[MinFree, BeforeValidator(_min_free)] = MinFree(percent=10.0)


class WebhookConfig(_Strict):
    """One receiver of events by HTTP POST (events/webhooks.py), for systems that cannot hold a stream."""

    url: str
    kinds: list[str] = Field(default_factory=list)  # empty: every kind
    secret_file: Path  # the HMAC-SHA256 key of the X-Vmsd-Signature header (read at start)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        parts = urlsplit(value)
        try:
            parts.port  # noqa: B018 — raises on a port that is not a number in range
        except ValueError:
            raise ValueError("has a port that is not a number from 1 to 65535") from None
        if not parts.hostname:
            raise ValueError("names no host")
        return value

    @field_validator("kinds")
    @classmethod
    def _known_kinds(cls, value: list[str]) -> list[str]:
        known = {k.value for k in EventKind}
        unknown = [k for k in value if k not in known]
        if unknown:
            raise ValueError(f"unknown event kind(s) {unknown}; known: {', '.join(sorted(known))}")
        return value


class EventsConfig(_Strict):
    """The event stream (EventService.WatchEvents): how long events stay in the catalogue, so that
    a consumer that was away can resume from its last sequence number; webhook receivers."""

    keep_ns: DurationNs = Field(default=7 * DAY_NS, alias="keep")
    webhooks: list[WebhookConfig] = Field(default_factory=list)


class IngestConfig(_Strict):
    """Timeouts of the camera sessions (defaults suit IP cameras on a LAN)."""

    open_timeout_ns: DurationNs = Field(default=10_000_000_000, alias="open_timeout")
    # No video packet for this long means the camera stalled (or the TCP connection is half open).
    stall_timeout_ns: DurationNs = Field(default=5_000_000_000, alias="stall_timeout")
    # Reconnect attempts back off exponentially from 250 ms up to this cap (with jitter), so a
    # camera that returns is recording again within about this long.
    max_backoff_ns: DurationNs = Field(default=2_000_000_000, alias="max_backoff")
    # After failing to connect for this long a camera is reported offline rather than reconnecting.
    offline_after_ns: DurationNs = Field(default=30_000_000_000, alias="offline_after")


class TlsConfig(_Strict):
    cert: Path
    key: Path
    client_ca: Path | None = None


def is_loopback(host: str) -> bool:
    """An IP literal in 127.0.0.0/8 or ::1, or the name "localhost". Any other name (even
    "127.evil.example") is resolved by DNS at bind time and may be any address."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# HTTP/2 streams one connection may carry at once (calls of every kind); a client that opens more
# waits for one to end. max_streams_per_connection stays below it so unary calls always fit.
HTTP2_STREAMS_PER_CONNECTION = 100


class GrpcConfig(_Strict):
    listen: str = "127.0.0.1:50051"
    tls: TlsConfig | None = None
    # Listening on a non-loopback address without TLS must be asked for explicitly.
    insecure: bool = False
    # Resource limits (docs/grpc.md, "Limits"). Streams are the calls that can last: Play,
    # Download, CreateExport, Relay, Health/Watch, reflection. "Connection" is one client
    # connection (its ip:port), not an address: every local client shares 127.0.0.1. Per
    # connection is above per principal: only a client multiplexing several principals (a
    # proxy) reaches it.
    max_concurrent_rpcs: int = Field(default=256, ge=8, le=100_000)
    max_streams_per_principal: int = Field(default=32, ge=1)
    max_streams_per_connection: int = Field(default=64, ge=1, lt=HTTP2_STREAMS_PER_CONNECTION)
    max_tokenless_streams: int = Field(default=16, ge=1)
    # A stream whose client reads nothing for this long is ended (RESOURCE_EXHAUSTED).
    send_timeout_ns: DurationNs = Field(default=10_000_000_000, alias="send_timeout")
    # HTTP/2 keepalive: ping a connection after this long without activity, drop it when the
    # ping is not answered in keepalive_timeout (half-open connections free their calls).
    keepalive_time_ns: DurationNs = Field(default=60_000_000_000, alias="keepalive_time")
    keepalive_timeout_ns: DurationNs = Field(default=20_000_000_000, alias="keepalive_timeout")
    # Clients may ping at most this often when no data flows (more often: the connection is closed).
    min_client_ping_interval_ns: DurationNs = Field(default=10_000_000_000, alias="min_client_ping_interval")
    # A connection without calls for this long is closed.
    max_connection_idle_ns: DurationNs = Field(default=900_000_000_000, alias="max_connection_idle")
    # Off unless set: a connection older than this is asked to reconnect, and its calls still
    # running max_connection_age_grace later are ended (a live relay to the police may run for days).
    max_connection_age_ns: DurationNs | None = Field(default=None, alias="max_connection_age")
    max_connection_age_grace_ns: DurationNs | None = Field(default=None, alias="max_connection_age_grace")
    # Repeated identical denials within this interval are audited as one summary record.
    denial_summary_interval_ns: DurationNs = Field(default=60_000_000_000, alias="denial_summary_interval")

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
            raise ValueError(f"expected HOST:PORT such as '127.0.0.1:50051', got {value!r}")
        return value

    @field_validator("send_timeout_ns", "keepalive_time_ns", "keepalive_timeout_ns", "min_client_ping_interval_ns")
    @classmethod
    def _at_least_a_second(cls, value: int) -> int:
        if value < NS_PER_S:
            raise ValueError("must be at least 1s")
        return value

    @model_validator(mode="after")
    def _limits_leave_room(self) -> GrpcConfig:
        # A flood without a token and one principal's flood together must leave calls for others
        # (the police link above all).
        if self.max_tokenless_streams + self.max_streams_per_principal >= self.max_concurrent_rpcs:
            raise ValueError(
                f"max_tokenless_streams ({self.max_tokenless_streams}) + max_streams_per_principal "
                f"({self.max_streams_per_principal}) must be less than max_concurrent_rpcs "
                f"({self.max_concurrent_rpcs}), so that other callers always find room"
            )
        if self.max_connection_age_grace_ns is not None and self.max_connection_age_ns is None:
            raise ValueError("max_connection_age_grace needs max_connection_age")
        return self

    @model_validator(mode="after")
    def _tls_off_loopback(self) -> GrpcConfig:
        if not is_loopback(self.listen.rpartition(":")[0].strip("[]")) and self.tls is None and not self.insecure:
            raise ValueError(
                f"listen {self.listen!r} is not a loopback address: configure [grpc] tls, "
                "or set insecure = true to accept plaintext on the network"
            )
        return self


def _split_host_port(value: str) -> tuple[str, int] | None:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        return None
    return host.strip("[]"), int(port)


class MetricsConfig(_Strict):
    # Off when absent. A bare port ("9108") listens on loopback only: metrics name cameras and
    # show when they fail, which is not for the whole network unless the operator says so.
    listen: str | None = None

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if value.isdigit():
            value = f"127.0.0.1:{value}"
        if _split_host_port(value) is None:
            raise ValueError(f"expected HOST:PORT such as '127.0.0.1:9108' (or a bare port), got {value!r}")
        return value

    @property
    def address(self) -> tuple[str, int] | None:
        return _split_host_port(self.listen) if self.listen else None


Role = Literal["viewer", "operator", "supervisor", "integrator", "police-link", "admin"]


_DEFAULT_MASKED_ROLES: tuple[Role, ...] = ("viewer", "police-link")


class WebConfig(_Strict):
    """The web console and JSON API (docs/http.md). Off when `listen` is absent."""

    listen: str | None = None
    # The same shape (and files) as [grpc] tls; with client_ca, browsers must present a certificate.
    tls: TlsConfig | None = None
    # Listening on a non-loopback address without TLS must be asked for explicitly: session
    # cookies and tokens would cross the network in clear.
    insecure: bool = False
    # A browser session ends after this long unused, and after session_max in any case.
    session_idle_ns: DurationNs = Field(default=30 * 60 * NS_PER_S, alias="session_idle")
    session_max_ns: DurationNs = Field(default=12 * 3600 * NS_PER_S, alias="session_max")
    # Roles that see each camera's privacy masks drawn over live and review video.
    masked_roles: list[Role] = Field(default_factory=lambda: list(_DEFAULT_MASKED_ROLES))
    # A live WebSocket whose browser reads nothing for this long is closed (like [grpc] send_timeout).
    send_timeout_ns: DurationNs = Field(default=10 * NS_PER_S, alias="send_timeout")

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str | None) -> str | None:
        if value is not None and _split_host_port(value) is None:
            raise ValueError(f"expected HOST:PORT such as '127.0.0.1:8080', got {value!r}")
        return value

    @field_validator("send_timeout_ns")
    @classmethod
    def _send_timeout(cls, value: int) -> int:
        if value < NS_PER_S:
            raise ValueError("must be at least 1s")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> WebConfig:
        if self.session_idle_ns > self.session_max_ns:
            raise ValueError(
                f"session_idle ({format_duration_ns(self.session_idle_ns)}) must not exceed "
                f"session_max ({format_duration_ns(self.session_max_ns)})"
            )
        address = self.address
        if address is not None and not is_loopback(address[0]) and self.tls is None and not self.insecure:
            raise ValueError(
                f"listen {self.listen!r} is not a loopback address: configure [web] tls, "
                "or set insecure = true to accept plaintext on the network"
            )
        return self

    @property
    def address(self) -> tuple[str, int] | None:
        return _split_host_port(self.listen) if self.listen else None


class LiveConfig(_Strict):
    """Limits on live relays (gRPC Relay and the console's WebSocket streams alike)."""

    # One person's live streams at once: a console page shows at most 16 tiles; more is a second
    # browser of the same token, or a client gone astray.
    max_relays_per_principal: int = Field(default=16, ge=1, le=1024)
    max_relays: int = Field(default=256, ge=1, le=4096)

    @model_validator(mode="after")
    def _consistent(self) -> LiveConfig:
        if self.max_relays_per_principal > self.max_relays:
            raise ValueError(
                f"max_relays_per_principal ({self.max_relays_per_principal}) must not exceed "
                f"max_relays ({self.max_relays})"
            )
        return self


class _ClientTlsConfig(_Strict):
    """TLS as a client: the CA that signed the servers' certificates, and the certificate (with its
    key) this recorder presents when they require one."""

    ca: Path
    cert: Path | None = None
    key: Path | None = None

    @model_validator(mode="after")
    def _pair(self) -> Self:
        if (self.cert is None) != (self.key is None):
            raise ValueError("cert and key go together (a client certificate needs its key)")
        return self


class EtcdTlsConfig(_ClientTlsConfig):
    """TLS to the etcd members: the CA that signed their certificates, and this recorder's client
    certificate when the members require one (etcd --client-cert-auth)."""

    # The name checked in every member's certificate (a DNS or IP subject alternative name).
    # One gRPC channel reaches all the members and checks one name; default: the members' host
    # when they share one. Members on several hosts need it (see docs/operator-guide.md).
    server_name: str | None = None


class PeerTlsConfig(_ClientTlsConfig):
    """TLS of the calls between the site's recorders: the CA that signed the peers' [grpc.tls]
    certificates, and the certificate this recorder presents to them (default: its own [grpc.tls]
    cert and key; mutual TLS when the peers' [grpc.tls] client_ca trusts it)."""


class SiteConfig(_Strict):
    """A site of recorders coordinated through etcd (docs/design/site.md). Absent: one recorder."""

    name: str
    # The etcd members' client addresses (HOST:PORT), every one of them: the client fails over.
    etcd: list[str] = Field(min_length=1)
    # The TTL of this recorder's etcd lease: a recorder that stops answering loses its cameras to
    # its peers about this long after its last keepalive.
    lease_ttl_ns: DurationNs = Field(default=5 * NS_PER_S, alias="lease_ttl")
    # Where peers reach this recorder's gRPC (default: [grpc] listen).
    advertise: str | None = None
    # The shared secret peers present (role `site`, never a user's).
    token_file: Path | None = None
    # "manual": cameras stay where failover put them until an operator moves them back;
    # "auto": a returning recorder takes back the cameras placement prefers it for (make-before-break).
    failback: Literal["manual", "auto"] = "manual"
    # How many cameras this recorder may own; placement prefers the recorder with most to spare.
    capacity: int = Field(default=64, ge=1, le=10_000)
    etcd_tls: EtcdTlsConfig | None = None
    # TLS to the peers' gRPC (needs [grpc] tls: peers call this recorder the same way).
    peer_tls: PeerTlsConfig | None = None
    # Peers that are not on loopback are called over TLS unless this says plaintext is wanted
    # (the site token and the forwarded principals would cross the network in clear).
    insecure: bool = False

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        if not ID_RE.fullmatch(value):
            raise ValueError("the site name must be 1-64 characters of letters, digits, '.', '_' or '-'")
        return value

    @field_validator("etcd")
    @classmethod
    def _endpoints(cls, value: list[str]) -> list[str]:
        for item in value:
            if _split_host_port(item) is None:
                raise ValueError(f"expected etcd members as HOST:PORT such as '127.0.0.1:2379', got {item!r}")
        if len(set(value)) != len(value):
            raise ValueError("lists an etcd member twice")
        return value

    @field_validator("advertise")
    @classmethod
    def _advertise(cls, value: str | None) -> str | None:
        if value is not None and _split_host_port(value) is None:
            raise ValueError(f"expected HOST:PORT such as '10.0.0.2:50051', got {value!r}")
        return value

    @field_validator("lease_ttl_ns")
    @classmethod
    def _ttl_bounds(cls, value: int) -> int:
        # etcd grants whole seconds; below 2 s a busy recorder's keepalives would miss the TTL.
        if not 2 * NS_PER_S <= value <= 300 * NS_PER_S or value % NS_PER_S:
            raise ValueError("must be a whole number of seconds between 2s and 300s")
        return value

    @property
    def etcd_server_name(self) -> str | None:
        """The name checked in the etcd members' certificates (None: without TLS)."""
        if self.etcd_tls is None:
            return None
        return self.etcd_tls.server_name or self.etcd[0].rpartition(":")[0].strip("[]")


_CLOCK_TIME_RE = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")


class HealthConfig(_Strict):
    """Function checks (vmsd.function_checks): when they run by themselves, and how long they watch."""

    # Local times of day (the recorder's time zone), like a control room's shift checks.
    times: list[str] = Field(default_factory=lambda: ["07:00", "19:00"])
    # How long a check watches each camera's packets to measure its frame rate and bitrate.
    observe_ns: DurationNs = Field(default=5_000_000_000, alias="observe")
    # How far a camera's own clock (from its RTCP sender reports; native source only) may be from
    # the recorder's before the function checks' `camera_clock` finding warns.
    camera_clock_tolerance_ns: DurationNs = Field(default=2_000_000_000, alias="camera_clock_tolerance")

    @field_validator("times")
    @classmethod
    def _clock_times(cls, value: list[str]) -> list[str]:
        for item in value:
            if not _CLOCK_TIME_RE.fullmatch(item):
                raise ValueError(f"expected times of day as 'HH:MM' (24-hour), got {item!r}")
        return sorted(set(value))

    @field_validator("observe_ns")
    @classmethod
    def _observe_bounds(cls, value: int) -> int:
        if not NS_PER_S <= value <= 60 * NS_PER_S:
            raise ValueError("observe must be between 1s and 60s")
        return value


class TokenConfig(_Strict):
    name: str = Field(min_length=1, max_length=128)
    sha256: str
    role: Role
    cameras: list[str] = Field(default_factory=lambda: ["*"])

    @field_validator("role", mode="before")
    @classmethod
    def _not_site(cls, value: object) -> object:
        # The site token ([site] token_file) is the only credential of role `site`: a user token
        # with it could pose as a peer recorder and forward any principal.
        if value == "site":
            raise ValueError(
                "role 'site' belongs to the site's recorders (the [site] token_file), never to a user token"
            )
        return value

    @field_validator("sha256")
    @classmethod
    def _hex_digest(cls, value: str) -> str:
        if not re.fullmatch(r"[0-9a-fA-F]{64}", value):
            raise ValueError("expected the 64-character hex SHA-256 of the token (never the token itself)")
        return value.lower()


class AuthConfig(_Strict):
    tokens: list[TokenConfig] = Field(default_factory=list)


Point = tuple[float, float]


class CameraConfig(_Strict):
    id: str
    name: str = ""
    url: str
    location: str = ""
    transport: Literal["tcp", "udp"] = "tcp"
    # Who speaks RTSP to the camera: vmsd's own client ("native", the default since it passed the
    # whole e2e/reliability/quirk suite, issue #16: cheaper than FFmpeg, and the camera clock is
    # checked from its RTCP sender reports) or FFmpeg through PyAV ("ffmpeg", the fallback for
    # what the native client does not speak).
    source: Literal["ffmpeg", "native"] = "native"
    enabled: bool = True
    retention_max_age_ns: DurationNs | None = Field(default=None, alias="retention_max_age")
    privacy_masks: list[list[Point]] = Field(default_factory=list)
    # With [site]: the recorders (recorder_id) that may record this camera; empty: any of them.
    recorders: list[str] = Field(default_factory=list)

    @field_validator("recorders")
    @classmethod
    def _recorder_ids(cls, value: list[str]) -> list[str]:
        for item in value:
            if not ID_RE.fullmatch(item):
                raise ValueError(f"recorder id {item!r} must be 1-64 characters of letters, digits, '.', '_' or '-'")
        if len(set(value)) != len(value):
            raise ValueError("names a recorder twice")
        return value

    @field_validator("id")
    @classmethod
    def _safe_id(cls, value: str) -> str:
        if not ID_RE.fullmatch(value):
            raise ValueError(
                f"camera id {value!r} must be 1-64 characters of letters, digits, '.', '_' or '-' "
                "and start with a letter or digit"
            )
        return value

    @field_validator("url")
    @classmethod
    def _rtsp_url(cls, value: str) -> str:
        # Never echo the URL in these errors: it may carry credentials.
        if not re.fullmatch(r"rtsps?://[^/\s]+(/\S*)?", value):
            raise ValueError("expected an rtsp:// or rtsps:// URL without spaces")
        parts = urlsplit(value)
        try:
            port = parts.port
        except ValueError:
            raise ValueError("the URL's port must be a number from 1 to 65535") from None
        if not parts.hostname or port == 0:
            raise ValueError("the URL needs a host (and a port from 1 to 65535 when given)")
        return value

    @field_validator("privacy_masks")
    @classmethod
    def _normalised_polygons(cls, value: list[list[Point]]) -> list[list[Point]]:
        for index, polygon in enumerate(value):
            if len(polygon) < 3:
                raise ValueError(f"polygon {index} needs at least 3 points")
            for x, y in polygon:
                if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
                    raise ValueError(f"polygon {index} has a point outside 0..1 (coordinates are normalised)")
        return value


class Config(_Strict):
    recorder_id: str
    storage: StorageConfig
    retention: RetentionConfig = RetentionConfig()
    export: ExportConfig = ExportConfig()
    events: EventsConfig = EventsConfig()
    ingest: IngestConfig = IngestConfig()
    grpc: GrpcConfig = GrpcConfig()
    metrics: MetricsConfig = MetricsConfig()
    web: WebConfig = WebConfig()
    live: LiveConfig = LiveConfig()
    health: HealthConfig = HealthConfig()
    auth: AuthConfig = AuthConfig()
    site: SiteConfig | None = None
    cameras: list[CameraConfig] = Field(default_factory=list)

    @field_validator("recorder_id")
    @classmethod
    def _safe_recorder_id(cls, value: str) -> str:
        if not ID_RE.fullmatch(value):
            raise ValueError("recorder_id must be 1-64 characters of letters, digits, '.', '_' or '-'")
        return value

    @model_validator(mode="after")
    def _unique_ids(self) -> Config:
        seen: set[str] = set()
        for camera in self.cameras:
            if camera.id in seen:
                raise ValueError(f"duplicate camera id {camera.id!r} in [[cameras]]")
            seen.add(camera.id)
        names: set[str] = set()
        for token in self.auth.tokens:
            if token.name in names:
                raise ValueError(f"duplicate token name {token.name!r} in [[auth.tokens]]")
            names.add(token.name)
        return self

    @model_validator(mode="after")
    def _site_rules(self) -> Config:
        # recorder_id is unique in the site: the config cannot see its peers, membership refuses
        # to join while another live recorder holds the same id (site/membership.py).
        if self.site is None:
            named = [f"cameras[{i}].recorders" for i, c in enumerate(self.cameras) if c.recorders]
            if named:
                raise ValueError(f"{', '.join(named)}: needs a [site] (a single recorder records all its cameras)")
        return self

    @model_validator(mode="after")
    def _site_tls(self) -> Config:
        # Peers call each other at their advertised [grpc] addresses: the site is all TLS or all
        # plaintext, and plaintext off loopback only when asked for (like [grpc] and [web]).
        if self.site is None:
            return self
        if self.site.peer_tls is not None and self.grpc.tls is None:
            raise ValueError(
                "site.peer_tls: needs [grpc] tls: peers call this recorder over TLS too "
                "(the same on every recorder of the site)"
            )
        if self.site.peer_tls is None and self.grpc.tls is not None:
            raise ValueError(
                "site.peer_tls: required with [grpc] tls: peers reach this recorder over TLS only, and it "
                'calls them the same way; set peer_tls = { ca = "..." } (the CA of the peers\' [grpc.tls] '
                "certificates)"
            )
        site = self.site
        if site.etcd_tls is not None and site.etcd_tls.server_name is None:
            hosts = sorted({address[0] for item in site.etcd if (address := _split_host_port(item)) is not None})
            if len(hosts) > 1:
                raise ValueError(
                    f"site.etcd_tls.server_name: required with etcd members on several hosts ({', '.join(hosts)}): "
                    "one TLS channel reaches every member and checks one name, so give the name "
                    "(DNS or IP subject alternative name) that every member's certificate carries"
                )
        host = self.site_advertise.rpartition(":")[0].strip("[]")
        if self.site.peer_tls is None and not is_loopback(host) and not self.site.insecure:
            key = (
                "site.advertise"
                if self.site.advertise is not None
                else "grpc.listen (peers call it: no [site] advertise)"
            )
            raise ValueError(
                f"{key}: {self.site_advertise!r} is not a loopback address: peers would call this "
                "recorder in plaintext, site token included; configure [grpc] tls and [site] peer_tls, "
                "or set [site] insecure = true to accept plaintext on the network"
            )
        return self

    @property
    def site_advertise(self) -> str:
        """Where peers reach this recorder's gRPC: [site] advertise, else [grpc] listen."""
        return (self.site.advertise if self.site is not None else None) or self.grpc.listen

    @model_validator(mode="after")
    def _retention_floor(self) -> Config:
        ages = [(self.retention.max_age_ns, "retention.max_age")] + [
            (c.retention_max_age_ns, f"cameras[{i}].retention_max_age")
            for i, c in enumerate(self.cameras)
            if c.retention_max_age_ns is not None
        ]
        problems = [p for age_ns, key in ages if (p := self.retention.floor_problem(age_ns, key)) is not None]
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def camera(self, camera_id: str) -> CameraConfig | None:
        return next((c for c in self.cameras if c.id == camera_id), None)


def _format_location(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in ("function-before[_min_free(), MinFree]",) or "function-" in str(part):
            continue
        else:
            path += f".{part}" if path else str(part)
    return path or "(top level)"


def format_validation_error(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        message = str(item["msg"]).removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        elif item["type"] == "missing":
            message = "required key is missing"
        if not item["loc"]:
            # A check across keys (a model validator): its message names the keys itself.
            lines.append(message)
            continue
        lines.append(f"{_format_location(tuple(item['loc']))}: {message}")
    return "\n".join(lines)


def parse_config(data: dict[str, Any], source: str = "<config>") -> Config:
    try:
        return Config.model_validate(data)
    except ValidationError as error:
        raise ConfigError(f"{source}: invalid configuration\n{format_validation_error(error)}") from None


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and validate a TOML configuration file; ConfigError names the file and every bad key."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"{path}: cannot read configuration: {error.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None
    config = parse_config(data, str(path))
    # A relative storage root is taken relative to the config file, so `config/demo.toml` works
    # from any working directory.
    if not config.storage.root.is_absolute():
        root = (path.parent / config.storage.root).resolve()
        config = config.model_copy(update={"storage": config.storage.model_copy(update={"root": root})})
    return config


def check_environment(config: Config) -> list[str]:
    """Probe the machine for what the config needs; returns problems, each naming the key."""
    problems: list[str] = []
    root = config.storage.root
    existing = root
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        problems.append(f"storage.root: {existing} is not a directory")
    elif not os.access(existing, os.W_OK | os.X_OK):
        problems.append(f"storage.root: {existing} is not writable by this user")
    if config.site is not None:
        paths = [("site.token_file", config.site.token_file)]
        for name, client_tls in (("etcd_tls", config.site.etcd_tls), ("peer_tls", config.site.peer_tls)):
            if client_tls is not None:
                paths += [(f"site.{name}.{key}", getattr(client_tls, key)) for key in ("ca", "cert", "key")]
        for key, value in paths:
            if value is not None and not os.access(value, os.R_OK):
                problems.append(f"{key}: {value} is not readable")
    for section, tls in (("grpc", config.grpc.tls), ("web", config.web.tls)):
        if tls is None:
            continue
        for key in ("cert", "key", "client_ca"):
            value = getattr(tls, key)
            if value is not None and not os.access(value, os.R_OK):
                problems.append(f"{section}.tls.{key}: {value} is not readable")
    return problems
