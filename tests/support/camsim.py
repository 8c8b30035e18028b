#!/usr/bin/python3
"""Camera simulator: an RTSP server that serves pre-encoded clips in real time and misbehaves on
command.  Runs under the *system* python (it needs ``gi`` with GstRtspServer), never in the venv.

Usage::

    /usr/bin/python3 tests/support/camsim.py --port 8554 --control-port 8555 \\
        --mount cam1=/clips/a.h264,audio=/clips/a.aac --mount cam2=/clips/b.h265,fps=25

A mount is ``NAME=VIDEOFILE[,audio=AACFILE][,codec=h264|h265][,fps=N][,sr=wallclock|uptime|none]``
(``sr``: what its RTCP sender reports carry, see ``SENDER_REPORTS``); the codec defaults from
the file extension.  ``--spec FILE`` reads the same as JSON: ``[{"name":..., "video":...,
"audio":..., "codec":..., "fps":...}, ...]``.  Once the server socket is bound it prints exactly
one line ``READY <port>`` on stdout.  ``--digest USER:PASSWORD`` makes every mount ask for Digest
authentication (GStreamer's RTSPAuth).  SIGTERM/SIGINT exit 0 promptly.

Media model (why it is built like this):

* Every mount has one *shared* media factory, so all clients of a mount get one pipeline:
  ``appsrc ! h26xparse ! rtph26xpay config-interval=-1`` (+ ``appsrc ! aacparse ! rtpmp4gpay``).
  ``multifilesrc`` would hand the whole file over as one buffer with timestamp 0, so a feeder
  thread per mount splits the Annex-B file into access units at the AUD NAL units once, and pushes
  one AU per buffer paced against ``time.monotonic()``.
* Like a real camera, the feeder's timeline runs whether or not anybody watches.  Stream PTS is
  ``frames_sent_so_far * frame_duration`` (+ the jump offset), continuous across clip loops and
  switches.  When a pipeline (media) is created it starts at the next keyframe of the clip (real
  cameras send an IDR to a new session) so that DESCRIBE has SPS/PPS for the SDP within a frame.
* Each media pipeline runs on a realtime clock with its base time set so that its running time
  starts at one day (not 0), and buffer PTS = that running time at push (+ the jump offset), in
  exact frame steps.  PTS that track the running time keep RTCP sender reports (extrapolated from
  running time) consistent with the RTP timestamps, which FFmpeg uses to align audio and video;
  the one-day head start lets ``jump`` go backwards without negative running times.  The sinks
  are switched to sync=false so a jumped PTS goes out at once instead of waiting for the clock.
* A new SETUP or PLAY also makes the feeder continue at the next keyframe (cameras send an IDR to
  a new session), so new clients decode within a frame or two.
* A media with no client playing is reset (suspend mode RESET: its pipeline goes to NULL after
  DESCRIBE has its SDP, and prerolls again at SETUP), so what the feeder pushes meanwhile is
  dropped. Otherwise appsrc queued it (at most 2 s, oldest dropped) and burst it out at PLAY:
  measured with a raw client waiting 1 s between DESCRIBE and SETUP, a second of frames arrived
  within 1 ms; waiting 3.5 s, the first keyframe, a 1.92 s hole, then a 2 s burst. A camera
  starts streaming at PLAY, and so does the simulator now (a 192-camera connection storm had
  left first-segment holes, bench/README.md).

Control protocol: TCP on 127.0.0.1:``--control-port``, one JSON object per line, one JSON line
back (``{"ok": true, ...}`` or ``{"ok": false, "error": "..."}``).  Commands: ``drop``, ``stall``,
``garbage``, ``truncate``, ``huge``, ``switch``, ``jump``, ``status`` -- see :meth:`Simulator.handle`.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import socketserver
import sys
import threading
import time

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
gi.require_version("GstRtsp", "1.0")
from gi.repository import GLib, GObject, Gst, GstRtsp, GstRtspServer  # noqa: E402

SECOND = Gst.SECOND
# Running time a media pipeline starts at, so that negative `jump`s stay positive (see module
# docstring).
PTS_CUSHION = 24 * 3600 * SECOND
# RTCP sender reports of a mount (``sr=``): NTP time from the wall clock (as a camera whose clock
# is set), from the pipeline's running time (a camera counting from boot: 1900-01-02 and on), or
# none at all (RTCP's minimum interval set to a day).
SENDER_REPORTS = {"wallclock", "uptime", "none"}
# If the feeder falls this far behind wall-clock (machine suspended, debugger), it re-anchors
# instead of bursting the backlog.
MAX_LAG_S = 1.0

_START_CODE = re.compile(b"\x00\x00\x01")


# --------------------------------------------------------------------------------------------
# Bitstream helpers (pure functions)
# --------------------------------------------------------------------------------------------


def nal_type(codec: str, header_byte: int) -> int:
    return (header_byte >> 1) & 0x3F if codec == "h265" else header_byte & 0x1F


def split_access_units(data: bytes, codec: str) -> list[tuple[bytes, bool]]:
    """Split an Annex-B stream at its access-unit delimiters.

    Returns ``[(au_bytes, is_keyframe), ...]``; each AU keeps its own start codes (including the
    AUD).  Raises ``ValueError`` if the stream has no AUDs (encode with aud=1) or no keyframe.
    Emulation prevention guarantees 00 00 01 never occurs inside a NAL, so a byte scan is exact.
    """
    aud = 35 if codec == "h265" else 9
    boundaries, keys = [], set()
    for m in _START_CODE.finditer(data):
        if m.end() >= len(data):
            break
        t = nal_type(codec, data[m.end()])
        if t == aud:
            # A 4-byte start code's leading zero belongs to this AU, not the previous one.
            start = m.start() - 1 if m.start() > 0 and data[m.start() - 1] == 0 else m.start()
            boundaries.append(start)
        elif (t == 5 if codec == "h264" else 16 <= t <= 21) and boundaries:
            keys.add(len(boundaries) - 1)
    if not boundaries:
        raise ValueError("no access-unit delimiters found; encode with aud=1")
    if not keys:
        raise ValueError("no keyframe found")
    boundaries.append(len(data))
    return [(data[boundaries[i] : boundaries[i + 1]], i in keys) for i in range(len(boundaries) - 1)]


_ADTS_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350)


def split_adts(data: bytes) -> tuple[list[bytes], int, int]:
    """Split an ADTS AAC file into frames.  Returns ``(frames, sample_rate, samples_per_frame)``."""
    frames, pos, rate, blocks = [], 0, None, 1
    while pos + 7 <= len(data):
        if data[pos] != 0xFF or (data[pos + 1] & 0xF6) != 0xF0:
            raise ValueError(f"lost ADTS sync at byte {pos}")
        rate = _ADTS_RATES[(data[pos + 2] >> 2) & 0x0F]
        length = ((data[pos + 3] & 0x03) << 11) | (data[pos + 4] << 3) | (data[pos + 5] >> 5)
        blocks = (data[pos + 6] & 0x03) + 1
        frames.append(data[pos : pos + length])
        pos += length
    if not frames:
        raise ValueError("no ADTS frames")
    return frames, rate, 1024 * blocks


def garbage_au(codec: str, rng: random.Random, size: int = 0) -> bytes:
    """A random-sized buffer of random bytes dressed as one non-IDR slice.

    Pure random bytes would mostly be discarded by h26xparse (no start code) and never reach the
    client; wrapping them in AUD + slice NAL header, with emulation prevention applied, gets them
    onto the wire as a corrupt picture -- what a broken camera encoder actually produces.
    """
    size = size or rng.randint(100, 20000)
    payload = re.sub(b"\x00\x00([\x00-\x03])", b"\x00\x00\x03\\1", rng.randbytes(size))
    if codec == "h265":
        return b"\x00\x00\x00\x01\x46\x01\x50" + b"\x00\x00\x01\x02\x01" + payload + b"\x80"
    return b"\x00\x00\x00\x01\x09\xf0" + b"\x00\x00\x01\x41" + payload + b"\x80"


def truncated_au(data: bytes, rng: random.Random) -> bytes:
    """An access unit cut short: its AUD and the first bytes of its NAL units survive, the rest of
    the picture is missing (a camera whose encoder buffer overflowed, a lossy link)."""
    return data[: rng.randint(8, max(9, len(data) // 3))]


# --------------------------------------------------------------------------------------------
# A mount: factory + feeder thread
# --------------------------------------------------------------------------------------------


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


class VideoClip:
    """A video file split into access units once."""

    def __init__(self, path: str, codec: str):
        self.aus = split_access_units(_read(path), codec)
        self.path, self.codec = path, codec
        self.keyframes = [i for i, (_, key) in enumerate(self.aus) if key]

    def next_keyframe(self, index: int) -> int:
        """Index of the first keyframe at or after ``index`` (wrapping)."""
        for k in self.keyframes:
            if k >= index:
                return k
        return self.keyframes[0]


class Mount:
    """One RTSP mount point.  Thread-safety: feeder thread and GLib main loop share state under
    ``self.lock``; GstRtspServer objects are only touched from the main loop."""

    def __init__(self, name: str, video: str, codec: str, fps: int, audio: str | None, sr: str = "wallclock"):
        self.name, self.codec, self.fps = name, codec, fps
        if sr not in SENDER_REPORTS:
            raise ValueError(f"sr must be one of {sorted(SENDER_REPORTS)}, not {sr!r}")
        # What the RTCP sender reports say (see SENDER_REPORTS).
        self.sender_reports = sr
        self.path = "/" + name
        self.clip = VideoClip(video, codec)
        self.audio_frames, self.audio_rate, self.audio_spf = split_adts(_read(audio)) if audio else (None, None, None)
        self.lock = threading.Lock()
        self.rng = random.Random(name)  # str seeds are stable across runs, unlike hash()
        # Control state (under lock).
        self.stall_until = 0.0
        self.dropped = False
        self.garbage_left = 0
        self.truncate_left = 0
        self.huge_left = 0
        self.huge_bytes = 0
        self.pending_switch: VideoClip | None = None
        self.jump_ns = 0
        # Attached pipeline (under lock); None when no client is watching.
        self.media = None
        self.vsrc = None
        self.asrc = None
        self.attach_mono = 0.0  # monotonic time at which the attached media's running time was 0
        self.restart_at_key = False
        self.stats = {
            "video_sent": 0,
            "audio_sent": 0,
            "garbage_sent": 0,
            "truncated_sent": 0,
            "huge_sent": 0,
            "medias": 0,
        }
        self.factory = self._make_factory()

    # -- GStreamer side (main loop) ----------------------------------------------------------

    def _make_factory(self):
        parse, pay = ("h265parse", "rtph265pay") if self.codec == "h265" else ("h264parse", "rtph264pay")
        launch = (
            f"( appsrc name=v is-live=true format=time do-timestamp=false ! {parse} ! "
            f"{pay} name=pay0 pt=96 config-interval=-1"
        )
        if self.audio_frames:
            launch += (
                " appsrc name=a is-live=true format=time do-timestamp=false ! aacparse ! rtpmp4gpay name=pay1 pt=97"
            )
        launch += " )"
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch(launch)
        factory.set_shared(True)
        factory.set_suspend_mode(GstRtspServer.RTSPSuspendMode.RESET)
        factory.set_clock(realtime_clock())
        factory.connect("media-configure", self._on_media_configure)
        return factory

    def _on_media_configure(self, _factory, media):
        bin_ = media.get_element()
        vsrc = bin_.get_by_name("v")
        caps = "video/x-h265" if self.codec == "h265" else "video/x-h264"
        vsrc.set_property("caps", Gst.Caps.from_string(f"{caps},stream-format=byte-stream,alignment=au"))
        asrc = bin_.get_by_name("a")
        for src in (vsrc, asrc):
            if src is None:
                continue
            # Bound the queue: while the media is PAUSED nothing drains it; old data is useless.
            src.set_property("max-time", 2 * SECOND)
            src.set_property("leaky-type", 2)  # GST_APP_LEAKY_TYPE_DOWNSTREAM: drop oldest
        if asrc is not None:
            asrc.set_property(
                "caps",
                Gst.Caps.from_string(f"audio/mpeg,mpegversion=4,stream-format=adts,rate={self.audio_rate},channels=1"),
            )
        media.connect("unprepared", self._on_media_unprepared)
        # rtsp-server's sinks sync on the clock by default, so a buffer whose running time is
        # ahead of the clock (after a `jump`) would be held back for that long.  Our
        # feeder already paces in real time: make every sink push as soon as data arrives.
        pipeline = bin_.get_parent()
        pipeline.connect("deep-element-added", self._on_element_added)
        # Start the pipeline's running time at PTS_CUSHION instead of 0, and keep it there across
        # PAUSED->PLAYING (start_time NONE).  Buffers carry PTS = running time at push, so RTCP
        # sender reports (extrapolated from running time) agree with the RTP timestamps; clients
        # like FFmpeg use them to line up audio with video.  The realtime clock (set on the
        # factory) is needed because the monotonic clock is only "uptime" large.
        pipeline.set_start_time(Gst.CLOCK_TIME_NONE)
        attach_mono = time.monotonic()
        pipeline.set_base_time(self.factory.get_clock().get_time() - PTS_CUSHION)
        with self.lock:
            self.media, self.vsrc, self.asrc = media, vsrc, asrc
            self.attach_mono = attach_mono
            self.restart_at_key = True
            self.stats["medias"] += 1
        log(f"{self.name}: media created")

    def _on_element_added(self, _pipeline, _bin, element):
        factory = element.get_factory()
        kind = factory.get_name() if factory is not None else ""
        if kind == "rtpbin" and self.sender_reports == "uptime":
            element.set_property("ntp-time-source", 2)  # running-time: 1 day + since the media began
        elif kind == "rtpsession" and self.sender_reports == "none":
            element.set_property("rtcp-min-interval", 24 * 3600 * SECOND)
        if element.find_property("sync") is None:
            return
        element.set_property("sync", False)
        # GstRTSPStream sets sync=TRUE on its RTP sinks *after* adding them; undo it each time.
        element.connect("notify::sync", _keep_sync_off)

    def _on_media_unprepared(self, media):
        with self.lock:
            if self.media is media:
                self.media = self.vsrc = self.asrc = None
        log(f"{self.name}: media unprepared")

    # -- feeder thread ----------------------------------------------------------------------

    def run_feeder(self, stop: threading.Event) -> None:
        """Push AUs (and ADTS frames) in real time forever, whether or not a media is attached."""
        frame_ns = SECOND // self.fps
        a_ns = SECOND * self.audio_spf // self.audio_rate if self.audio_frames else None
        v_count = a_count = 0  # items produced on the stream timeline (drives PTS and pacing)
        v_index = a_index = 0  # position in the clip
        restarting = False
        t0 = time.monotonic()
        while not stop.is_set():
            v_due = v_count * frame_ns
            a_due = a_count * a_ns if a_ns else None
            is_video = a_due is None or v_due <= a_due
            due_ns = v_due if is_video else a_due
            delay = t0 + due_ns / SECOND - time.monotonic()
            if delay > 0:
                if stop.wait(delay):
                    return
            elif -delay > MAX_LAG_S:
                # Re-anchor rather than burst; PTS then step forward with the clock, like a
                # camera's after a hiccup.
                t0 = time.monotonic() - due_ns / SECOND
            now = time.monotonic()
            with self.lock:
                stalled = now < self.stall_until
                src = self.vsrc if is_video else self.asrc
                if is_video:
                    if self.pending_switch is not None and self.clip.aus[v_index][1]:
                        self.clip, self.pending_switch, v_index = self.pending_switch, None, 0
                        log(f"{self.name}: switched to {self.clip.path}")
                    restarting = self.restart_at_key and src is not None
                    if restarting:
                        v_index = self.clip.next_keyframe(v_index)
                    data, key = self.clip.aus[v_index]
                    if self.garbage_left > 0:
                        self.garbage_left -= 1
                        data, key = garbage_au(self.codec, self.rng), False
                        self.stats["garbage_sent"] += 1
                    elif self.truncate_left > 0:
                        self.truncate_left -= 1
                        data = truncated_au(data, self.rng)
                        self.stats["truncated_sent"] += 1
                    elif self.huge_left > 0:
                        self.huge_left -= 1
                        data, key = garbage_au(self.codec, self.rng, self.huge_bytes), False
                        self.stats["huge_sent"] += 1
                    v_index = (v_index + 1) % len(self.clip.aus)
                    v_count += 1
                    duration = frame_ns
                else:
                    data, key = self.audio_frames[a_index], True
                    a_index = (a_index + 1) % len(self.audio_frames)
                    a_count += 1
                    duration = a_ns
                # Running time "now" in the media pipeline (+ jump); exact frame steps since
                # (t0 - attach_mono) is the same float every time.
                pts = PTS_CUSHION + int((t0 - self.attach_mono) * SECOND) + due_ns + self.jump_ns
            if src is None or stalled:
                continue
            buf = Gst.Buffer.new_wrapped(data)
            buf.pts, buf.duration = pts, duration
            if not key:
                buf.set_flags(Gst.BufferFlags.DELTA_UNIT)
            ret = src.emit("push-buffer", buf)
            self.stats["video_sent" if is_video else "audio_sent"] += 1
            if is_video and restarting and ret == Gst.FlowReturn.OK:
                # Only a keyframe the pipeline took ends the restart: SETUP on a reset media
                # fires before it prerolls, and a push to it then is refused (FLUSHING).
                with self.lock:
                    self.restart_at_key = False
            if ret not in (Gst.FlowReturn.OK, Gst.FlowReturn.FLUSHING):
                log(f"{self.name}: push-buffer returned {ret}")


# --------------------------------------------------------------------------------------------
# Server + control
# --------------------------------------------------------------------------------------------

_REALTIME_CLOCK = None


def realtime_clock():
    """One shared system clock counting from the epoch (see Mount._on_media_configure)."""
    global _REALTIME_CLOCK
    if _REALTIME_CLOCK is None:
        _REALTIME_CLOCK = GObject.new(Gst.SystemClock, clock_type=Gst.ClockType.REALTIME)
    return _REALTIME_CLOCK


def _digest_auth(credentials: str, mounts: list[Mount]) -> GstRtspServer.RTSPAuth:
    """Every mount admits only the "user:password" of ``credentials``, checked with Digest
    (GStreamer's own implementation, no qop)."""
    user, _, password = credentials.partition(":")
    auth = GstRtspServer.RTSPAuth()
    auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
    token = GstRtspServer.RTSPToken.new()
    token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "user")
    auth.add_digest(user, password, token)
    role = Gst.Structure.from_string("user, media.factory.access=(boolean)true, media.factory.construct=(boolean)true")
    for m in mounts:
        m.factory.add_role_from_structure(role[0])
    return auth


def _keep_sync_off(element, _pspec) -> None:
    if element.get_property("sync"):
        element.set_property("sync", False)


def log(msg: str) -> None:
    print(f"camsim: {msg}", file=sys.stderr, flush=True)


class Simulator:
    def __init__(self, port: int, control_port: int, mounts: list[Mount], digest: str | None = None):
        self.mounts = {m.name: m for m in mounts}
        self.server = GstRtspServer.RTSPServer()
        self.server.set_address("127.0.0.1")
        self.server.set_service(str(port))
        for m in mounts:
            self.server.get_mount_points().add_factory(m.path, m.factory)
        self.server.connect("client-connected", self._on_client_connected)
        if digest:
            self.server.set_auth(_digest_auth(digest, mounts))
        self.control_port = control_port
        self.loop = GLib.MainLoop()
        self.stop_event = threading.Event()

    def run(self) -> None:
        if self.server.attach(None) == 0:
            raise SystemExit(f"camsim: cannot bind RTSP port {self.server.get_service()}")
        control = _ControlServer(("127.0.0.1", self.control_port), _ControlHandler)
        control.sim = self
        threading.Thread(target=control.serve_forever, name="control", daemon=True).start()
        for m in self.mounts.values():
            threading.Thread(target=m.run_feeder, args=(self.stop_event,), name=f"feed-{m.name}", daemon=True).start()
        # Expire half-dead sessions (default timeout 60 s) instead of keeping media alive.
        GLib.timeout_add_seconds(2, self._cleanup_sessions)
        for sig in (signal.SIGTERM, signal.SIGINT):
            GLib.unix_signal_add(GLib.PRIORITY_HIGH, sig, self._quit)
        print(f"READY {self.server.get_bound_port()}", flush=True)
        self.loop.run()

    def _on_client_connected(self, _server, client):
        # SETUP too: a suspended (reset) media prerolls again at SETUP and needs a keyframe.
        client.connect("setup-request", self._on_play_request)
        client.connect("play-request", self._on_play_request)

    def _on_play_request(self, _client, ctx):
        # Like a camera that sends an IDR to each new session: the feeder continues from the
        # clip's next keyframe, so a new client need not wait up to a GOP for a decodable frame.
        path = ctx.uri.abspath if ctx.uri is not None else ""
        for m in self.mounts.values():
            if path == m.path or path.startswith(m.path + "/"):
                with m.lock:
                    m.restart_at_key = True

    def _quit(self) -> bool:
        self.stop_event.set()
        self.loop.quit()
        return GLib.SOURCE_REMOVE

    def _cleanup_sessions(self) -> bool:
        self.server.get_session_pool().cleanup()
        return GLib.SOURCE_CONTINUE

    # -- helpers running on the main loop -------------------------------------------------

    def call_in_main(self, fn, timeout: float = 5.0):
        """Run ``fn()`` on the GLib main loop and return its result (GstRtspServer objects are
        not safe to walk from the control thread while the server mutates them)."""
        done, box = threading.Event(), {}

        def run():
            try:
                box["value"] = fn()
            except Exception as e:  # returned to the control client, with its type
                box["error"] = f"{type(e).__name__}: {e}"
            done.set()
            return GLib.SOURCE_REMOVE

        GLib.idle_add(run)
        if not done.wait(timeout):
            raise TimeoutError("main loop did not answer")
        if "error" in box:
            raise RuntimeError(box["error"])
        return box.get("value")

    def _session_uses(self, session, media) -> bool:
        found = []

        def check(_session, sm):
            if sm.get_media() == media:
                found.append(True)
            return GstRtspServer.RTSPFilterResult.KEEP

        session.filter(check)
        return bool(found)

    def _clients_of(self, mount: Mount, remove: bool) -> int:
        """Count (and with ``remove`` disconnect) the clients with a session on ``mount``."""
        media = mount.media
        count = [0]
        if media is None:
            return 0

        def per_client(_server, client):
            sessions = client.session_filter(
                lambda _c, s: (
                    GstRtspServer.RTSPFilterResult.REF
                    if self._session_uses(s, media)
                    else GstRtspServer.RTSPFilterResult.KEEP
                )
            )
            if sessions:
                count[0] += 1
                if remove:
                    return GstRtspServer.RTSPFilterResult.REMOVE
            return GstRtspServer.RTSPFilterResult.KEEP

        self.server.client_filter(per_client)
        if remove:
            # Closing a TCP client does not always tear its session down at once; remove the
            # sessions too, so the shared media is unprepared and the next client gets a new one.
            self.server.get_session_pool().filter(
                lambda _pool, s: (
                    GstRtspServer.RTSPFilterResult.REMOVE
                    if self._session_uses(s, media)
                    else GstRtspServer.RTSPFilterResult.KEEP
                )
            )
        return count[0]

    def _drop(self, mount: Mount, seconds: float) -> dict:
        if not mount.dropped:
            self.server.get_mount_points().remove_factory(mount.path)
            mount.dropped = True
        kicked = self._clients_of(mount, remove=True)

        def restore():
            if mount.dropped:
                self.server.get_mount_points().add_factory(mount.path, mount.factory)
                mount.dropped = False
                log(f"{mount.name}: serving again")
            return GLib.SOURCE_REMOVE

        GLib.timeout_add(int(seconds * 1000), restore)
        log(f"{mount.name}: dropped {kicked} client(s) for {seconds} s")
        return {"kicked": kicked}

    def _status(self) -> dict:
        out = {}
        for m in self.mounts.values():
            with m.lock:
                stalled = time.monotonic() < m.stall_until
                extra = {
                    "stalled": stalled,
                    "garbage_pending": m.garbage_left,
                    "jump_s": m.jump_ns / SECOND,
                    "clip": m.clip.path,
                    **m.stats,
                }
            out[m.name] = {
                "clients": self._clients_of(m, remove=False),
                "media": m.media is not None,
                "dropped": m.dropped,
                **extra,
            }
        return {"mounts": out}

    # -- command dispatch (control thread) ------------------------------------------------

    def handle(self, req: dict) -> dict:
        """Execute one control command; returns the reply object (without ``ok``).

        * ``drop(mount, seconds)``: disconnect every client of the mount and answer 404 for it
          for ``seconds``; the feeder's timeline keeps running.
        * ``stall(mount, seconds)``: keep connections and RTSP sessions (and RTCP) alive but push
          no media for ``seconds``; the frames that would have been sent are skipped, so media
          resumes mid-GOP at the then-current position, like a camera whose path stalled.
        * ``garbage(mount, count)``: replace the next ``count`` video AUs by random-byte slices.
        * ``truncate(mount, count)``: cut the next ``count`` video AUs (keyframes included) short.
        * ``huge(mount, count, bytes)``: replace the next ``count`` video AUs by random-byte slices
          of ``bytes`` bytes each (a frame far larger than any real camera sends).
        * ``switch(mount, video)``: at the next keyframe, continue with another clip of the same
          codec (e.g. another resolution: the new SPS goes in-band); PTS continue.
        * ``jump(mount, seconds)``: add ``seconds`` (may be negative) to all later PTS.
        * ``status``: per-mount client count and counters.
        """
        cmd = req.get("cmd")
        if cmd == "status":
            return self.call_in_main(self._status)
        mount = self.mounts.get(req.get("mount"))
        if mount is None:
            raise KeyError(f"unknown mount {req.get('mount')!r}")
        if cmd == "drop":
            return self.call_in_main(lambda: self._drop(mount, float(req.get("seconds", 5))))
        if cmd == "stall":
            with mount.lock:
                mount.stall_until = time.monotonic() + float(req.get("seconds", 8))
            return {}
        if cmd == "garbage":
            with mount.lock:
                mount.garbage_left += int(req.get("count", 20))
            return {}
        if cmd == "truncate":
            with mount.lock:
                mount.truncate_left += int(req.get("count", 20))
            return {}
        if cmd == "huge":
            size = int(req.get("bytes", 8 * 1024 * 1024))
            if not 0 < size <= 256 * 1024 * 1024:
                raise ValueError("bytes must be in (0, 256 MiB]")
            with mount.lock:
                mount.huge_left += int(req.get("count", 1))
                mount.huge_bytes = size
            return {}
        if cmd == "switch":
            codec = req.get("codec", mount.codec)
            if codec != mount.codec:
                raise ValueError("switch cannot change the codec of a mount")
            clip = VideoClip(req["video"], codec)
            with mount.lock:
                mount.pending_switch = clip
            return {}
        if cmd == "jump":
            with mount.lock:
                mount.jump_ns += int(float(req["seconds"]) * SECOND)
                if mount.jump_ns <= -PTS_CUSHION:
                    mount.jump_ns -= int(float(req["seconds"]) * SECOND)
                    raise ValueError("cumulative backward jump exceeds the 24 h cushion")
            return {}
        raise ValueError(f"unknown cmd {cmd!r}")


class _ControlServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    sim: Simulator


class _ControlHandler(socketserver.StreamRequestHandler):
    def handle(self):
        for line in self.rfile:
            if not line.strip():
                continue
            try:
                reply = {"ok": True, **self.server.sim.handle(json.loads(line))}
            except Exception as e:  # any failure is the client's answer, the server lives on
                reply = {"ok": False, "error": f"{type(e).__name__}: {e}"}
            self.wfile.write(json.dumps(reply).encode() + b"\n")
            self.wfile.flush()


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------


def parse_mount(text: str) -> dict:
    """``NAME=VIDEO[,audio=AAC][,codec=h264|h265][,fps=N][,sr=wallclock|uptime|none]`` -> dict."""
    name, _, rest = text.partition("=")
    parts = rest.split(",")
    spec = {"name": name, "video": parts[0]}
    for p in parts[1:]:
        k, _, v = p.partition("=")
        if k not in ("audio", "codec", "fps", "sr"):
            raise argparse.ArgumentTypeError(f"unknown mount option {k!r} in {text!r}")
        spec[k] = v
    if not name or not spec["video"]:
        raise argparse.ArgumentTypeError(f"bad mount {text!r}")
    return spec


def mount_from_spec(spec: dict) -> Mount:
    video = spec["video"]
    codec = spec.get("codec") or ("h265" if video.endswith((".h265", ".hevc", ".265")) else "h264")
    return Mount(
        spec["name"], video, codec, int(spec.get("fps") or 25), spec.get("audio"), spec.get("sr") or "wallclock"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=8554)
    ap.add_argument("--control-port", type=int, required=True)
    ap.add_argument("--mount", type=parse_mount, action="append", default=[])
    ap.add_argument("--spec", help="JSON file with a list of mount objects")
    ap.add_argument("--digest", metavar="USER:PASSWORD", help="every mount asks for Digest authentication")
    args = ap.parse_args(argv)
    specs = list(args.mount)
    if args.spec:
        with open(args.spec) as f:
            specs += json.load(f)
    if not specs:
        ap.error("no mounts")
    Gst.init(None)
    sim = Simulator(args.port, args.control_port, [mount_from_spec(s) for s in specs], args.digest)
    sim.run()
    # Skip interpreter teardown: daemon feeder threads may be inside GStreamer calls, and
    # finalising pipelines from the atexit path has hung before.  Nothing is left to flush.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
