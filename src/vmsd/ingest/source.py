"""One RTSP session with a camera, demuxed by PyAV (no decoding, no re-encoding).

Blocking: open() and packets() block on the network and run on the camera's ingest thread.
Errors surface as SourceError whose message never contains the camera URL or its credentials
(FFmpeg quotes the URL in some messages, so they are scrubbed).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import av

from vmsd.ingest.sockets import new_sockets_to, process_sockets, quiet_sockets, shutdown_sockets
from vmsd.log import redact_url, scrub
from vmsd.units import NS_PER_S

NS_PER_US = 1_000
# Audio the MP4 segments can carry as recorded. Other camera audio (G.711, G.726) is not recorded
# rather than transcoded: the recorder never re-encodes.
RECORDABLE_AUDIO = {"aac"}
# A stalled session's connection has been quiet this long; a recording camera's gets every frame.
STALLED_SOCKET_QUIET_MS = 500


class SourceError(Exception):
    """The camera could not be opened or read; the message is safe to log."""


class CameraSource:
    def __init__(self, url: str, *, transport: str, open_timeout_ns: int, read_timeout_ns: int) -> None:
        self._url = url
        self.safe_url = redact_url(url)
        self._transport = transport
        self._open_timeout_ns = open_timeout_ns
        self._read_timeout_ns = read_timeout_ns
        self._container: Any = None
        self.video: Any = None
        self.audio: Any = None
        self.skipped_audio_codec: str | None = None
        self._socket_inodes: set[str] = set()

    def open(self) -> None:
        options = {
            "rtsp_transport": self._transport,
            # FFmpeg's socket I/O timeout for RTSP, in microseconds (`stimeout` no longer exists).
            "timeout": str(self._read_timeout_ns // NS_PER_US),
            # Keep latency and memory low: we only copy packets, never decode.
            "fflags": "nobuffer",
            "max_delay": "500000",
            # Probe briefly: the SDP already carries the parameter sets, and a reconnecting camera
            # should be recording again at once (measured: opening took 1.16 s with FFmpeg's
            # defaults, 0.36 s with these).
            "analyzeduration": "500000",
            "fpsprobesize": "0",
        }
        if self._transport == "udp":
            options["buffer_size"] = str(4 * 1024 * 1024)
        parts = urlsplit(self._url)
        host, port = parts.hostname or "", parts.port or (322 if parts.scheme == "rtsps" else 554)
        before = set(process_sockets())
        try:
            # Only the open is bounded by PyAV's timeout. PyAV enforces its timeouts in an FFmpeg
            # interrupt callback that takes the GIL on every I/O check; a read timeout makes every
            # camera thread take the GIL thousands of times a second, and with 32+ cameras that
            # contention cost 6x the CPU per camera (bench/report.md, first run). Reads are
            # bounded instead by FFmpeg's own socket `timeout` above and by the recorder's stall
            # watch, which shuts a silent session's socket down (interrupt()).
            self._container = av.open(
                self._url,
                options=options,
                timeout=(self._open_timeout_ns / NS_PER_S, None),
            )
        except (av.FFmpegError, OSError, UnicodeDecodeError) as error:
            raise SourceError(f"cannot open {self.safe_url}: {scrub(str(error))}") from None
        # The connection(s) this session opened, for interrupt(); the set may include another
        # camera's socket opened to the same address at the same instant (it would reconnect).
        self._socket_inodes = new_sockets_to(host, port, before)
        videos = [s for s in self._container.streams.video if s.codec_context.name in ("h264", "hevc")]
        if not videos:
            found = [s.codec_context.name for s in self._container.streams]
            self.close()
            raise SourceError(f"{self.safe_url} has no H.264/H.265 video stream (streams: {found})")
        self.video = videos[0]
        audios = list(self._container.streams.audio)
        if audios:
            if audios[0].codec_context.name in RECORDABLE_AUDIO:
                self.audio = audios[0]
            else:
                self.skipped_audio_codec = audios[0].codec_context.name

    def packets(self) -> Iterator[Any]:
        """Yield demuxed packets of the recorded streams until the camera ends or fails."""
        wanted = {s.index for s in (self.video, self.audio) if s is not None}
        try:
            # Demux every stream and filter here (a stream filter made PyAV skip the packets of
            # other streams internally, without returning to us): a camera that stalls with RTCP
            # still flowing is then seen by the recorder's stall check on the packets it yields.
            for packet in self._container.demux():
                if packet.size == 0 or packet.stream.index not in wanted:
                    continue  # the flush packet at end of stream, or a stream we do not record
                yield packet
        except (av.FFmpegError, OSError) as error:
            raise SourceError(f"reading {self.safe_url} failed: {scrub(str(error))}") from None

    def interrupt(self) -> bool:
        """Make a blocked read give up now (safe from another thread): shut the session's TCP
        connection down (see sockets.py). Returns whether a connection was found."""
        targets = self._socket_inodes
        if len(targets) > 1:
            # Other sessions to the same host:port opened at the same moment: some of these are
            # theirs. Only a quiet one is this stalled session's (a False here is retried at the
            # next stall check, half a second later).
            targets = quiet_sockets(targets, STALLED_SOCKET_QUIET_MS)
        return shutdown_sockets(targets) > 0

    def finish(self) -> bool:
        """Ask packets() to end after what has already arrived. FFmpeg's demuxer holds nothing
        back that has arrived (a packet comes every frame), so False: the caller stops at once."""
        return False

    def close(self) -> None:
        if self._container is not None:
            try:
                self._container.close()
            except (av.FFmpegError, OSError):
                pass  # the session is gone either way; nothing recorded depends on this
            self._container = None
