"""The site's etcd over TLS with client certificates (etcd --client-cert-auth, https client URLs;
tests/support/etcd.py `tls=`): members join and split the cameras through three TLS members; a
wrong CA, a refused client certificate or a wrong server name is an alarm that names the [site] key to look at; a
TLS fault after joining (the members' certificates replaced by another CA's) never stops the
cameras recording. Members are in-process (tests/site/harness.py); a real daemon joins over TLS
in tests/site/test_peers_tls.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.site.harness import Member, site_config, wait_until
from tests.support.etcd import EtcdCluster, running_etcd
from tests.support.pki import make_pki

CAMERAS = [f"cam-{i}" for i in range(4)]


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    (tmp_path / "pki").mkdir()
    return make_pki(tmp_path / "pki")


@pytest.fixture
def tls_etcd(tmp_path: Path, pki: Path) -> Iterator[EtcdCluster]:
    with running_etcd(tmp_path / "etcd", 1, tls=pki) as cluster:
        yield cluster


def _etcd_tls(pki: Path, ca: str = "ca.pem", client: str = "client") -> dict[str, str]:
    return {"ca": str(pki / ca), "cert": str(pki / f"{client}.pem"), "key": str(pki / f"{client}.key")}


async def test_members_split_the_cameras_through_three_tls_members(tmp_path: Path, pki: Path) -> None:
    """One TLS channel to three members: each member's certificate is checked for the one name
    (127.0.0.1 here), not for the channel's whole multi-address target."""
    with running_etcd(tmp_path / "etcd3", 3, tls=pki) as etcd:
        tls = _etcd_tls(pki)
        a = await Member.start(site_config(tmp_path, "rec-a", etcd.endpoints, CAMERAS, etcd_tls=tls))
        b = await Member.start(site_config(tmp_path, "rec-b", etcd.endpoints, CAMERAS, etcd_tls=tls))
        try:
            await wait_until(
                lambda: a.recording() | b.recording() == set(CAMERAS) and not a.recording() & b.recording(),
                what="the cameras split between rec-a and rec-b",
                state=lambda: (a.recording(), b.recording(), a.site.alarms, b.site.alarms),
            )
            assert etcd.site_members("test-site") == {"rec-a", "rec-b"}
            owners = etcd.site_owners("test-site")
            assert {c: o for c, (o, _) in owners.items()} == {
                **{c: "rec-a" for c in a.recording()},
                **{c: "rec-b" for c in b.recording()},
            }
            # Failover over TLS too: rec-a dies, rec-b takes its cameras.
            await a.crash()
            await wait_until(lambda: b.recording() == set(CAMERAS), what="rec-b records everything")
        finally:
            await b.stop()


@pytest.mark.parametrize(
    ("tls", "expected"),
    [
        (
            {"ca": "other-ca.pem", "client": "client"},
            "last error: the etcd members' certificate does not verify against the CA in [site] etcd_tls.ca "
            "(UNKNOWN: ipv4:127.0.0.1:",
        ),
        (
            {"ca": "ca.pem", "client": "stranger"},
            "last error: the etcd members refused this recorder's client certificate ([site] etcd_tls.cert and key;",
        ),
        (
            # The members' certificate names 127.0.0.1 and localhost only.
            {"ca": "ca.pem", "client": "client", "server_name": "etcd.elsewhere.example"},
            "last error: the etcd members' certificate does not name 'etcd.elsewhere.example' "
            "([site] etcd_tls.server_name",
        ),
    ],
    ids=["wrong-ca", "client-certificate-from-another-ca", "wrong-server-name"],
)
async def test_a_tls_mistake_is_an_alarm_naming_the_key(
    tmp_path: Path, pki: Path, tls_etcd: EtcdCluster, tls: dict[str, str], expected: str
) -> None:
    etcd_tls = _etcd_tls(pki, tls["ca"], tls["client"])
    if "server_name" in tls:
        etcd_tls["server_name"] = tls["server_name"]
    config = site_config(tmp_path, "rec-a", tls_etcd.endpoints, CAMERAS, etcd_tls=etcd_tls)
    a = await Member.start(config)
    try:
        # Under load a call may first time out before its handshake fails: the alarm's text
        # follows the last error.
        await wait_until(
            lambda: expected in a.site.alarms.get("site_quorum_lost", ""),
            what="the alarm naming the key", state=lambda: a.site.alarms, timeout=60,
        )  # fmt: skip
        assert a.site.alarms["site_quorum_lost"].startswith("etcd of site 'test-site' unreachable or without quorum")
        # It never joined: it owns nothing, so records nothing, and coordination goes on trying.
        assert a.recording() == set()
        assert tls_etcd.site_members("test-site") == set()
        assert a.task is not None and not a.task.done()
    finally:
        await a.stop()


async def test_recording_goes_on_when_the_members_certificates_change_to_another_ca(
    tmp_path: Path, pki: Path, tls_etcd: EtcdCluster
) -> None:
    """A certificate rotation gone wrong after joining: keepalives fail the TLS handshake; the
    cameras keep recording (unfenced), the alarm says why; the right certificates back: fenced again."""
    a = await Member.start(site_config(tmp_path, "rec-a", tls_etcd.endpoints, CAMERAS, etcd_tls=_etcd_tls(pki)))
    try:
        await wait_until(lambda: a.recording() == set(CAMERAS), what="rec-a records everything")
        other = tmp_path / "other-pki"
        other.mkdir()
        tls_etcd.stop()
        tls_etcd.tls = make_pki(other)  # the members now present a certificate of another CA
        tls_etcd.start_member(0)
        # The new CA has the old one's name: BoringSSL says BAD_SIGNATURE rather than "no issuer".
        await wait_until(
            lambda: "site_unfenced" in a.site.alarms
            and "does not verify against the CA in [site] etcd_tls.ca" in a.site.alarms.get("site_quorum_lost", ""),
            what="the alarms", state=lambda: a.site.alarms, timeout=60,
        )  # fmt: skip
        await asyncio.sleep(2 * config_ttl_s(a))  # well past the fencing deadline
        assert a.recording() == set(CAMERAS)  # a coordination fault never stops recording
        assert all(f.unfenced for f in a.site._fencing.values())
        tls_etcd.stop()
        tls_etcd.tls = pki
        tls_etcd.start_member(0)
        await wait_until(lambda: not a.site.alarms, timeout=30, what="alarms cleared", state=lambda: a.site.alarms)
        assert a.recording() == set(CAMERAS)
    finally:
        await a.stop()


def config_ttl_s(member: Member) -> float:
    assert member.config.site is not None
    return member.config.site.lease_ttl_ns / 1e9
