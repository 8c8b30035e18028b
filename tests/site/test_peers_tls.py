"""Recorders of a site calling each other over mutual TLS: two real daemons on loopback, each with
[grpc] tls (its own certificate from the site's CA, client_ca = that CA), [site] peer_tls (the
site's CA) and etcd over TLS with a client certificate ([site] etcd_tls). A site-wide search on
one recorder reaches the other only over TLS; a recorder whose certificate comes from another
CA is refused in both directions, and that refusal is an explicit `unavailable` part.

Footage as in tests/services/test_site.py: rec-a holds in-cam MID-5s..MID+7s, rec-b (which took
it over) a `failover` gap MID+7s..MID+10s and footage MID+10s..MID+22s.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from tests.support.etcd import EtcdCluster
from tests.support.pki import make_pki
from tests.support.rpc import MID, RunningDaemon, S, metadata
from tests.support.site_ops import SITE_TOKEN, record_in_cam, site_daemon, wait_for_keys
from vmsd.config import PeerTlsConfig, TlsConfig
from vmsd.errors import ErrorKind, VmsdError
from vmsd.services.access import Principal
from vmsd.services.forwarding import Forwarded
from vmsd.site.peers import PeerClient, load_peer_credentials
from vmsd.storage.catalogue import GapReason
from vmsd.v1 import common_pb2, recordings_pb2

RANGE = (MID - 10 * S, MID + 30 * S)
SPANS = [(MID - 5 * S, MID + 7 * S, 2, "rec-a"), (MID + 10 * S, MID + 22 * S, 2, "rec-b")]


@dataclass
class TlsSite:
    base: Path
    pki: Path
    etcd: EtcdCluster
    token_file: Path
    rec_a: RunningDaemon
    rec_b: RunningDaemon


def _tls_daemon(
    pki: Path, etcd: EtcdCluster, token_file: Path, root: Path, recorder_id: str, cert: str, server_ca: str
) -> RunningDaemon:
    """A recorder whose [grpc] tls certificate is pki/`cert`.pem (signed by pki/`server_ca`), which
    requires client certificates from the site's CA and trusts it for its peers."""
    grpc_tls = {"cert": str(pki / f"{cert}.pem"), "key": str(pki / f"{cert}.key"), "client_ca": str(pki / "ca.pem")}
    client = {"cert": str(pki / "client.pem"), "key": str(pki / "client.key")}
    site_tls = {"peer_tls": {"ca": str(pki / "ca.pem")}, "etcd_tls": {"ca": str(pki / "ca.pem"), **client}}
    # The test's own channel: trusts the recorder's CA, presents the control room's certificate.
    credentials = grpc.ssl_channel_credentials(
        (pki / server_ca).read_bytes(), (pki / "client.key").read_bytes(), (pki / "client.pem").read_bytes()
    )
    return site_daemon(
        root, recorder_id, etcd, token_file, grpc={"tls": grpc_tls}, site=site_tls, credentials=credentials
    )


@pytest.fixture(scope="module")
def tls_site(tmp_path_factory: pytest.TempPathFactory, h264_ts: Path) -> Iterator[TlsSite]:
    base = tmp_path_factory.mktemp("tls-site")
    pki = base / "pki"
    pki.mkdir()
    make_pki(pki)
    etcd = EtcdCluster(base / "etcd", members_count=1, tls=pki).start()
    token_file = base / "site.token"
    token_file.write_text(SITE_TOKEN + "\n")
    record_in_cam(base / "a", h264_ts, start_ns=MID - 5 * S, seconds=12, end_reason=GapReason.CRASH)
    record_in_cam(
        base / "b", h264_ts, start_ns=MID + 10 * S, seconds=12, end_reason="camera_offline",
        failover_from_ns=MID + 7 * S,
    )  # fmt: skip
    rec_a = rec_b = None
    try:
        rec_a = _tls_daemon(pki, etcd, token_file, base / "a", "rec-a", "server", "ca.pem")
        rec_b = _tls_daemon(pki, etcd, token_file, base / "b", "rec-b", "peer", "ca.pem")
        # Both joined the site through etcd over TLS and published their footage there.
        wait_for_keys(etcd, "footage/in-cam/", {"rec-a", "rec-b"})
        yield TlsSite(base, pki, etcd, token_file, rec_a, rec_b)
    finally:
        for running in (rec_b, rec_a):
            if running is not None:
                running.stop()
        etcd.stop()


def _search(running: RunningDaemon, role: str = "integrator") -> recordings_pb2.SearchResponse:
    request = recordings_pb2.SearchRequest(
        camera_id="in-cam", range=common_pb2.TimeRange(start_ns=RANGE[0], end_ns=RANGE[1])
    )
    return running.stubs.recordings.Search(request, metadata=metadata(role), timeout=10)  # type: ignore[no-any-return]


def _spans(reply: recordings_pb2.SearchResponse) -> list[tuple[int, int, int, str]]:
    return [(s.range.start_ns, s.range.end_ns, s.segments, s.recorder) for s in reply.spans]


def test_recorders_join_over_etcd_tls_and_search_each_other_over_mutual_tls(tls_site: TlsSite) -> None:
    assert tls_site.etcd.site_members("test-site") == {"rec-a", "rec-b"}
    for asked in (tls_site.rec_a, tls_site.rec_b):
        reply = _search(asked, role="viewer")
        assert _spans(reply) == SPANS
        assert [u.recorder for u in reply.unavailable] == []
    # Audited on the peer for the forwarded principal, via the recorder asked.
    theirs, _ = tls_site.rec_b.daemon.audit.query(
        principal="viewer-1", action_prefix="/vmsd.v1.RecordingService/Search"
    )
    assert any('"via":"rec-a"' in r.detail_json.replace(" ", "") for r in theirs)


async def test_the_peers_speak_tls_only(tls_site: TlsSite) -> None:
    """What made the search above work is the credentials: in plaintext, the same peer call fails."""
    plaintext = PeerClient(SITE_TOKEN)
    headers = Forwarded.of(Principal("viewer-1", "viewer", ("*",)), via="rec-a").headers()
    try:
        with pytest.raises(VmsdError) as caught:
            await plaintext.search("rec-b", f"127.0.0.1:{tls_site.rec_b.port}", headers, "in-cam", *RANGE)
    finally:
        await plaintext.aclose()
    assert caught.value.kind is ErrorKind.UNAVAILABLE
    assert caught.value.message.startswith("recorder rec-b (127.0.0.1:")


def test_a_recorder_with_a_certificate_from_another_ca_is_refused_both_ways(tls_site: TlsSite, h264_ts: Path) -> None:
    """rec-c trusts the site's CA for its peers, but its own certificate (server and client) is
    from another CA: rec-a refuses its server certificate, rec-a and rec-b refuse its client one."""
    record_in_cam(tls_site.base / "c", h264_ts, start_ns=MID + 24 * S, seconds=4, end_reason="camera_offline")
    site = tls_site
    rec_c = _tls_daemon(
        site.pki, site.etcd, site.token_file, site.base / "c", "rec-c", "stranger-server", "other-ca.pem"
    )
    try:
        wait_for_keys(tls_site.etcd, "footage/in-cam/", {"rec-a", "rec-b", "rec-c"})
        # Asked on rec-a: rec-b answers, rec-c's certificate is not the site CA's.
        reply = _search(tls_site.rec_a)
        assert {s.recorder for s in reply.spans} == {"rec-a", "rec-b"}
        reasons = {u.recorder: u.reason for u in reply.unavailable}
        assert list(reasons) == ["rec-c"]
        assert reasons["rec-c"].startswith(f"UNAVAILABLE: recorder rec-c (127.0.0.1:{rec_c.port}) cannot be reached")
        assert "CERTIFICATE_VERIFY_FAILED" in reasons["rec-c"]
        # Asked on rec-c: it trusts rec-a's and rec-b's certificates, they refuse its own.
        before = len(tls_site.rec_a.daemon.audit.query(principal="integrator-1")[0])
        reply = _search(rec_c)
        assert {s.recorder for s in reply.spans} == {"rec-c"}
        assert sorted(u.recorder for u in reply.unavailable) == ["rec-a", "rec-b"]
        assert all(u.reason.startswith("UNAVAILABLE: recorder rec-") for u in reply.unavailable)
        # Nothing got through to rec-a: no forwarded call was audited there.
        after = tls_site.rec_a.daemon.audit.query(principal="integrator-1")[0]
        assert [r for r in after[before:] if "rec-c" in r.detail_json] == []
    finally:
        rec_c.stop()


async def test_plaintext_to_a_peer_off_loopback_is_refused_before_any_connection() -> None:
    """A recorder without [site] peer_tls (its config allowed that on loopback) given a peer on
    the network: the site token is never sent in clear (nothing is even connected)."""
    peers = PeerClient(SITE_TOKEN)
    headers = Forwarded.of(Principal("viewer-1", "viewer", ("*",)), via="rec-a").headers()
    try:
        with pytest.raises(VmsdError) as caught:
            await peers.search("rec-b", "192.0.2.7:50051", headers, "in-cam", *RANGE)
    finally:
        await peers.aclose()
    assert caught.value.kind is ErrorKind.FAILED_PRECONDITION
    assert caught.value.message == (
        "peer address 192.0.2.7:50051 is not a loopback address and this recorder has no [site] peer_tls: "
        "it calls peers on the network over TLS only (or in plaintext with [site] insecure = true)"
    )


def test_peer_credentials_name_the_file_that_cannot_be_read(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    grpc_tls = TlsConfig(cert=pki / "server.pem", key=pki / "server.key")
    assert load_peer_credentials(PeerTlsConfig(ca=pki / "ca.pem"), grpc_tls) is not None
    with pytest.raises(VmsdError, match=r"^site.peer_tls.ca '.*missing.pem': cannot be read"):
        load_peer_credentials(PeerTlsConfig(ca=pki / "missing.pem"), grpc_tls)
    moved = TlsConfig(cert=pki / "gone.pem", key=pki / "server.key")
    with pytest.raises(VmsdError, match=r"^grpc.tls.cert '.*gone.pem': cannot be read"):
        load_peer_credentials(PeerTlsConfig(ca=pki / "ca.pem"), moved)
