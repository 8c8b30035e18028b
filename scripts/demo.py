"""`make demo`: the camera simulator plus `vmsd run` on config/demo.toml, in the foreground.

Three simulated cameras (H.264, H.265, H.264 + AAC) are served by the GStreamer RTSP simulator
on 127.0.0.1:8554 and recorded into ./var/demo. Ctrl-C stops both cleanly.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.clips import make_clip  # noqa: E402
from tests.support.simulator import CameraSimulator, MountSpec  # noqa: E402

CONFIG = ROOT / "config" / "demo.toml"


def main() -> int:
    clips = ROOT / "var" / "clips"
    print("encoding demo clips (first run only) …", flush=True)
    mounts = [
        MountSpec("cam1", make_clip(clips, codec="h264", width=1280, height=720, seconds=20, bitrate="2M")),
        MountSpec("cam2", make_clip(clips, codec="h265", width=1280, height=720, seconds=20, bitrate="1M")),
        MountSpec("cam3", make_clip(clips, codec="h264", seconds=20, audio=True)),
    ]
    with CameraSimulator(mounts, port=8554) as simulator:
        print(f"camera simulator serving {', '.join(simulator.url(m.name) for m in mounts)}", flush=True)
        daemon = subprocess.Popen([sys.executable, "-m", "vmsd.cli.vmsd", "run", "--config", str(CONFIG)])
        print(
            "\nvmsd is recording into ./var/demo. In another terminal:\n"
            "  .venv/bin/vmsd fsck --config config/demo.toml        # after stopping: catalogue vs files\n"
            "  ls var/demo/recordings/*/*/                          # the segments\n"
            "  ffprobe var/demo/recordings/demo-h264/*/*.mp4        # open one\n"
            "  export VMSD_SERVER=127.0.0.1:50051 VMSD_TOKEN=demo-admin-token\n"
            "  .venv/bin/vmsctl cameras                             # the control plane\n"
            "  .venv/bin/vmsctl health                              # a function check of every camera\n"
            "  curl -s 127.0.0.1:9108/metrics | grep ^vmsd_         # Prometheus metrics\n"
            "Ctrl-C stops the daemon (it closes every segment) and the simulator.\n",
            flush=True,
        )
        try:
            return daemon.wait()
        except KeyboardInterrupt:
            daemon.send_signal(signal.SIGINT)
            return daemon.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main())
