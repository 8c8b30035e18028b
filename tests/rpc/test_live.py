"""The gRPC relay's messages: each packet serialized once, the same bytes for every viewer, and
still a valid RelayMessage (the end-to-end relay is in tests/e2e/test_relay.py)."""

from __future__ import annotations

from vmsd.ingest.hub import VIDEO, RelayPacket, StreamConfig
from vmsd.rpc.live import _pass_through, _serialized
from vmsd.services.live import MissedNotice
from vmsd.v1 import live_pb2


def test_a_packet_is_serialized_once_and_decodes_as_a_relay_message() -> None:
    packet = RelayPacket(VIDEO, b"\x00\x00\x00\x01\x65frame", 2_000, 1_000, True, 3, 0, 40)
    first = _serialized(packet)
    assert _serialized(packet) is first  # the second viewer gets the very same bytes object
    assert _pass_through(first) is first
    message = live_pb2.RelayMessage.FromString(first)
    assert message.packet.data == packet.data
    assert (message.packet.pts_ns, message.packet.dts_ns, message.packet.keyframe) == (2_000, 1_000, True)
    assert message.packet.generation == 3 and message.packet.kind == live_pb2.MediaPacket.KIND_VIDEO


def test_configurations_and_notices_serialize_too() -> None:
    config = StreamConfig(2, "h264", 320, 240, b"sps", "", 0, 0, b"", b"init")
    assert _serialized(config) is _serialized(config)
    assert live_pb2.RelayMessage.FromString(_serialized(config)).config.init_segment == b"init"
    notice = live_pb2.RelayMessage.FromString(_serialized(MissedNotice(5, 12))).notice
    assert (notice.missed_frames, notice.missed_frames_total) == (5, 12)
