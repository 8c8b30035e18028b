"""Drive the camera simulator (``camsim.py``) from tests and benchmarks.

``camsim.py`` needs GStreamer's Python bindings, which only the system python has, so it runs as
a subprocess under ``/usr/bin/python3``; this module is stdlib-only and imports in the venv.

Contract:

* ``CameraSimulator(mounts)`` does no I/O.  ``start()`` picks free loopback ports, launches the
  server and blocks until it prints ``READY`` (``RuntimeError`` with the server's stderr if it dies
  or does not get ready within ``ready_timeout`` seconds).  ``stop()`` terminates it (SIGTERM, then
  SIGKILL after 5 s) and waits; it is idempotent.  The object is a context manager doing both.
* The simulator owns its process; callers own the clips (see ``tests.support.clips``).
* ``command(**kw)`` sends one JSON command on the control port and returns the reply dict, raising
  ``RuntimeError`` if the reply says ``ok: false``.  The helpers (``drop``, ``stall``, ...) are thin
  wrappers; their semantics are documented in ``camsim.Simulator.handle``.

Command line (``make demo``, benchmarks)::

    python -m tests.support.simulator --clips-dir /tmp/clips --cameras 4 [--codec h264] [--port P]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import urllib.parse
from pathlib import Path
from typing import Any

from .clips import Clip, make_clip

__all__ = ["CameraSimulator", "MountSpec", "free_port", "main"]

SYSTEM_PYTHON = os.environ.get("VMSD_TEST_SYSTEM_PYTHON", "/usr/bin/python3")
CAMSIM = Path(__file__).with_name("camsim.py")


@dataclasses.dataclass(frozen=True)
class MountSpec:
    """One RTSP mount: ``rtsp://127.0.0.1:PORT/<name>`` serving ``clip`` (and ``audio_clip``'s
    audio, or ``clip.audio`` when ``audio_clip`` is None)."""

    name: str
    clip: Clip
    audio_clip: Clip | None = None
    # RTCP sender reports: "wallclock" (NTP from the wall clock), "uptime" (from the media's
    # running time, like a camera whose clock was never set) or "none".
    sender_reports: str = "wallclock"

    def argument(self) -> str:
        arg = f"{self.name}={self.clip.video},codec={self.clip.codec},fps={self.clip.fps}"
        audio = (self.audio_clip or self.clip).audio
        if audio is not None:
            arg += f",audio={audio}"
        if self.sender_reports != "wallclock":
            arg += f",sr={self.sender_reports}"
        return arg


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (bind to 0, read, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class CameraSimulator:
    """A running ``camsim.py`` subprocess serving ``mounts`` on loopback."""

    def __init__(
        self,
        mounts: list[MountSpec],
        *,
        port: int | None = None,
        control_port: int | None = None,
        ready_timeout: float = 20.0,
        digest: tuple[str, str] | None = None,
    ):
        if not mounts:
            raise ValueError("at least one mount is needed")
        names = [m.name for m in mounts]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate mount names in {names}")
        self.mounts = {m.name: m for m in mounts}
        self.port = port
        self.control_port = control_port
        self.ready_timeout = ready_timeout
        # ("user", "password"): every mount asks for Digest authentication (GStreamer's RTSPAuth).
        self.digest = digest
        self._proc: subprocess.Popen | None = None
        self._stderr_file = None
        self._lock = threading.Lock()

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> CameraSimulator:
        """Launch the server and wait for ``READY``; returns self."""
        if self._proc is not None:
            raise RuntimeError("already started")
        # Port races (free_port then bind in the child) are possible but rare; retry once.
        for attempt in range(2):
            port = self.port or free_port()
            control_port = self.control_port or free_port()
            try:
                self._launch(port, control_port)
                return self
            except RuntimeError:
                self.stop()
                if attempt == 1 or (self.port and self.control_port):
                    raise
        return self

    def _launch(self, port: int, control_port: int) -> None:
        args = [SYSTEM_PYTHON, str(CAMSIM), "--port", str(port), "--control-port", str(control_port)]
        if self.digest is not None:
            args += ["--digest", f"{self.digest[0]}:{self.digest[1]}"]
        for m in self.mounts.values():
            args += ["--mount", m.argument()]
        # stderr goes to a file, not a pipe: nobody drains it while tests run and a full pipe
        # would block the server.
        self._stderr_file = tempfile.TemporaryFile()  # noqa: SIM115 -- lives until stop()
        self._proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._stderr_file, text=True
        )
        line = self._read_ready_line()
        if not line.startswith("READY "):
            raise RuntimeError(f"camera simulator did not start (got {line!r}):\n{self.stderr()}")
        self.port = int(line.split()[1])
        self.control_port = control_port

    def _read_ready_line(self) -> str:
        box: list[str] = []
        reader = threading.Thread(target=lambda: box.append(self._proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(self.ready_timeout)
        if not box:
            raise RuntimeError(f"camera simulator not ready after {self.ready_timeout} s:\n{self.stderr()}")
        return box[0].strip()

    def stderr(self) -> str:
        """What the server wrote to stderr so far (for error messages)."""
        if self._stderr_file is None:
            return ""
        self._stderr_file.seek(0)
        return self._stderr_file.read().decode(errors="replace")

    def stop(self) -> None:
        """Terminate the server and wait for it; safe to call twice."""
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            if proc.stdout:
                proc.stdout.close()
        if self._stderr_file is not None:
            self._stderr_file.close()
            self._stderr_file = None

    def __enter__(self) -> CameraSimulator:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    # -- addresses ----------------------------------------------------------------------------

    def url(self, name: str) -> str:
        """``rtsp://127.0.0.1:PORT/name`` for a configured mount."""
        if name not in self.mounts:
            raise KeyError(name)
        return f"rtsp://127.0.0.1:{self.port}/{name}"

    def url_with_credentials(self, name: str, user: str, password: str) -> str:
        """Same with ``user:password@`` (percent-encoded); the simulator ignores credentials."""
        q = lambda s: urllib.parse.quote(s, safe="")  # noqa: E731
        return f"rtsp://{q(user)}:{q(password)}@127.0.0.1:{self.port}/{name}"

    # -- control ------------------------------------------------------------------------------

    def command(self, **kw: Any) -> dict:
        """Send one command (``cmd=...`` plus arguments); return the reply, raise on ``ok: false``."""
        if self.control_port is None:
            raise RuntimeError("simulator not started")
        with self._lock, socket.create_connection(("127.0.0.1", self.control_port), 10) as s:
            s.sendall(json.dumps(kw).encode() + b"\n")
            line = s.makefile("rb").readline()
        if not line:
            raise RuntimeError(f"simulator closed the control connection:\n{self.stderr()}")
        reply = json.loads(line)
        if not reply.get("ok"):
            raise RuntimeError(f"simulator refused {kw}: {reply.get('error')}")
        return reply

    def drop(self, name: str, seconds: float) -> dict:
        """Disconnect all clients of ``name`` and refuse it (404) for ``seconds``."""
        return self.command(cmd="drop", mount=name, seconds=seconds)

    def stall(self, name: str, seconds: float) -> dict:
        """Keep sessions open but send no media on ``name`` for ``seconds``."""
        return self.command(cmd="stall", mount=name, seconds=seconds)

    def garbage(self, name: str, count: int) -> dict:
        """Replace the next ``count`` video access units of ``name`` with random bytes."""
        return self.command(cmd="garbage", mount=name, count=count)

    def truncate(self, name: str, count: int) -> dict:
        """Cut the next ``count`` video access units of ``name`` short (keyframes too)."""
        return self.command(cmd="truncate", mount=name, count=count)

    def huge(self, name: str, count: int, size: int) -> dict:
        """Replace the next ``count`` video access units of ``name`` with ``size``-byte random slices."""
        return self.command(cmd="huge", mount=name, count=count, bytes=size)

    def switch(self, name: str, clip: Clip) -> dict:
        """From the next keyframe on, serve ``clip`` (same codec) on ``name``; PTS continue."""
        return self.command(cmd="switch", mount=name, video=str(clip.video), codec=clip.codec)

    def jump(self, name: str, seconds: float) -> dict:
        """Add ``seconds`` (may be negative) to every later timestamp of ``name``."""
        return self.command(cmd="jump", mount=name, seconds=seconds)

    def status(self) -> dict:
        """``{"mounts": {name: {"clients": n, ...}}}``."""
        return self.command(cmd="status")


def main(argv: list[str] | None = None) -> int:
    """Generate clips and serve ``--cameras`` mounts in the foreground until Ctrl-C/SIGTERM."""
    ap = argparse.ArgumentParser(
        prog="python -m tests.support.simulator", description="Run the vmsd camera simulator in the foreground."
    )
    ap.add_argument("--clips-dir", default="/tmp/vmsd-test-clips")
    ap.add_argument("--cameras", type=int, default=4)
    ap.add_argument("--codec", choices=("h264", "h265"), default="h264")
    ap.add_argument("--width", type=int, default=1920)
    ap.add_argument("--height", type=int, default=1080)
    ap.add_argument("--bitrate", default="4M")
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--audio", action="store_true")
    ap.add_argument("--port", type=int, default=None)
    ap.add_argument("--control-port", type=int, default=None)
    args = ap.parse_args(argv)
    clip = make_clip(
        args.clips_dir,
        codec=args.codec,
        width=args.width,
        height=args.height,
        bitrate=args.bitrate,
        seconds=args.seconds,
        audio=args.audio,
    )
    mounts = [MountSpec(f"cam{i + 1}", clip) for i in range(args.cameras)]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with CameraSimulator(mounts, port=args.port, control_port=args.control_port) as sim:
        print(f"camera simulator pid {sim.pid}, control port {sim.control_port}", flush=True)
        for m in mounts:
            print(sim.url(m.name), flush=True)
        try:
            while not stop.wait(1):
                if sim._proc is None or sim._proc.poll() is not None:
                    print(f"simulator exited:\n{sim.stderr()}", file=sys.stderr)
                    return 1
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
