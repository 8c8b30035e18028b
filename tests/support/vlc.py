"""VLC as an RTSP server: a camera whose RTSP/RTP stack neither this project nor GStreamer wrote.

VLC serves a file (looped) with its own RTSP server over RTP/UDP (it answers a TCP-interleaved
SETUP with 461). Each time the file starts again VLC ends the RTP stream: it sends an RTCP BYE
(naming SSRC 0, not its stream's) and nothing more to that session, so a recorder must set up a
new one. Debian's VLC refuses to run as root; as root it runs as `nobody`, so the file it serves
must be readable by everyone.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from tests.support.simulator import free_port

CVLC = "/usr/bin/cvlc"


def vlc_available() -> bool:
    return shutil.which(CVLC) is not None


class VlcServer:
    def __init__(self, clip: Path, mount: str = "cam") -> None:
        self._clip = clip
        self.mount = mount
        self.port = free_port()
        self._dir: str | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/{self.mount}"

    def __enter__(self) -> VlcServer:
        self._dir = tempfile.mkdtemp(prefix="vmsd-vlc-")
        os.chmod(self._dir, 0o755)
        served = Path(self._dir) / "clip.mp4"
        # In MP4 VLC has the frames' times (a raw .h264 stream makes it guess them, badly).
        subprocess.run(
            ["ffmpeg", "-v", "error", "-y", "-r", "25", "-i", str(self._clip), "-c", "copy", str(served)], check=True
        )
        os.chmod(served, 0o644)
        command = [CVLC, "-I", "dummy", "--no-audio", "--loop", str(served)]
        command += ["--sout", f"#rtp{{sdp=rtsp://127.0.0.1:{self.port}/{self.mount}}}", "--sout-keep"]
        if os.geteuid() == 0:
            command = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *command]
        self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._wait_serving()
        return self

    def _wait_serving(self, timeout_s: float = 20) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self._process is not None and self._process.poll() is None, "VLC exited at start"
            probe = subprocess.run(
                ["ffprobe", "-v", "error", "-rtsp_transport", "udp", "-show_entries", "stream=codec_name", self.url],
                capture_output=True,
                text=True,
                timeout=15,
            )
            if "codec_name=h264" in probe.stdout:
                return
            time.sleep(0.5)
        raise AssertionError(f"VLC does not serve {self.url} after {timeout_s:g} s")

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
