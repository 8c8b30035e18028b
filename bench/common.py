"""Shared plumbing of the benchmark scenarios: /proc sampling, the daemon and ffmpeg processes,
the benchmark stream, percentiles.

Contract: nothing here measures anything by itself; the scenario modules decide what a window
is.  Every helper that starts a process has a matching stop helper, and the scenarios call the
stop helper in a ``finally``.  Standard library only (plus ``tests.support``), so it imports both
in the project venv and in pytest.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.support.clips import Clip, make_clip  # noqa: E402
from tests.support.simulator import CameraSimulator, free_port  # noqa: E402

CLIPS_DIR = "/tmp/vmsd-bench-clips"
VENV_PYTHON = REPO / ".venv" / "bin" / "python"
SYSTEM_PYTHON = os.environ.get("VMSD_TEST_SYSTEM_PYTHON", "/usr/bin/python3")
FFMPEG = os.environ.get("VMSD_BENCH_FFMPEG", "/usr/bin/ffmpeg")
FFPROBE = os.environ.get("VMSD_BENCH_FFPROBE", "/usr/bin/ffprobe")
CLK_TCK = os.sysconf("SC_CLK_TCK")
NS_PER_S = 1_000_000_000
NS_PER_MS = 1_000_000


@dataclasses.dataclass(frozen=True)
class Stream:
    """What every simulated camera sends.  The full benchmark uses the issue's 1080p25 4 Mbit/s
    H.264 with a 2 s GOP; the smoke run a small picture so that encoding the clip is quick."""

    width: int = 1920
    height: int = 1080
    fps: int = 25
    gop_s: int = 2
    bitrate: str = "4M"
    clip_seconds: int = 30

    def clip(self) -> Clip:
        return make_clip(
            CLIPS_DIR,
            codec="h264",
            width=self.width,
            height=self.height,
            fps=self.fps,
            gop_s=self.gop_s,
            seconds=self.clip_seconds,
            bitrate=self.bitrate,
        )

    def describe(self) -> str:
        return f"{self.height}p{self.fps} H.264 {self.bitrate}bit/s, GOP {self.gop_s} s, RTSP over TCP"


SMOKE_STREAM = Stream(width=640, height=360, bitrate="1M", clip_seconds=10)


# -- /proc sampling -------------------------------------------------------------------------------


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (field 3 onwards), or None if gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return raw[raw.rindex(")") + 2 :].split()


def descendants(pid: int) -> list[int]:
    """Live descendants of ``pid`` (one scan of /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields is not None:
                children.setdefault(int(fields[1]), []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        kids = children.get(todo.pop(), [])
        out += kids
        todo += kids
    return out


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user+system, all threads) used so far by ``pid``, its reaped children and its
    live descendants.  Raises RuntimeError if ``pid`` itself is gone."""
    total = 0
    for i, p in enumerate([pid, *descendants(pid)]):
        fields = _stat_fields(p)
        if fields is None:
            if i == 0:
                raise RuntimeError(f"process {pid} is gone")
            continue
        # stat fields 14..17 (utime stime cutime cstime) are indices 11..14 here.
        total += sum(int(x) for x in fields[11:15])
    return total / CLK_TCK


def memory_kib(pid: int, pss: bool = True) -> dict[str, int]:
    """VmRSS, VmHWM (peak RSS) and (unless not ``pss``: smaps_rollup walks every mapping) Pss of
    ``pid`` in KiB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    if not pss:
        return out
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                out["Pss"] = int(line.split()[1])
    except OSError:
        pass
    return out


def mib(kib: float) -> float:
    return round(kib / 1024, 1)


def percentile(values: list[float] | list[int], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..1) of a non-empty list."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def ratio(ours: float | None, theirs: float | None, digits: int = 3) -> float | None:
    """ours / theirs, or None when either is missing or the peer figure is zero."""
    if ours is None or theirs is None or theirs == 0:
        return None
    return round(ours / theirs, digits)


# -- vmsd -----------------------------------------------------------------------------------------


def write_vmsd_config(
    path: Path,
    root: Path,
    urls: dict[str, str],
    *,
    segment_s: int = 60,
    grpc_port: int | None = None,
    extra: str = "",
    source: str = "",
) -> Path:
    """A daemon config recording ``urls`` (camera id -> RTSP URL) into ``root``; ``source``: every
    camera's RTSP source ("ffmpeg" / "native"; the daemon's default when empty)."""
    lines = [
        'recorder_id = "bench"',
        "[storage]",
        f'root = "{root}"',
        f'segment_duration = "{segment_s}s"',
        'min_free = "1MiB"',
        "[grpc]",
        f'listen = "127.0.0.1:{grpc_port or free_port()}"',
        extra,
    ]
    for cam, url in urls.items():
        lines += ["[[cameras]]", f'id = "{cam}"', f'url = "{url}"']
        if source:
            lines.append(f'source = "{source}"')
    path.write_text("\n".join(lines) + "\n")
    return path


def start_vmsd(config: Path, log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """``vmsd run --config FILE --log-json`` with its output appended to ``log`` (``env``: extra
    environment, e.g. systemd's NOTIFY_SOCKET)."""
    with open(log, "ab") as f:
        return subprocess.Popen(
            [str(VENV_PYTHON), "-m", "vmsd.cli.vmsd", "run", "--config", str(config), "--log-json"],
            stdin=subprocess.DEVNULL,
            stdout=f,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
            cwd=REPO,
        )


def wait_for_log(proc: subprocess.Popen[bytes], log: Path, needle: str, timeout: float, count: int = 1) -> None:
    """Until ``needle`` appears ``count`` times in ``log``; RuntimeError if vmsd exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"vmsd exited ({proc.returncode}):\n{log.read_text(errors='replace')[-4000:]}")
        if log.read_text(errors="replace").count(needle) >= count:
            return
        time.sleep(0.05)
    raise RuntimeError(f"no {count} x {needle!r} in the vmsd log after {timeout} s")


def grpc_port_from_log(log: Path) -> int:
    for line in log.read_text(errors="replace").splitlines():
        if "grpc_listening" in line:
            return int(json.loads(line)["port"])
    raise RuntimeError("vmsd did not log grpc_listening")


def stop_vmsd(proc: subprocess.Popen[bytes], timeout: float = 30) -> float:
    """SIGTERM and wait; returns the seconds it took (SIGKILL and raise if it does not exit)."""
    began = time.monotonic()
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise RuntimeError(f"vmsd did not exit within {timeout} s of SIGTERM; killed") from None
    return time.monotonic() - began


# -- ffmpeg (the recording peer) ------------------------------------------------------------------


def ffmpeg_segment_command(url: str, out_dir: Path, segment_s: int = 60) -> list[str]:
    """What Frigate runs per camera (the quieting flags only change its log)."""
    return [
        FFMPEG,
        "-hide_banner",
        "-nostats",
        "-loglevel",
        "warning",
        "-rtsp_transport",
        "tcp",
        "-i",
        url,
        "-c",
        "copy",
        "-f",
        "segment",
        "-segment_time",
        str(segment_s),
        str(out_dir / "OUT%03d.mp4"),
    ]


def start_ffmpeg(url: str, out_dir: Path, segment_s: int = 60) -> subprocess.Popen[bytes]:
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / "ffmpeg.log", "ab") as log:
        return subprocess.Popen(
            ffmpeg_segment_command(url, out_dir, segment_s),
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )


def stop_ffmpegs(procs: list[subprocess.Popen[bytes]]) -> int:
    """``q`` to every ffmpeg, then SIGTERM, then SIGKILL; returns how many needed more than ``q``."""
    for p in procs:
        if p.poll() is None and p.stdin:
            try:
                p.stdin.write(b"q")
                p.stdin.close()
            except OSError:
                pass
    forced = 0
    for sig, grace in ((None, 10), (signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        alive = [p for p in procs if p.poll() is None]
        if not alive:
            break
        if sig is not None:
            forced += len(alive) if sig == signal.SIGTERM else 0
            for p in alive:
                p.send_signal(sig)
        deadline = time.monotonic() + grace
        for p in alive:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
    return forced


def ffprobe_video(path: Path) -> tuple[int, int] | None:
    """(video packets, duration in ns) of a media file, or None if ffprobe cannot read it."""
    out = subprocess.run(
        [
            FFPROBE,
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-count_packets",
            "-show_entries",
            "stream=nb_read_packets:format=duration",
            "-of",
            "json",
            str(path),
        ],
        capture_output=True,
        text=True,
    )
    try:
        info = json.loads(out.stdout)
        packets = int(info["streams"][0]["nb_read_packets"])
        duration_ns = round(float(info["format"]["duration"]) * NS_PER_S)
    except (ValueError, KeyError, IndexError, TypeError):
        return None
    return packets, duration_ns


# -- the simulator --------------------------------------------------------------------------------


def wait_all_connected(
    sim: CameraSimulator, procs: list[subprocess.Popen[bytes]], timeout: float = 60, clients: int = 1
) -> None:
    """Until every mount has at least ``clients`` clients (processes must stay alive meanwhile)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs):
            raise RuntimeError("a recorder process exited while connecting")
        mounts = sim.status()["mounts"]
        if all(m.get("clients", 0) >= clients for m in mounts.values()):
            return
        time.sleep(0.1)
    raise RuntimeError(f"not all cameras connected after {timeout} s: {sim.status()}")
