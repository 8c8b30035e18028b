#!/usr/bin/env python3
"""CPU per RTP packet of the native RTSP client's protocol layer (issue #16), offline.

    python bench/native_parse.py [--seconds 30] [--tick-kb 10] [--repeat 3]

The bytes a camera sends over RTSP/TCP are made once: the stream of ``bench/common.py`` (1080p25
H.264 4 Mbit/s, GOP 2 s) packetised as a GStreamer camera does (STAP-A / FU-A, 1,400-byte
payloads, the helpers of ``tests/ingest/rtsp/rtp_streams.py``) and framed as interleaved RTP.
Then, timed with ``time.process_time`` (best of ``--repeat``), the receive path of
``vmsd.ingest.rtsp`` without the socket: bytes copied into ``InterleavedReader.writable()`` in
``--tick-kb`` chunks (what one drain of a 4 Mbit/s camera brings every ~20 ms), the framing split,
``parse_rtp``, sequence tracking, timestamp unwrap, the H.264 depacketiser (and, once per
read, the media-to-wall map) building length-prefixed access units. Reported: µs per packet, CPU per
camera-second and the access units produced (all of them, or the path is broken).

Not measured here: syscalls and loop wake-ups (the spike measured those against ffmpeg), RTCP.
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import Stream
from tests.ingest.rtsp.rtp_streams import clip_access_units, h264_payloads, rtp
from vmsd.ingest.rtsp.access_unit import AccessUnit
from vmsd.ingest.rtsp.client import MediaUnit, RtspClient
from vmsd.ingest.rtsp.clock import MediaWallMap
from vmsd.ingest.rtsp.h264 import H264Depacketizer
from vmsd.ingest.rtsp.interleaved import InterleavedReader
from vmsd.ingest.rtsp.messages import Headers, Response
from vmsd.ingest.rtsp.rtp import SequenceTracker, TimestampUnwrapper, parse_rtp


def camera_bytes(seconds: int) -> tuple[bytes, int, int]:
    """(interleaved bytes, RTP packets, access units) for ``seconds`` of the bench stream."""
    units = clip_access_units(Stream(clip_seconds=seconds).clip())
    out = bytearray()
    seq = packets = 0
    for i, nals in enumerate(units):
        payloads = h264_payloads(nals, 1400)
        for j, payload in enumerate(payloads):
            packet = rtp(seq, i * 3600, payload, marker=j == len(payloads) - 1)
            out += b"$" + struct.pack(">BH", 0, len(packet)) + packet
            seq += 1
            packets += 1
    return bytes(out), packets, len(units)


def receive(data: bytes, tick_bytes: int) -> tuple[float, int]:
    """CPU seconds for the receive path over ``data``, and the access units it produced."""
    units: list[AccessUnit] = []
    depay = H264Depacketizer(units.append)
    sequence, unwrap, wall = SequenceTracker(), TimestampUnwrapper(), MediaWallMap(90000)
    reader = InterleavedReader(channels={0, 1})
    arrival_ns = 1_764_000_000_000_000_000
    newest = [0]

    def on_frame(_channel: int, frame: memoryview) -> None:
        p = parse_rtp(frame)
        lost = sequence.accept(p.sequence)
        ts = unwrap.unwrap(p.timestamp)
        newest[0] = ts
        depay.push(p.payload, ts, p.marker, lost)

    def on_message(_message: object) -> None:
        pass

    start = time.process_time()
    for pos in range(0, len(data), tick_bytes):
        chunk = data[pos : pos + tick_bytes]
        reader.writable()[: len(chunk)] = chunk
        reader.commit(len(chunk))
        arrival_ns += 20_000_000
        reader.process(on_frame, on_message)
        wall.on_packet(newest[0], arrival_ns)  # once per read, as the client does
    return time.process_time() - start, len(units)


def receive_client(data: bytes, tick_bytes: int) -> tuple[float, int]:
    """The same through a whole ``RtspClient`` (session opened with scripted answers, no socket):
    its per-read and per-packet bookkeeping (SSRC, RTCP statistics, events) included."""
    units = [0]

    def on_event(event: object) -> None:
        units[0] += isinstance(event, MediaUnit)

    client = RtspClient("rtsp://127.0.0.1:554/cam", on_event=on_event)
    client.session.start(0)
    sdp = "v=0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1\r\na=control:t0\r\n"
    answers = [([], b""), ([("Content-Base", "rtsp://127.0.0.1:554/cam/")], sdp.encode()),
               ([("Session", "1"), ("Transport", "RTP/AVP/TCP;interleaved=0-1")], b""), ([], b"")]  # fmt: skip
    for headers, body in answers:
        client._on_message(Response(200, "OK", Headers([("CSeq", str(client.session.cseq)), *headers]), body))
    assert client.session.playing
    start = time.process_time()
    for pos in range(0, len(data), tick_bytes):
        chunk = data[pos : pos + tick_bytes]
        client._reader.writable()[: len(chunk)] = chunk
        client._on_bytes(len(chunk))
    return time.process_time() - start, units[0]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=int, default=30, help="seconds of the bench stream")
    ap.add_argument("--tick-kb", type=int, default=10, help="bytes per drain (kB)")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    data, packets, expected = camera_bytes(args.seconds)
    best, produced = min(receive(data, args.tick_kb * 1000) for _ in range(args.repeat))
    client_best, client_produced = min(receive_client(data, args.tick_kb * 1000) for _ in range(args.repeat))
    result = {
        "stream": Stream().describe(),
        "seconds": args.seconds,
        "rtp_packets": packets,
        "bytes": len(data),
        "access_units": produced,
        "access_units_expected": expected,
        "cpu_s": round(best, 4),
        "us_per_packet": round(1e6 * best / packets, 3),
        "cpu_s_per_camera_s": round(best / args.seconds, 6),
        "client_us_per_packet": round(1e6 * client_best / packets, 3),
        "client_access_units": client_produced,
    }
    print(json.dumps(result, indent=2))
    return 0 if produced == expected == client_produced else 1


if __name__ == "__main__":
    sys.exit(main())
