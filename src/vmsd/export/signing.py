"""The recorder's Ed25519 signing key: made once, kept private, used to sign export manifests.

Key files live in the state directory `<storage root>/keys/`:
  recorder-ed25519.pem       PKCS#8 private key, mode 0600, created with O_EXCL (never replaced)
  recorder-ed25519.pub.pem   SubjectPublicKeyInfo public key (the copy bundles carry)

The key's fingerprint is the SHA-256 (hex) of the 32-byte raw public key, so a recipient can
recompute it by hand: `openssl pkey -pubin -in recorder-public-key.pem -outform DER | tail -c 32
| sha256sum`. A signature is the raw 64-byte Ed25519 signature (what `openssl pkeyutl -verify
-rawin -sigfile` reads).

Why no passphrase: the daemon signs unattended; the key's protection is the file mode and the
hardened unit (the state directory is readable by the service user only). So the daemon refuses
a private key that is a symbolic link (whoever can replace the link chooses the key that signs
evidence), not a regular file, owned by another user, or readable by group or others.

Recipients check a bundle against the recorder's fingerprint obtained out of band: `vmsd
key-fingerprint --config FILE` prints it on the recorder (from the public key file, so it needs no
access to the private key), the daemon logs it at start (`recorder_key`), and the evidence officer
writes it on the continuity statement. Rotating the key is an
operator action (move the old files away; the next start makes a new one) and old bundles still
verify, because each carries its own public key and fingerprint.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from vmsd.errors import ErrorKind, VmsdError
from vmsd.files import fsync_dir

PRIVATE_KEY_NAME = "recorder-ed25519.pem"
PUBLIC_KEY_NAME = "recorder-ed25519.pub.pem"
_create_lock = threading.Lock()


def fingerprint(public_key: Ed25519PublicKey) -> str:
    """SHA-256 (hex) of the raw 32-byte public key."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def public_pem(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


@dataclass(frozen=True)
class RecorderKey:
    """A loaded signing key. Obtain one with `load_or_create()`."""

    private_key: Ed25519PrivateKey
    path: Path

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public_key)

    @property
    def public_pem(self) -> bytes:
        return public_pem(self.public_key)

    def sign(self, data: bytes) -> bytes:
        """The raw 64-byte Ed25519 signature of `data`."""
        return self.private_key.sign(data)


def load_or_create(keys_dir: Path) -> RecorderKey:
    """Load the recorder key from `keys_dir`, generating it (0600, fsynced) on first use.

    Blocking (file I/O). Creation uses O_EXCL, so two processes racing both end up with the one
    key that won; a key file that exists but does not parse is an error, never overwritten (it
    may be the only copy of the key that signed past exports). Raises VmsdError(FAILED_PRECONDITION)
    when the private key is a symbolic link or not a regular file, is owned by another user than
    the one running, or is readable by anyone but its owner.
    """
    keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = keys_dir / PRIVATE_KEY_NAME
    with _create_lock:
        if not path.exists() and not path.is_symlink():
            _create(keys_dir, path)
    try:
        key = serialization.load_pem_private_key(_read_private(path), password=None)
    except (ValueError, TypeError) as exc:
        raise VmsdError(ErrorKind.FAILED_PRECONDITION, f"recorder key {path} is unreadable: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise VmsdError(ErrorKind.FAILED_PRECONDITION, f"recorder key {path} is not an Ed25519 key")
    loaded = RecorderKey(key, path)
    public_path = keys_dir / PUBLIC_KEY_NAME
    if not public_path.exists() or public_path.read_bytes() != loaded.public_pem:
        _write_atomic(public_path, loaded.public_pem, 0o644)
    return loaded


def _read_private(path: Path) -> bytes:
    """The private key file's bytes, after checking what it is, who owns it and who may read it."""

    def refuse(problem: str) -> VmsdError:
        return VmsdError(ErrorKind.FAILED_PRECONDITION, f"recorder key {path} {problem}")

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise refuse(
                "is a symbolic link; the signing key is read only from a regular file (put the key file itself there)"
            ) from None
        raise refuse(f"cannot be read: {error.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        # Checked on the open file, so the checks and the read see the same file.
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise refuse("is not a regular file")
        if info.st_uid != os.geteuid():
            raise refuse(
                f"is owned by uid {info.st_uid}, not by the user vmsd runs as (uid {os.geteuid()}); "
                "chown it to that user"
            )
        mode = info.st_mode & 0o777
        if mode & 0o077:
            raise refuse(f"has mode {mode:o}; it must be readable by its owner only (chmod 600)")
        return handle.read()


def read_public_fingerprint(keys_dir: Path) -> str:
    """The fingerprint of the recorder's public key file (no access to the private key needed).

    Raises VmsdError(NOT_FOUND) when the recorder has no key yet (made at the daemon's first start).
    """
    path = keys_dir / PUBLIC_KEY_NAME
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise VmsdError(
            ErrorKind.NOT_FOUND, f"no recorder key yet ({path} is missing): vmsd makes it when it first starts"
        ) from None
    try:
        return fingerprint(load_public_pem(data))
    except ValueError as error:
        raise VmsdError(ErrorKind.FAILED_PRECONDITION, f"{path} is not an Ed25519 public key ({error})") from None


def _create(keys_dir: Path, path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    # Written under a temporary name and linked into place, so a crash never leaves a truncated
    # key under the real name (which load_or_create would refuse forever).
    tmp = keys_dir / f".{PRIVATE_KEY_NAME}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, pem)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # fails if another process got there first: theirs wins
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    fsync_dir(keys_dir)


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def load_public_pem(data: bytes) -> Ed25519PublicKey:
    """Parse a PEM public key; ValueError unless it is Ed25519."""
    key = serialization.load_pem_public_key(data)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


def signature_valid(public_key: Ed25519PublicKey, data: bytes, signature: bytes) -> bool:
    try:
        public_key.verify(signature, data)
    except InvalidSignature:
        return False
    return True
