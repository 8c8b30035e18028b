"""`make demo`: the camera simulator plus `vmsd run` on config/demo.toml, in the foreground.

Three simulated cameras (H.264, H.265, H.264 + AAC) are served by the GStreamer RTSP simulator
on 127.0.0.1:8554 and recorded into ./var/demo. Ctrl-C stops both cleanly.

If vmsd crashes, the simulator keeps serving and vmsd is started again (as systemd's
Restart=on-failure would): without its cameras a restarted recorder would record nothing. A vmsd
that stops cleanly (SIGTERM, exit 0) ends the demo; one that keeps failing at start-up is given up.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.clips import make_clip  # noqa: E402
from tests.support.simulator import CameraSimulator, MountSpec  # noqa: E402
from vmsd.config import load_config  # noqa: E402

CONFIG = ROOT / "config" / "demo.toml"
RESTART_DELAY_S = 2.0
# A vmsd that exits this soon after starting, this many times in a row, has a problem a restart
# does not fix (a broken config, a storage root it cannot lock): say so instead of looping.
EARLY_EXIT_S = 10.0
MAX_EARLY_EXITS = 3


def console_line(config_path: str) -> str:
    """Where the web console of this config is, or that it is off."""
    web = load_config(config_path).web
    if web.address is None:
        return "  (the web console is off: no [web] listen in the config)\n"
    host, port = web.address
    scheme = "https" if web.tls is not None else "http"
    shown = f"[{host}]" if ":" in host else host
    return f"  web console: {scheme}://{shown}:{port}/  (log in with demo-admin-token or demo-viewer-token)\n"


def describe_exit(status: int) -> str:
    return f"killed by {signal.Signals(-status).name}" if status < 0 else f"status {status}"


def exit_code(status: int) -> int:
    """A child's status as a shell would report it (128 + signal when killed)."""
    return 128 - status if status < 0 else status


class Terminated(Exception):
    """SIGTERM reached this script (`kill`, a service manager, `timeout`): only this process got
    it, so vmsd must be stopped on purpose, and the simulator with it (its context manager)."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated


def supervise(command: list[str]) -> int:
    """Run the daemon until Ctrl-C or a clean exit, restarting it after a crash."""
    early_exits = 0
    while True:
        started = time.monotonic()
        daemon = subprocess.Popen(command)
        print(f"vmsd running (pid {daemon.pid})", flush=True)
        try:
            status = daemon.wait()
        except Terminated:
            daemon.send_signal(signal.SIGTERM)  # vmsd closes every segment on SIGTERM
            return exit_code(daemon.wait(timeout=30))
        except KeyboardInterrupt:
            # Ctrl-C reached vmsd too (one process group). A second signal could arrive while it
            # exits, after its handler is gone; send one only if it is still running later (the
            # SIGINT went to this process alone).
            try:
                status = daemon.wait(timeout=5)
            except subprocess.TimeoutExpired:
                daemon.send_signal(signal.SIGTERM)
                status = daemon.wait(timeout=30)
            return exit_code(status)
        if status == 0:
            print("vmsd stopped; stopping the camera simulator", flush=True)
            return 0
        early_exits = early_exits + 1 if time.monotonic() - started < EARLY_EXIT_S else 0
        if early_exits >= MAX_EARLY_EXITS:
            print(
                f"vmsd exited ({describe_exit(status)}) {early_exits} times within {EARLY_EXIT_S:.0f} s of starting:"
                " giving up (its log above says why)",
                flush=True,
            )
            return exit_code(status)
        print(
            f"vmsd exited ({describe_exit(status)}); starting it again in {RESTART_DELAY_S:.0f} s"
            " — the camera simulator keeps serving. Ctrl-C stops both.",
            flush=True,
        )
        try:
            time.sleep(RESTART_DELAY_S)
        except (KeyboardInterrupt, Terminated):
            return exit_code(status)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The camera simulator and vmsd, recording into ./var/demo.")
    parser.add_argument("--config", default=str(CONFIG), help="vmsd configuration (default config/demo.toml)")
    parser.add_argument("--rtsp-port", type=int, default=8554, help="the simulator's port (the config's URLs use it)")
    parser.add_argument("--clips", default=str(ROOT / "var" / "clips"), help="where the encoded clips are cached")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_terminated)
    print("encoding demo clips (first run only) …", flush=True)
    mounts = [
        MountSpec("cam1", make_clip(args.clips, codec="h264", width=1280, height=720, seconds=20, bitrate="2M")),
        MountSpec("cam2", make_clip(args.clips, codec="h265", width=1280, height=720, seconds=20, bitrate="1M")),
        MountSpec("cam3", make_clip(args.clips, codec="h264", seconds=20, audio=True)),
    ]
    with CameraSimulator(mounts, port=args.rtsp_port) as simulator:
        print(
            f"camera simulator (pid {simulator.pid}) serving {', '.join(simulator.url(m.name) for m in mounts)}",
            flush=True,
        )
        print(
            "\nvmsd is recording into ./var/demo.\n"
            f"{console_line(args.config)}"
            "In another terminal:\n"
            "  .venv/bin/vmsd fsck --config config/demo.toml        # after stopping: catalogue vs files\n"
            "  ls var/demo/recordings/*/*/                          # the segments\n"
            "  ffprobe var/demo/recordings/demo-h264/*/*.mp4        # open one\n"
            "  export VMSD_SERVER=127.0.0.1:50051 VMSD_TOKEN=demo-admin-token\n"
            "  .venv/bin/vmsctl cameras                             # the control plane\n"
            "  .venv/bin/vmsctl health                              # a function check of every camera\n"
            "  curl -s 127.0.0.1:9108/metrics | grep ^vmsd_         # Prometheus metrics\n"
            "Ctrl-C stops the daemon (it closes every segment) and the simulator. If vmsd crashes,\n"
            "it is started again; the simulator keeps serving.\n",
            flush=True,
        )
        return supervise([sys.executable, "-m", "vmsd.cli.vmsd", "run", "--config", args.config])


if __name__ == "__main__":
    sys.exit(main())
