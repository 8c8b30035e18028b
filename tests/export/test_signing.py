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
