"""The etcd v3 client of a site: aetcd (a maintained asyncio client) on one gRPC channel to every member.

The channel names all members (gRPC's ipv4:/ipv6: resolvers take a list) with round-robin
balancing, so that a member that dies or is partitioned away costs a failed call, not the site:
the next call goes to another member. aetcd opens plaintext channels only; `SiteEtcdClient`
opens a TLS one when [site] etcd_tls is set (the CA of the members, and a client certificate
when they require one). Such a channel checks one name in every member's certificate
([site] etcd_tls.server_name, default the members' shared host): gRPC would otherwise check the
whole multi-address target, which no certificate names. `explain` turns a TLS failure's gRPC
text into what the operator should look at, naming the [site] key.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from pathlib import Path
from typing import Any

import aetcd
import grpc
from aetcd import rpc

from vmsd.config import EtcdTlsConfig, SiteConfig
from vmsd.errors import ErrorKind, VmsdError
from vmsd.units import NS_PER_S

# gRPC channel options: spread calls over the members, find a restarted member quickly.
_CHANNEL_OPTIONS = {
    "grpc.lb_policy_name": "round_robin",
    "grpc.initial_reconnect_backoff_ms": 200,
    "grpc.max_reconnect_backoff_ms": 1000,
    "grpc.keepalive_time_ms": 2000,
    "grpc.keepalive_timeout_ms": 2000,
    "grpc.keepalive_permit_without_calls": 1,
}


def _resolve(endpoint: str) -> list[tuple[int, str]]:
    host, _, port = endpoint.rpartition(":")
    host = host.strip("[]")
    try:
        address = ipaddress.ip_address(host)
        return [(address.version, f"[{host}]:{port}" if address.version == 6 else f"{host}:{port}")]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)
    except OSError as error:
        raise VmsdError(ErrorKind.UNAVAILABLE, f"[site] etcd member {endpoint!r}: cannot resolve ({error})") from None
    found: list[tuple[int, str]] = []
    for family, _, _, _, sockaddr in infos:
        ip = str(sockaddr[0])
        item = (6, f"[{ip}]:{port}") if family == socket.AF_INET6 else (4, f"{ip}:{port}")
        if item not in found:
            found.append(item)
    return found


async def channel_target(endpoints: list[str]) -> str:
    """A gRPC target naming every member: "ipv4:a:p,b:p" (or ipv6:); names are resolved now, once."""
    resolved = [item for endpoint in endpoints for item in await asyncio.to_thread(_resolve, endpoint)]
    v4 = [a for family, a in resolved if family == 4]
    v6 = [a for family, a in resolved if family == 6]
    return "ipv4:" + ",".join(v4) if v4 else "ipv6:" + ",".join(v6)


class SiteEtcdClient(aetcd.Client):  # type: ignore[misc]
    """aetcd's client on a channel to every member (`target`), plaintext or TLS."""

    def __init__(
        self, target: str, *, timeout_s: float, tls: EtcdTlsConfig | None, server_name: str | None = None
    ) -> None:
        # aetcd joins host and port into the channel target: split ours at its last colon.
        host, _, port = target.rpartition(":")
        options: dict[str, Any] = dict(_CHANNEL_OPTIONS)
        if tls is not None and server_name is not None:
            options["grpc.ssl_target_name_override"] = server_name
        super().__init__(host=host, port=int(port), timeout=timeout_s, options=options)
        self._tls = tls

    async def connect(self) -> None:
        if self._tls is None:
            await super().connect()
            return
        if self._connected.is_set():
            return
        credentials = await asyncio.to_thread(_credentials, self._tls)
        self.channel = grpc.aio.secure_channel(f"{self._host}:{self._port}", credentials, options=self._options.items())
        self.kvstub = rpc.KVStub(self.channel)
        self.clusterstub = rpc.ClusterStub(self.channel)
        self.leasestub = rpc.LeaseStub(self.channel)
        self.maintenancestub = rpc.MaintenanceStub(self.channel)
        self._watcher = aetcd.watcher.Watcher(rpc.WatchStub(self.channel), timeout=self._timeout, metadata=None)
        self._connected.set()


def _read(path: Path | None) -> bytes | None:
    return path.read_bytes() if path is not None else None


def _credentials(tls: EtcdTlsConfig) -> Any:
    return grpc.ssl_channel_credentials(
        root_certificates=_read(tls.ca), private_key=_read(tls.key), certificate_chain=_read(tls.cert)
    )


async def open_client(site: SiteConfig) -> SiteEtcdClient:
    """A client for [site] etcd (no call made yet: the channel connects on the first call)."""
    target = await channel_target(site.etcd)
    # A call gets a third of the lease's TTL: a keepalive that hangs must not outlive the lease.
    timeout_s = site.lease_ttl_ns / NS_PER_S / 3
    client = SiteEtcdClient(target, timeout_s=timeout_s, tls=site.etcd_tls, server_name=site.etcd_server_name)
    await client.connect()
    return client


_NOT_VERIFIED = "the etcd members' certificate does not verify against the CA in [site] etcd_tls.ca"
# gRPC's words for a failed TLS connection (BoringSSL's and gRPC core's) → what to check.
_TLS_FAILURES = (
    # Not signed by that CA, expired, or signed by another CA of the same name (BAD_SIGNATURE).
    ("CERTIFICATE_VERIFY_FAILED", _NOT_VERIFIED),
    ("BAD_SIGNATURE", _NOT_VERIFIED),
    (
        "Hostname Verification",
        "the etcd members' certificate does not name {server_name!r} ([site] etcd_tls.server_name, default "
        "the members' host)",
    ),
    # The members ended the handshake after reading this recorder's certificate (or its absence).
    (
        "Unwrap failed",
        "the etcd members refused this recorder's client certificate ([site] etcd_tls.cert and key; "
        "etcd --client-cert-auth trusts its --trusted-ca-file)",
    ),
    ("Handshake read failed", "the etcd members do not answer TLS: do they serve https client URLs?"),
)


def explain(error: BaseException, site: SiteConfig) -> str:
    """A short text for an etcd call that failed: for a TLS failure, what is wrong and the [site]
    key to look at, then gRPC's own words; else gRPC's words for the last failure (or the
    error's type)."""
    text = str(error) or type(error).__name__
    # aetcd's ConnectionFailedError reads "connections to all backends failing; last error: ...".
    detail = text.rpartition("last error: ")[2]
    if site.etcd_tls is not None:
        for needle, meaning in _TLS_FAILURES:
            if needle in detail:
                return f"{meaning.format(server_name=site.etcd_server_name)} ({detail})"
    elif "Socket closed" in detail:
        return f"the etcd members closed the connection: do they serve TLS only? then set [site] etcd_tls ({detail})"
    return detail
