"""PeerClient against real recorders on loopback: the site token, the forwarded principal
re-authorised by the receiving recorder against its own tokens, audited with `via`, and an
explicit UNAVAILABLE when a peer cannot be reached or does not answer.

Recorder "rec-b" is a real daemon (tests/support/rpc.py: its tokens and footage) that accepts the
site token; the test plays recorder "rec-a" calling it through PeerClient.
"""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest

from tests.support.rpc import MID, RunningDaemon, S, make_config, record_footage
from vmsd.errors import ErrorKind, VmsdError
from vmsd.services.access import Principal
from vmsd.services.forwarding import Forwarded
from vmsd.site.peers import PeerClient, load_site_token
from vmsd.units import NS_PER_MS
from vmsd.v1 import common_pb2, recordings_pb2, recordings_pb2_grpc

SITE_TOKEN = "site-secret-shared-by-the-recorders"
RANGE = (MID - 10 * S, MID + 30 * S)


def _forwarded(name: str, role: str, cameras: tuple[str, ...] = ("*",)) -> list[tuple[str, str]]:
    return Forwarded.of(Principal(name, role, cameras), via="rec-a").headers()


@pytest.fixture(scope="module")
def rec_b(tmp_path_factory: pytest.TempPathFactory, h264_ts: Path) -> Iterator[RunningDaemon]:
    root = tmp_path_factory.mktemp("rec-b") / "root"
    record_footage(root, h264_ts)
    running = RunningDaemon(make_config(root))
    # What the daemon does at start with [site] token_file (app.py).
    running.daemon.authenticator.accept_site_token(SITE_TOKEN)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
async def client() -> AsyncIterator[PeerClient]:
    peers = PeerClient(SITE_TOKEN, timeout_ns=2000 * NS_PER_MS)
    yield peers
    await peers.aclose()


def _records(rec_b: RunningDaemon, principal: str) -> list[tuple[str, str, dict[str, object]]]:
    records, _ = rec_b.daemon.audit.query(principal=principal)
    return [(r.action, r.outcome, json.loads(r.detail_json)) for r in records]


async def test_a_forwarded_principal_searches_the_peer_and_is_audited_there_with_via(
    rec_b: RunningDaemon, client: PeerClient
) -> None:
    address = f"127.0.0.1:{rec_b.port}"
    found = await client.search("rec-b", address, _forwarded("viewer-1", "viewer"), "in-cam", *RANGE)
    assert [(s.start_ns, s.end_ns, s.segments) for s in found.spans] == [
        (MID - 5 * S, MID + 7 * S, 2),
        (MID + 13_960_000_000, MID + 21_960_000_000, 1),
    ]
    # The peer names the recorder that holds each span (its recorder_id).
    assert {s.recorder for s in found.spans} == {"rpc-test"}
    records = _records(rec_b, "viewer-1")
    assert records[-1][:2] == ("/vmsd.v1.RecordingService/Search", "OK")
    assert records[-1][2]["via"] == "rec-a"


async def test_the_receivers_scope_applies_not_the_senders(rec_b: RunningDaemon, client: PeerClient) -> None:
    """viewer-1 is scoped to in-* on rec-b: forwarding it with scope '*' gives it nothing more."""
    address = f"127.0.0.1:{rec_b.port}"
    with pytest.raises(VmsdError) as caught:
        await client.search("rec-b", address, _forwarded("viewer-1", "viewer", ("*",)), "out-cam", *RANGE)
    assert caught.value.kind is ErrorKind.PERMISSION_DENIED
    assert caught.value.message.startswith("recorder rec-b (")
    assert "outside this principal's scope" in caught.value.message


@pytest.mark.parametrize(
    ("name", "role"),
    [("officer-3", "viewer"), ("viewer-1", "admin"), ("viewer-1", "site")],
    ids=["unknown-name", "claimed-role", "site-role"],
)
async def test_a_principal_unknown_to_the_receiver_as_forwarded_is_refused_and_audited(
    rec_b: RunningDaemon, client: PeerClient, name: str, role: str
) -> None:
    address = f"127.0.0.1:{rec_b.port}"
    with pytest.raises(VmsdError) as caught:
        await client.search("rec-b", address, _forwarded(name, role), "in-cam", *RANGE)
    assert caught.value.kind is ErrorKind.PERMISSION_DENIED
    assert "is not configured on this recorder with that role" in caught.value.message
    # The denial is on rec-b's trail, naming the peer recorder (role `site`) that asked.
    records, _ = rec_b.daemon.audit.query(outcome="PERMISSION_DENIED", principal="site")
    assert records and records[-1].role == "site"


def test_the_site_token_without_a_forwarded_principal_acts_for_nobody(rec_b: RunningDaemon) -> None:
    stub = recordings_pb2_grpc.RecordingServiceStub(rec_b.channel)  # type: ignore[no-untyped-call]
    request = recordings_pb2.SearchRequest(
        camera_id="in-cam", range=common_pb2.TimeRange(start_ns=RANGE[0], end_ns=RANGE[1])
    )
    with pytest.raises(grpc.RpcError) as caught:
        stub.Search(request, metadata=[("authorization", f"Bearer {SITE_TOKEN}")])
    assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert "must forward the principal" in str(caught.value.details())


def test_a_wrong_site_token_is_unauthenticated(rec_b: RunningDaemon) -> None:
    stub = recordings_pb2_grpc.RecordingServiceStub(rec_b.channel)  # type: ignore[no-untyped-call]
    request = recordings_pb2.SearchRequest(
        camera_id="in-cam", range=common_pb2.TimeRange(start_ns=RANGE[0], end_ns=RANGE[1])
    )
    with pytest.raises(grpc.RpcError) as caught:
        stub.Search(request, metadata=[("authorization", "Bearer not-the-site-token"), *_forwarded("admin-1", "admin")])
    assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED


def test_the_site_token_cannot_open_a_user_session(rec_b: RunningDaemon) -> None:
    with pytest.raises(VmsdError) as caught:
        rec_b.daemon.authenticator.identify(f"Bearer {SITE_TOKEN}")
    assert caught.value.kind is ErrorKind.UNAUTHENTICATED


async def test_a_peer_that_cannot_be_reached_is_unavailable(client: PeerClient) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{probe.getsockname()[1]}"
    with pytest.raises(VmsdError) as caught:
        await client.search("rec-c", address, _forwarded("viewer-1", "viewer"), "in-cam", *RANGE)
    assert caught.value.kind is ErrorKind.UNAVAILABLE
    assert caught.value.message.startswith(f"recorder rec-c ({address})")


async def test_a_peer_that_does_not_answer_is_unavailable_after_the_timeout(client: PeerClient) -> None:
    with socket.socket() as silent:  # accepts connections, never speaks HTTP/2
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        address = f"127.0.0.1:{silent.getsockname()[1]}"
        with pytest.raises(VmsdError) as caught:
            await client.search("rec-c", address, _forwarded("viewer-1", "viewer"), "in-cam", *RANGE)
    assert caught.value.kind is ErrorKind.UNAVAILABLE
    assert caught.value.message == f"recorder rec-c ({address}) did not answer within 2 s"


def test_load_site_token_names_the_file_and_never_the_token(tmp_path: Path) -> None:
    path = tmp_path / "site.token"
    path.write_text(f"  {SITE_TOKEN}\n")
    assert load_site_token(path) == SITE_TOKEN
    path.write_text("\n")
    with pytest.raises(VmsdError, match="is empty"):
        load_site_token(path)
    with pytest.raises(VmsdError, match="cannot be read"):
        load_site_token(tmp_path / "missing")
