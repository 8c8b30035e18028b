"""Real etcd members (Debian's /usr/bin/etcd) on loopback ports, data in a temporary directory.

`EtcdCluster(tmp_path, members=3).start()` starts a static cluster (one process per member) and
waits until it answers; `stop(i)` / `kill(i)` / `start_member(i)` take members down and up again
(quorum loss is two of three down). `endpoints` are the client addresses for `[site] etcd`.
With `tls=` a PKI directory (tests/support/pki.py `make_pki`), the members serve clients over
TLS only (https client URLs, their certificate server.pem) and require a client certificate
from ca.pem (`--client-cert-auth`); `ctl` then presents client.pem. Peer traffic between the
members stays plaintext on loopback. Used by tests/site/ and tests/reliability/test_site.py.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.simulator import free_port

ETCD = shutil.which("etcd") or "/usr/bin/etcd"
ETCDCTL = shutil.which("etcdctl") or "/usr/bin/etcdctl"


@dataclass
class EtcdMember:
    name: str
    client_port: int
    peer_port: int
    data_dir: Path
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.client_port}"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


@contextlib.contextmanager
def running_etcd(root: Path, members: int, *, tls: Path | None = None) -> Iterator[EtcdCluster]:
    """`members` etcd members under `root`, stopped when the block ends (the tests' fixtures)."""
    cluster = EtcdCluster(root, members, tls=tls).start()
    try:
        yield cluster
    finally:
        cluster.stop()


@dataclass
class EtcdCluster:
    root: Path
    members_count: int = 1
    members: list[EtcdMember] = field(default_factory=list)
    # A PKI directory (tests/support/pki.py): clients over TLS with client certificates.
    tls: Path | None = None

    def __post_init__(self) -> None:
        for i in range(self.members_count):
            name = f"etcd{i}"
            self.members.append(
                EtcdMember(name, free_port(), free_port(), self.root / f"{name}.data", self.root / f"{name}.log")
            )

    @property
    def endpoints(self) -> list[str]:
        return [m.endpoint for m in self.members]

    def start(self, timeout: float = 30) -> EtcdCluster:
        self.root.mkdir(parents=True, exist_ok=True)
        for i in range(len(self.members)):
            self.start_member(i, wait=False)
        self.wait_healthy(timeout)
        return self

    def start_member(self, index: int, *, wait: bool = True) -> None:
        member = self.members[index]
        initial = ",".join(f"{m.name}=http://127.0.0.1:{m.peer_port}" for m in self.members)
        state = "existing" if member.data_dir.exists() else "new"
        log = open(member.log_path, "ab")  # noqa: SIM115 - owned by the child process
        client_url = f"{self._scheme}://{member.endpoint}"
        # Loopback: elections in well under a second (defaults: 100 ms beats, 1 s election).
        args = [
            ETCD,
            *("--name", member.name, "--data-dir", str(member.data_dir)),
            *("--listen-client-urls", client_url, "--advertise-client-urls", client_url),
            *("--listen-peer-urls", f"http://127.0.0.1:{member.peer_port}"),
            *("--initial-advertise-peer-urls", f"http://127.0.0.1:{member.peer_port}"),
            *("--initial-cluster", initial, "--initial-cluster-state", state, "--initial-cluster-token", "vmsd-test"),
            *("--heartbeat-interval", "100", "--election-timeout", "1000"),
        ]
        if self.tls is not None:
            args += [
                *("--cert-file", str(self.tls / "server.pem"), "--key-file", str(self.tls / "server.key")),
                *("--trusted-ca-file", str(self.tls / "ca.pem"), "--client-cert-auth"),
            ]
        member.proc = subprocess.Popen(
            args,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        if wait:
            self.wait_healthy()

    @property
    def _scheme(self) -> str:
        return "http" if self.tls is None else "https"

    def _etcdctl(self, members: list[EtcdMember]) -> list[str]:
        """etcdctl's command line up to its arguments, for `members` (with client.pem over TLS)."""
        command = [ETCDCTL, "--endpoints", ",".join(f"{self._scheme}://{m.endpoint}" for m in members)]
        if self.tls is not None:
            command += [f"--cacert={self.tls / 'ca.pem'}", f"--cert={self.tls / 'client.pem'}"]
            command += [f"--key={self.tls / 'client.key'}"]
        return command

    def ctl(self, *args: str, timeout: float = 10) -> subprocess.CompletedProcess[str]:
        """etcdctl (API v3) against the live members."""
        live = [m for m in self.members if m.alive()]
        return subprocess.run(
            [*self._etcdctl(live), "--command-timeout=3s", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "ETCDCTL_API": "3"},
        )

    def site_owners(self, site: str) -> dict[str, tuple[str, int]]:
        """camera → (owner recorder_id, epoch) under the site's owner keys (docs/design/site.md)."""
        out = self.ctl("get", "--prefix", f"/vmsd/{site}/owners/", "-w", "json")
        if out.returncode != 0:
            raise AssertionError(f"etcdctl get failed: {out.stderr}")
        found = {}
        for kv in json.loads(out.stdout).get("kvs", []):
            camera = base64.b64decode(kv["key"]).decode().rsplit("/", 1)[-1]
            owner = json.loads(base64.b64decode(kv["value"]))["recorder_id"]
            found[camera] = (owner, int(kv["create_revision"]))
        return found

    def site_members(self, site: str) -> set[str]:
        """The recorder ids with a live member key."""
        out = self.ctl("get", "--prefix", f"/vmsd/{site}/members/", "--keys-only")
        return {line.rsplit("/", 1)[-1] for line in out.stdout.split() if line}

    def site_moves(self, site: str) -> set[str]:
        """Cameras with a move request pending."""
        out = self.ctl("get", "--prefix", f"/vmsd/{site}/moves/", "--keys-only")
        return {line.rsplit("/", 1)[-1] for line in out.stdout.split() if line}

    def wait_healthy(self, timeout: float = 30) -> None:
        """Until a write through the live members succeeds (a leader exists and quorum holds)."""
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            for member in self.members:
                if member.proc is not None and not member.alive():
                    raise AssertionError(f"etcd member {member.name} exited:\n{member.log_path.read_text()[-3000:]}")
            result = self.ctl("put", "/vmsd-test/health", "ok")
            if result.returncode == 0:
                return
            last = result.stderr
            time.sleep(0.2)
        raise AssertionError(f"etcd not healthy after {timeout}s: {last}")

    def leader(self) -> int:
        """The index of the current leader."""
        for index, member in enumerate(self.members):
            if not member.alive():
                continue
            out = subprocess.run(
                [*self._etcdctl([member]), "endpoint", "status", "-w", "fields"],
                capture_output=True,
                text=True,
                timeout=10,
                env={**os.environ, "ETCDCTL_API": "3"},
            ).stdout
            fields = dict(line.split(" : ", 1) for line in out.splitlines() if " : " in line)
            if fields.get('"MemberID"') == fields.get('"Leader"') and '"Leader"' in fields:
                return index
        raise AssertionError("no etcd leader")

    def kill(self, index: int) -> None:
        member = self.members[index]
        if member.alive():
            assert member.proc is not None
            member.proc.kill()
            member.proc.wait()
        member.proc = None  # down on purpose (wait_healthy only fails on members that died by themselves)

    def stop(self) -> None:
        for member in self.members:
            if member.alive():
                assert member.proc is not None
                member.proc.send_signal(signal.SIGTERM)
        for member in self.members:
            if member.proc is not None:
                try:
                    member.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    member.proc.kill()
                    member.proc.wait()
