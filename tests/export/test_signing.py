"""The recorder's signing key: generated once (0600), reused, never silently replaced."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from tests.export.conftest import Env, close_env, open_env
from vmsd.errors import ErrorKind, VmsdError
from vmsd.export.signing import PRIVATE_KEY_NAME, load_or_create, signature_valid


def test_key_generated_once_with_mode_0600_and_reused(env: Env) -> None:
    keys = env.root / "keys"
    path = keys / PRIVATE_KEY_NAME
    assert path.stat().st_mode & 0o777 == 0o600
    assert keys.stat().st_mode & 0o777 == 0o700
    first = env.exporter.key
    before = path.read_bytes()
    close_env(env)
    reopened = open_env(env.root)  # a restart
    try:
        assert reopened.exporter.key.fingerprint == first.fingerprint
        assert path.read_bytes() == before
        raw = first.public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        assert first.fingerprint == hashlib.sha256(raw).hexdigest()
        assert signature_valid(first.public_key, b"data", reopened.exporter.key.sign(b"data"))
        assert [p.name for p in keys.iterdir() if p.name.startswith(".")] == []  # no temp files left
    finally:
        close_env(reopened)
        env.storage.open()  # the fixture closes it again
        env.audit.open()


def test_readable_key_is_refused(tmp_path: Path) -> None:
    load_or_create(tmp_path / "keys")
    os.chmod(tmp_path / "keys" / PRIVATE_KEY_NAME, 0o644)
    with pytest.raises(VmsdError) as caught:
        load_or_create(tmp_path / "keys")
    assert caught.value.kind is ErrorKind.FAILED_PRECONDITION and "chmod 600" in caught.value.message


def test_corrupt_key_is_never_overwritten(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.mkdir(mode=0o700)
    path = keys / PRIVATE_KEY_NAME
    path.write_bytes(b"garbage")
    os.chmod(path, 0o600)
    with pytest.raises(VmsdError) as caught:
        load_or_create(keys)
    assert caught.value.kind is ErrorKind.FAILED_PRECONDITION
    assert path.read_bytes() == b"garbage"


def test_symlinked_key_is_refused(tmp_path: Path) -> None:
    # A key file elsewhere (0600, ours) reached through a link: the daemon must not follow it —
    # whoever can replace the link chooses the key that signs evidence.
    load_or_create(tmp_path / "elsewhere")
    keys = tmp_path / "keys"
    keys.mkdir(mode=0o700)
    (keys / PRIVATE_KEY_NAME).symlink_to(tmp_path / "elsewhere" / PRIVATE_KEY_NAME)
    with pytest.raises(VmsdError) as caught:
        load_or_create(keys)
    assert caught.value.kind is ErrorKind.FAILED_PRECONDITION
    assert str(keys / PRIVATE_KEY_NAME) in caught.value.message and "symbolic link" in caught.value.message


def test_key_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to give a file to another user (CI runs as root)")
    load_or_create(tmp_path / "keys")
    path = tmp_path / "keys" / PRIVATE_KEY_NAME
    os.chown(path, 65534, 65534)  # nobody: still mode 0600
    with pytest.raises(VmsdError) as caught:
        load_or_create(tmp_path / "keys")
    assert caught.value.kind is ErrorKind.FAILED_PRECONDITION
    assert str(path) in caught.value.message and "owned by uid 65534" in caught.value.message


def test_group_readable_key_is_refused(tmp_path: Path) -> None:
    load_or_create(tmp_path / "keys")
    path = tmp_path / "keys" / PRIVATE_KEY_NAME
    os.chmod(path, 0o640)
    with pytest.raises(VmsdError) as caught:
        load_or_create(tmp_path / "keys")
    assert str(path) in caught.value.message and "chmod 600" in caught.value.message


def test_vmsd_key_fingerprint_prints_the_recorders_fingerprint(tmp_path: Path) -> None:
    from tests.support.daemon import run_vmsd, write_config

    root = tmp_path / "root"
    config = write_config(tmp_path / "vmsd.toml", root, {})
    missing = run_vmsd("key-fingerprint", "--config", str(config))
    assert missing.returncode == 1 and "no recorder key yet" in missing.stderr
    key = load_or_create(root / "keys")
    shown = run_vmsd("key-fingerprint", "--config", str(config))
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.split()[0] == key.fingerprint
