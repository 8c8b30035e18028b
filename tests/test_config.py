"""Configuration: strict validation with errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from vmsd.config import check_environment, load_config, parse_config
from vmsd.errors import ConfigError

MINIMAL = {"recorder_id": "rec-1", "storage": {"root": "/tmp/x"}}


def _with(**changes: object) -> dict[str, object]:
    data: dict[str, object] = {"recorder_id": "rec-1", "storage": {"root": "/tmp/x"}}
    data.update(changes)
    return data


def test_defaults_are_the_contract() -> None:
    config = parse_config(MINIMAL)
    assert config.storage.segment_duration_ns == 60_000_000_000
    assert config.retention.max_age_ns == 31 * 86_400_000_000_000
    assert config.retention.check_interval_ns == 60_000_000_000
    assert config.storage.min_free.percent == 5.0
    assert config.grpc.listen == "127.0.0.1:50051"
    assert config.retention.min_age_ns == 7 * 86_400_000_000_000
    assert (config.grpc.max_concurrent_rpcs, config.grpc.max_tokenless_streams) == (256, 16)
    assert (config.grpc.max_streams_per_principal, config.grpc.max_streams_per_connection) == (32, 64)
    assert config.grpc.send_timeout_ns == 10_000_000_000
    assert config.grpc.max_connection_age_ns is None


def test_durations_and_sizes_parse_to_integers() -> None:
    config = parse_config(
        _with(
            storage={"root": "/x", "segment_duration": "500s", "min_free": "50GiB"},
            retention={"max_age": "2h", "min_age": "1h"},
        )
    )
    assert config.storage.segment_duration_ns == 500_000_000_000
    assert config.storage.min_free.size_bytes == 50 * 1024**3
    assert config.retention.max_age_ns == 7_200_000_000_000


def test_export_quota_is_a_share_or_a_size() -> None:
    assert parse_config(MINIMAL).export.max_total.percent == 10.0
    config = parse_config(_with(export={"max_total": "200GiB"}))
    assert config.export.max_total.size_bytes == 200 * 1024**3
    for data, expected in [
        (_with(export={"max_totl": "1GiB"}), "export.max_totl: unknown key"),
        (_with(export={"max_total": "lots"}), "export.max_total: invalid size"),
        (_with(export={"max_total": "120%"}), "export.max_total: percentage '120%' must be between"),
    ]:
        with pytest.raises(ConfigError) as caught:
            parse_config(data, "test.toml")
        assert expected in str(caught.value)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (_with(storage={"root": "/x", "segmnet_duration": "60s"}), "storage.segmnet_duration: unknown key"),
        (_with(colour="blue"), "colour: unknown key"),
        (_with(storage={"root": "/x", "segment_duration": "60 seconds"}), "storage.segment_duration: invalid duration"),
        (_with(storage={"root": "/x", "segment_duration": 60}), "storage.segment_duration: expected a duration"),
        (_with(retention={"max_age": "-1d"}), "retention.max_age: invalid duration"),
        (_with(storage={"root": "/x", "min_free": "lots"}), "storage.min_free: invalid size"),
        ({"storage": {"root": "/x"}}, "recorder_id: required key is missing"),
        (
            _with(cameras=[{"id": "a", "url": "rtsp://h/1"}, {"id": "a", "url": "rtsp://h/2"}]),
            "duplicate camera id 'a'",
        ),
        (_with(cameras=[{"id": "../etc", "url": "rtsp://h/1"}]), "cameras[0].id: camera id '../etc' must be"),
        (_with(cameras=[{"id": "a", "url": "http://h/1"}]), "cameras[0].url: expected an rtsp://"),
        (_with(cameras=[{"id": "a", "url": "rtsp://h/1", "transport": "sctp"}]), "cameras[0].transport"),
        (_with(auth={"tokens": [{"name": "x", "sha256": "abc", "role": "operator"}]}), "auth.tokens[0].sha256"),
        (_with(auth={"tokens": [{"name": "x", "sha256": "a" * 64, "role": "god"}]}), "auth.tokens[0].role"),
        (_with(grpc={"listen": "nowhere"}), "grpc.listen: expected HOST:PORT"),
        (_with(grpc={"send_timeout": "10ms"}), "grpc.send_timeout: must be at least 1s"),
        (_with(grpc={"max_tokenless_streams": 0}), "grpc.max_tokenless_streams: Input should be greater than"),
        (_with(grpc={"max_streams_per_connection": 100}), "grpc.max_streams_per_connection: Input should be less"),
        (
            _with(grpc={"max_concurrent_rpcs": 40, "max_tokenless_streams": 16}),
            "max_tokenless_streams (16) + max_streams_per_principal (32) must be less than max_concurrent_rpcs (40)",
        ),
        (_with(grpc={"max_connection_age_grace": "1m"}), "max_connection_age_grace needs max_connection_age"),
        (_with(web={"listen": "8080"}), "web.listen: expected HOST:PORT"),
        (_with(web={"listen": "127.0.0.1:8080", "colour": "blue"}), "web.colour: unknown key"),
        (_with(web={"session_idle": "30"}), "web.session_idle: invalid duration '30'"),
        (_with(web={"masked_roles": ["viewer", "guest"]}), "web.masked_roles[1]"),
        (_with(web={"session_idle": "13h"}), "session_idle (13h) must not exceed session_max (12h)"),
        (_with(web={"listen": "0.0.0.0:8080"}), "listen '0.0.0.0:8080' is not a loopback address: configure [web] tls"),
        (_with(web={"tls": {"cert": "/c.pem"}}), "web.tls.key: required key is missing"),
        (_with(live={"max_relays_per_principal": 0}), "live.max_relays_per_principal"),
        (_with(live={"max_relays_per_principal": 64, "max_relays": 32}), "(64) must not exceed max_relays (32)"),
    ],
)
def test_bad_config_names_the_key(data: dict[str, object], expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(data, "test.toml")
    assert expected in str(caught.value)


def test_camera_url_credentials_never_in_errors() -> None:
    data = _with(cameras=[{"id": "a", "url": "rtsp://admin:s3cret-pw@10.0.0.5/x", "transport": "bogus"}])
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    assert "s3cret-pw" not in str(caught.value)


def test_load_config_reports_toml_syntax_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("recorder_id = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="cannot read configuration"):
        load_config(tmp_path / "absent.toml")


def test_relative_root_is_relative_to_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "conf" / "vmsd.toml"
    path.parent.mkdir()
    path.write_text('recorder_id = "r"\n[storage]\nroot = "../data"\n')
    assert load_config(path).storage.root == (tmp_path / "data").resolve()


def test_unwritable_storage_root_is_reported(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    config = parse_config({"recorder_id": "r", "storage": {"root": str(blocker / "sub")}})
    assert any("storage.root" in p for p in check_environment(config))


def test_web_is_off_by_default_and_its_defaults_are_the_contract() -> None:
    web = parse_config(MINIMAL).web
    assert web.listen is None and web.address is None and web.tls is None
    assert (web.session_idle_ns, web.session_max_ns) == (30 * 60 * 10**9, 12 * 3600 * 10**9)
    assert web.masked_roles == ["viewer", "police-link"]
    web = parse_config(_with(web={"listen": "[::1]:8443", "session_idle": "5m", "masked_roles": []})).web
    assert web.address == ("::1", 8443) and web.session_idle_ns == 300 * 10**9 and web.masked_roles == []
    # Off the loopback: with TLS (the same files as gRPC), or plaintext asked for explicitly.
    tls = {"cert": "/etc/vmsd/tls/server.pem", "key": "/etc/vmsd/tls/server.key"}
    assert parse_config(_with(web={"listen": "0.0.0.0:8443", "tls": tls})).web.tls is not None
    assert parse_config(_with(web={"listen": "0.0.0.0:8080", "insecure": True})).web.insecure


def test_unreadable_web_tls_files_are_reported(tmp_path: Path) -> None:
    tls = {"cert": str(tmp_path / "missing.pem"), "key": str(tmp_path / "missing.key")}
    config = parse_config(_with(web={"listen": "127.0.0.1:8443", "tls": tls}))
    problems = check_environment(config)
    assert any(p.startswith("web.tls.cert: ") for p in problems), problems
    assert any(p.startswith("web.tls.key: ") for p in problems), problems


def test_sample_configs_are_valid() -> None:
    root = Path(__file__).resolve().parents[1] / "config"
    for path in sorted(root.glob("*.toml")):
        load_config(path)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            _with(retention={"max_age": "31m"}),
            "retention.max_age: 31m is shorter than this recorder's minimum retention of 7d ([retention] min_age)",
        ),
        (
            _with(
                retention={"max_age": "31d", "min_age": "31d"},
                cameras=[
                    {"id": "a", "url": "rtsp://h/1"},
                    {"id": "b", "url": "rtsp://h/2", "retention_max_age": "30d"},
                ],
            ),
            "cameras[1].retention_max_age: 30d is shorter than this recorder's minimum retention of 31d",
        ),
    ],
)
def test_retention_below_the_floor_names_the_key(data: dict[str, object], expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(data, "test.toml")
    assert expected in str(caught.value)
    assert "(top level)" not in str(caught.value)


def test_the_floor_can_be_lowered_in_the_file() -> None:
    config = parse_config(_with(retention={"max_age": "30s", "min_age": "10s"}))
    assert (config.retention.max_age_ns, config.retention.min_age_ns) == (30_000_000_000, 10_000_000_000)


@pytest.mark.parametrize(
    "data",
    [
        _with(recorder_id="rec-1\n"),
        _with(cameras=[{"id": "cam-1\n", "url": "rtsp://h/1"}]),
        _with(health={"times": ["03:00\n"]}),
    ],
    ids=["recorder_id", "camera id", "health time"],
)
def test_a_trailing_newline_is_not_part_of_a_valid_value(data: dict[str, object]) -> None:
    # `re.match` with `$` accepts "x\n": such an id would become a directory name with a newline.
    with pytest.raises(ConfigError):
        parse_config(data)


@pytest.mark.parametrize("host", ["127.evil.example", "127.0.0.1.nip.io", "127.example", "localhost.evil.example"])
def test_a_hostname_that_looks_like_loopback_needs_tls(host: str) -> None:
    with pytest.raises(ConfigError, match="not a loopback address"):
        parse_config(_with(grpc={"listen": f"{host}:50051"}))


@pytest.mark.parametrize("listen", ["127.0.0.1:50051", "127.1.2.3:1", "[::1]:50051", "localhost:50051"])
def test_loopback_addresses_need_no_tls(listen: str) -> None:
    assert parse_config(_with(grpc={"listen": listen})).grpc.listen == listen


SITE = {"name": "dover", "etcd": ["127.0.0.1:2379"]}


def test_no_site_is_a_single_recorder_and_site_defaults_are_the_contract() -> None:
    assert parse_config(MINIMAL).site is None
    config = parse_config(_with(site=SITE, grpc={"listen": "127.0.0.1:50099"}))
    assert config.site is not None
    assert config.site.lease_ttl_ns == 5_000_000_000
    assert (config.site.failback, config.site.capacity, config.site.etcd_tls) == ("manual", 64, None)
    assert config.site_advertise == "127.0.0.1:50099"  # advertise defaults to [grpc] listen
    advertised = parse_config(_with(site={**SITE, "advertise": "10.0.0.2:50051", "insecure": True}))
    assert advertised.site_advertise == "10.0.0.2:50051"
    assert (config.site.peer_tls, config.site.insecure) == (None, False)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (_with(site={"etcd": ["127.0.0.1:2379"]}), "site.name: required key is missing"),
        (_with(site={"name": "dover", "etcd": []}), "site.etcd: List should have at least 1 item"),
        (_with(site={**SITE, "etcd": ["etcd-host"]}), "site.etcd: expected etcd members as HOST:PORT"),
        (_with(site={**SITE, "etcd": ["h:1", "h:1"]}), "site.etcd: lists an etcd member twice"),
        (_with(site={**SITE, "lease_ttl": "1s"}), "site.lease_ttl: must be a whole number of seconds"),
        (_with(site={**SITE, "lease_ttl": "2500ms"}), "site.lease_ttl: must be a whole number of seconds"),
        (_with(site={**SITE, "failback": "sometimes"}), "site.failback"),
        (_with(site={**SITE, "advertise": "anywhere"}), "site.advertise: expected HOST:PORT"),
        (_with(site={**SITE, "etcd_tls": {"ca": "/ca.pem", "cert": "/c.pem"}}), "cert and key go together"),
        (_with(site={**SITE, "quorum": 2}), "site.quorum: unknown key"),
        (
            _with(cameras=[{"id": "a", "url": "rtsp://h/1", "recorders": ["rec-a"]}]),
            "cameras[0].recorders: needs a [site]",
        ),
        (
            _with(site=SITE, cameras=[{"id": "a", "url": "rtsp://h/1", "recorders": ["rec-a", "rec-a"]}]),
            "cameras[0].recorders: names a recorder twice",
        ),
        (
            _with(site=SITE, cameras=[{"id": "a", "url": "rtsp://h/1", "recorders": ["../x"]}]),
            "cameras[0].recorders: recorder id '../x' must be",
        ),
    ],
)
def test_bad_site_config_names_the_key(data: dict[str, object], expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(data, "test.toml")
    assert expected in str(caught.value)


GRPC_TLS = {"listen": "10.0.0.2:50051", "tls": {"cert": "/etc/vmsd/rec.pem", "key": "/etc/vmsd/rec.key"}}
PEER_TLS = {"ca": "/etc/vmsd/site-ca.pem"}


@pytest.mark.parametrize(
    ("grpc", "site", "expected"),
    [
        (
            {"listen": "127.0.0.1:50051"},
            {**SITE, "advertise": "10.0.0.2:50051"},
            "site.advertise: '10.0.0.2:50051' is not a loopback address: peers would call this recorder in "
            "plaintext, site token included; configure [grpc] tls and [site] peer_tls, or set [site] insecure = true",
        ),
        (
            {"listen": "0.0.0.0:50051", "insecure": True},  # plaintext clients accepted, but not plaintext peers
            SITE,
            "grpc.listen (peers call it: no [site] advertise): '0.0.0.0:50051' is not a loopback address",
        ),
        ({"listen": "127.0.0.1:50051"}, {**SITE, "peer_tls": PEER_TLS}, "site.peer_tls: needs [grpc] tls"),
        (GRPC_TLS, SITE, "site.peer_tls: required with [grpc] tls: peers reach this recorder over TLS only"),
        (GRPC_TLS, {**SITE, "peer_tls": {"ca": "/ca.pem", "key": "/k.pem"}}, "cert and key go together"),
        (GRPC_TLS, {**SITE, "peer_tls": {}}, "site.peer_tls.ca: required key is missing"),
        (
            GRPC_TLS,
            {"name": "dover", "etcd": ["10.0.0.1:2379", "10.0.0.2:2379"], "peer_tls": PEER_TLS, "etcd_tls": PEER_TLS},
            "site.etcd_tls.server_name: required with etcd members on several hosts (10.0.0.1, 10.0.0.2)",
        ),
    ],
    ids=["advertise-off-loopback", "listen-off-loopback", "peer-tls-without-grpc-tls", "grpc-tls-without-peer-tls",
         "half-a-client-certificate", "no-ca", "etcd-hosts-without-server-name"],
)  # fmt: skip
def test_peers_off_loopback_need_tls_or_an_explicit_insecure(
    grpc: dict[str, object], site: dict[str, object], expected: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(_with(grpc=grpc, site=site), "test.toml")
    assert expected in caught.value.message


def test_site_tls_settings_that_are_accepted() -> None:
    mtls = parse_config(_with(grpc=GRPC_TLS, site={**SITE, "peer_tls": PEER_TLS}))
    assert mtls.site is not None and mtls.site.peer_tls is not None
    assert (mtls.site.peer_tls.ca, mtls.site.peer_tls.cert) == (Path("/etc/vmsd/site-ca.pem"), None)
    plaintext = parse_config(_with(grpc={"listen": "0.0.0.0:50051", "insecure": True}, site={**SITE, "insecure": True}))
    assert plaintext.site is not None and plaintext.site.insecure
    # etcd over TLS: the name checked in the members' certificates.
    one_host = parse_config(_with(site={**SITE, "etcd": ["10.0.0.1:2379", "10.0.0.1:22379"], "etcd_tls": PEER_TLS}))
    assert one_host.site is not None and one_host.site.etcd_server_name == "10.0.0.1"
    named = {"ca": "/ca.pem", "server_name": "etcd.dover.internal"}
    several = parse_config(_with(site={**SITE, "etcd": ["10.0.0.1:2379", "10.0.0.2:2379"], "etcd_tls": named}))
    assert several.site is not None and several.site.etcd_server_name == "etcd.dover.internal"
    assert parse_config(_with(site=SITE)).site.etcd_server_name is None  # type: ignore[union-attr]


def test_unreadable_site_files_are_reported(tmp_path: Path) -> None:
    site = {
        **SITE,
        "token_file": str(tmp_path / "no.token"),
        "etcd_tls": {"ca": str(tmp_path / "no-ca.pem")},
        "peer_tls": {"ca": str(tmp_path / "no-site-ca.pem"), "cert": str(tmp_path / "c.pem"), "key": "/k.pem"},
    }
    grpc = {"tls": {"cert": str(tmp_path / "rec.pem"), "key": str(tmp_path / "rec.key")}}
    problems = check_environment(parse_config(_with(storage={"root": str(tmp_path)}, site=site, grpc=grpc)))
    assert any(p.startswith("site.token_file: ") for p in problems), problems
    assert any(p.startswith("site.etcd_tls.ca: ") for p in problems), problems
    for key in ("ca", "cert", "key"):
        assert any(p.startswith(f"site.peer_tls.{key}: ") for p in problems), problems


def test_no_user_token_may_have_the_site_role() -> None:
    """Role `site` is the site token's alone (a user with it could pose as a peer recorder)."""
    data = _with(auth={"tokens": [{"name": "officer-3", "sha256": "a" * 64, "role": "site"}]})
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    assert "auth.tokens[0].role" in caught.value.message
    assert "role 'site' belongs to the site's recorders" in caught.value.message
