#!/usr/bin/python3
"""The relay peer: GStreamer's RTSP server re-serving one upstream RTSP stream, without decoding.

Runs under the *system* python (it needs ``gi`` with GstRtspServer), never in the venv:

    /usr/bin/python3 bench/gst_relay.py --upstream rtsp://127.0.0.1:PORT/cam --port 0

One shared media factory on ``/relay``: ``rtspsrc (TCP) ! rtph264depay ! rtph264pay``, so all
clients share one upstream session and one payloader, as a C relay would do it (the same design
as the camera simulator's mounts).  ``rtspsrc latency=0`` keeps its jitter buffer from adding
delay (loopback has no jitter to absorb).  Prints ``READY <port>`` once bound; exits 0 on SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(
        f"( rtspsrc location={args.upstream} protocols=tcp latency=0 ! rtph264depay ! "
        "rtph264pay name=pay0 pt=96 config-interval=-1 )"
    )
    factory.set_shared(True)
    server.get_mount_points().add_factory("/relay", factory)
    if server.attach(None) == 0:
        print("could not bind the RTSP port", file=sys.stderr)
        return 1
    loop = GLib.MainLoop()
    GLib.unix_signal_add(GLib.PRIORITY_HIGH, signal.SIGTERM, loop.quit)
    GLib.unix_signal_add(GLib.PRIORITY_HIGH, signal.SIGINT, loop.quit)
    print(f"READY {server.get_bound_port()}", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
