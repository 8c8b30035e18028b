"""`vmsd check-config` and `vmsd token create`, run as an operator would (a subprocess), and the
warning `vmsd run` logs for a well-known token."""

from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path

import pytest

from tests.support.daemon import DaemonProcess, run_vmsd, write_config
from vmsd.config import load_config
from vmsd.services.access import ROLE_PERMISSIONS
from vmsd.services.authn import Authenticator
from vmsd.storage.catalogue import SCHEMA_VERSION

CONFIG = Path(__file__).resolve().parents[2] / "config"
DEMO_ADMIN_SHA256 = hashlib.sha256(b"demo-admin-token").hexdigest()


def _check(path: Path, *flags: str) -> tuple[int, str, str]:
    done = run_vmsd("check-config", "--config", str(path), *flags)
    return done.returncode, done.stdout, done.stderr


def test_the_example_config_ships_no_usable_token() -> None:
    example = CONFIG / "vmsd.example.toml"
    assert load_config(example).auth.tokens == []
    assert DEMO_ADMIN_SHA256 not in example.read_text()
    code, out, err = _check(example, "--strict")
    assert (code, err) == (0, ""), err
    assert "tokens            0" in out


def test_check_config_warns_about_the_demo_tokens_by_name() -> None:
    code, out, err = _check(CONFIG / "demo.toml")
    assert code == 0, err  # valid: `make demo` runs on it
    assert "2 warning(s)" in out
    warnings = [line for line in err.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 2, err
    assert "auth.tokens[0] (name 'demo-admin', role admin)" in warnings[0]
    assert "auth.tokens[1] (name 'demo-viewer', role viewer)" in warnings[1]
    assert "demo-admin-token" not in err + out  # the token itself is never printed
    code, _, err = _check(CONFIG / "demo.toml", "--strict")
    assert code == 1
    assert "refused with --strict" in err


def test_run_logs_a_warning_naming_a_published_token_but_not_the_token(tmp_path: Path) -> None:
    extra = "\n".join(
        [
            "[[auth.tokens]]",
            'name = "front-desk"',
            f'sha256 = "{DEMO_ADMIN_SHA256}"',
            'role = "admin"',
        ]
    )
    config = write_config(tmp_path / "vmsd.toml", tmp_path / "root", {}, extra=extra)
    daemon = DaemonProcess(config, tmp_path / "vmsd.log").start()
    try:
        daemon.wait_for_log("daemon_started")
    finally:
        daemon.terminate()
    lines = [line for line in daemon.log().splitlines() if "published_token" in line]
    assert len(lines) == 1, daemon.log()
    assert '"token_name": "front-desk"' in lines[0] and '"level": "warning"' in lines[0]
    assert "demo-admin-token" not in daemon.log()


def test_token_create_prints_the_token_once_and_a_stanza_with_its_digest(tmp_path: Path) -> None:
    done = run_vmsd("token", "create", "--name", "control-room-2", "--role", "operator", "--camera", "market-*")
    assert done.returncode == 0, done.stderr
    token, blank, *stanza_lines = done.stdout.splitlines()
    assert blank == ""
    assert len(token) >= 43  # secrets.token_urlsafe(32): 256 bits
    stanza = "\n".join(stanza_lines)
    assert token not in stanza and token not in done.stderr
    (entry,) = tomllib.loads(stanza)["auth"]["tokens"]
    assert entry == {
        "name": "control-room-2",
        "sha256": hashlib.sha256(token.encode()).hexdigest(),
        "role": "operator",
        "cameras": ["market-*"],
    }
    # Pasted into a configuration, it is valid, draws no warning, and the token authenticates.
    config = write_config(tmp_path / "vmsd.toml", tmp_path / "root", {}, extra=stanza)
    code, _, err = _check(config, "--strict")
    assert (code, err) == (0, ""), err
    principal = Authenticator(load_config(config).auth.tokens).authenticate(f"Bearer {token}")
    assert (principal.name, principal.role, principal.camera_globs) == ("control-room-2", "operator", ("market-*",))
    again = run_vmsd("token", "create", "--name", "control-room-3", "--role", "viewer")
    assert again.stdout.splitlines()[0] != token
    assert tomllib.loads("\n".join(again.stdout.splitlines()[2:]))["auth"]["tokens"][0]["cameras"] == ["*"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--name", "x", "--role", "god"], "invalid choice: 'god'"),
        (["--name", "", "--role", "viewer"], "--name must be 1 to 128 characters"),
        (["--name", "x", "--role", "viewer", "--camera", ""], "--camera must name a camera id or glob"),
    ],
)
def test_token_create_refuses_bad_arguments(args: list[str], expected: str) -> None:
    done = run_vmsd("token", "create", *args)
    assert done.returncode == 2
    assert expected in done.stderr
    assert done.stdout == ""


def test_token_create_offers_exactly_the_roles_the_auth_code_knows() -> None:
    done = run_vmsd("token", "create", "--help")
    for role in ROLE_PERMISSIONS:
        assert role in done.stdout


def test_migrate_upgrades_the_catalogue_after_a_backup_copy(tmp_path: Path) -> None:
    """`vmsd migrate` by hand: what ran and where the copy is; a second run has nothing to do."""
    import sqlite3

    root = tmp_path / "root"
    root.mkdir()
    config = write_config(tmp_path / "vmsd.toml", root, {})
    schemas = Path(__file__).resolve().parents[1] / "storage" / "schemas"
    conn = sqlite3.connect(root / "catalogue.db")
    conn.executescript((schemas / "catalogue-v1-d514f4f.sql").read_text())
    conn.execute("INSERT INTO meta(key, value) VALUES ('schema_version', '1')")
    conn.commit()
    conn.close()
    done = run_vmsd("migrate", "--config", str(config))
    assert done.returncode == 0, done.stderr
    assert "ran: to version 2: segment ids never reused" in done.stdout
    copies = list((root / "backups").glob("catalogue-v1-*.db"))
    assert len(copies) == 1 and f"backup copy: {copies[0]}" in done.stdout
    assert f"{root / 'audit.db'}: none yet" in done.stdout
    again = run_vmsd("migrate", "--config", str(config))
    assert again.returncode == 0 and f"schema version {SCHEMA_VERSION}, this vmsd uses {SCHEMA_VERSION}" in again.stdout
    assert "ran:" not in again.stdout and len(list((root / "backups").iterdir())) == 1
