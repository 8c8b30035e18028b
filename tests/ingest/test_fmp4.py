"""Live fMP4: init segment + one fragment per frame, read back by the real ffprobe/ffmpeg; codec
strings of real H.264 and H.265 clips; one shared fragment per frame for every viewer."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from pathlib import Path

import av
import pytest

from tests.support.clips import Clip, make_clip
from vmsd.ingest.bitstream import parameter_sets
from vmsd.ingest.fmp4 import (
    TIMESCALE,
    LiveFormatError,
    LiveTrack,
    boxes,
    hevc_codec_string,
    live_fragment,
    live_track,
)
from vmsd.ingest.hub import VIDEO, CameraHub, RelayPacket, StreamConfig
from vmsd.storage.writer import StreamTemplate, init_segment

CLIPS = "/tmp/vmsd-test-clips"
WALL_BASE_NS = 1_785_000_000_123_456_789  # an arbitrary wall-clock start (2026), not a tick multiple
PROFILE_IDC = {"Baseline": 66, "Constrained Baseline": 66, "Main": 77, "High": 100}


def relay_items(clip: Clip, frames: int | None = None) -> tuple[StreamConfig, list[RelayPacket]]:
    """What the recorder would give the hub for this clip: its StreamConfig (with the recorder's
    init segment, built from the in-band parameter sets) and its video packets in wall time."""
    with av.open(str(clip.video)) as container:
        stream = container.streams.video[0]
        codec = stream.codec_context.name
        data = [(bytes(p), bool(p.is_keyframe)) for p in container.demux(stream) if p.size]
        extradata = parameter_sets(codec, data[0][0])
        assert extradata is not None and data[0][1]
        template = StreamTemplate(stream, extradata=extradata, width=clip.width, height=clip.height)
        init = init_segment([template])
    config = StreamConfig(1, codec, clip.width, clip.height, extradata, "", 0, 0, b"", init)
    step_ns = 1_000_000_000 // clip.fps
    packets = []
    for i, (payload, key) in enumerate(data[:frames]):
        at_ns = WALL_BASE_NS + i * step_ns
        packets.append(RelayPacket(VIDEO, payload, at_ns, at_ns, key, 1, 0, step_ns if i else 0))
    return config, packets


def ffprobe(path: Path) -> dict:  # type: ignore[type-arg]
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-show_packets", "-of", "json", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)  # type: ignore[no-any-return]


@pytest.mark.parametrize("codec", ["h264", "h265"])
def test_init_and_fragments_are_a_file_ffprobe_reads_frame_for_frame(codec: str, tmp_path: Path) -> None:
    clip = make_clip(CLIPS, codec=codec, width=320, height=240, fps=25, gop_s=1, seconds=3)
    config, packets = relay_items(clip)
    track = LiveTrack.of(config)
    path = tmp_path / "live.mp4"
    path.write_bytes(track.init_segment + b"".join(track.fragment(p) for p in packets))

    probe = ffprobe(path)
    (video,) = probe["streams"]
    assert video["codec_name"] == ("h264" if codec == "h264" else "hevc")
    assert video["codec_tag_string"] == ("avc1" if codec == "h264" else "hvc1")
    assert (video["width"], video["height"]) == (320, 240)
    read = probe["packets"]
    assert len(read) == len(packets) == clip.fps * 3
    for got, sent in zip(read, packets, strict=True):
        assert int(got["dts"]) == sent.dts_ns * TIMESCALE // 1_000_000_000
        assert int(got["pts"]) == int(got["dts"])  # no B-frames in the clips
        assert got["flags"].startswith("K") == sent.keyframe
    assert [int(p["duration"]) for p in read[1:]] == [TIMESCALE // clip.fps] * (len(read) - 1)
    # Every frame decodes (the parameter sets come from the sample entry alone).
    decode = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-f", "framemd5", "-"], capture_output=True, text=True, check=False
    )
    assert decode.returncode == 0 and decode.stderr == ""
    assert sum(1 for line in decode.stdout.splitlines() if not line.startswith("#")) == len(packets)


def test_fragments_are_moof_then_mdat_and_samples_carry_no_parameter_sets() -> None:
    clip = make_clip(CLIPS, codec="h264", width=320, height=240, fps=25, gop_s=1, seconds=3)
    config, packets = relay_items(clip, frames=2)
    track = LiveTrack.of(config)
    assert [kind for kind, _, _ in boxes(track.init_segment)] == [b"ftyp", b"moov"]
    fragment = track.fragment(packets[0])
    (moof, _, _), (mdat, start, end) = list(boxes(fragment))
    assert (moof, mdat) == (b"moof", b"mdat")
    sample = fragment[start:end]
    nal_types = []
    while sample:
        size = int.from_bytes(sample[:4], "big")
        nal_types.append(sample[4] & 0x1F)
        sample = sample[4 + size :]
    assert 7 not in nal_types and 8 not in nal_types and 9 not in nal_types  # in the avcC instead
    assert 5 in nal_types  # the IDR slice


def test_codec_strings_of_real_clips_match_what_ffprobe_reports() -> None:
    h264 = make_clip(CLIPS, codec="h264", width=320, height=240, fps=25, gop_s=1, seconds=3)
    h265 = make_clip(CLIPS, codec="h265", width=320, height=240, fps=25, gop_s=1, seconds=3)
    for clip in (h264, h265):
        config, _ = relay_items(clip, frames=1)
        probe = subprocess.run(
            ["ffprobe", "-v", "error", "-show_streams", "-of", "json", str(clip.video)],
            capture_output=True,
            text=True,
            check=True,
        )
        stream = json.loads(probe.stdout)["streams"][0]
        codec = live_track(config).codec
        if clip.codec == "h264":
            # avc1.PPCCLL: profile_idc, constraint flags, level_idc
            assert codec[:7] == f"avc1.{PROFILE_IDC[stream['profile']]:02x}"
            assert int(codec[-2:], 16) == stream["level"]
        else:
            # Main profile (1), compatible with Main and Main 10 (flags 1 and 2, bit-reversed: 6),
            # Main tier, level_idc as ffprobe reads it, progressive/frame-only constraint flags.
            assert stream["profile"] == "Main"
            assert codec.startswith(f"hvc1.1.6.L{stream['level']}.")
            assert codec.split(".")[4] in ("90", "B0")


def test_hevc_codec_string_covers_profile_space_tier_and_trailing_zero_constraints() -> None:
    record = bytearray(23)
    record[0] = 1
    record[1] = (1 << 6) | (1 << 5) | 2  # profile space 1 (A), high tier, profile 2 (Main 10)
    record[2:6] = (0x40000000).to_bytes(4, "big")  # compatibility flag 1 only -> reversed 0x2
    record[6:12] = bytes([0xB0, 0, 0x01, 0, 0, 0])
    record[12] = 153
    assert hevc_codec_string(bytes(record)) == "hvc1.A2.2.H153.B0.0.1"


def test_a_stream_without_parameter_sets_is_refused_with_a_reason() -> None:
    config = StreamConfig(1, "mjpeg", 320, 240, b"", "", 0, 0, b"", b"")
    with pytest.raises(LiveFormatError, match=r"H\.264 or H\.265"):
        LiveTrack.of(config)
    with pytest.raises(LiveFormatError, match="moov"):
        LiveTrack.of(StreamConfig(1, "h264", 320, 240, b"", "", 0, 0, b"", b""))


async def test_two_viewers_are_sent_the_very_same_fragment_object() -> None:
    clip = make_clip(CLIPS, codec="h264", width=320, height=240, fps=25, gop_s=1, seconds=3)
    config, packets = relay_items(clip, frames=5)
    hub = CameraHub("cam")
    hub.configure(config)
    loop = asyncio.get_running_loop()
    first, second = hub.subscribe(loop), hub.subscribe(loop)
    for packet in packets:
        hub.publish(RelayPacket(**{**packet.__dict__, "received_mono_ns": time.monotonic_ns(), "encoded": {}}))
    sent: list[list[bytes]] = [[], []]
    for index, subscriber in enumerate((first, second)):
        got_config = await subscriber.next()
        assert isinstance(got_config, StreamConfig)
        track = live_track(got_config)
        for _ in packets:
            item = await subscriber.next()
            assert isinstance(item, RelayPacket)
            sent[index].append(live_fragment(track, item))
    assert live_track(config) is track
    assert all(a is b for a, b in zip(sent[0], sent[1], strict=True))
    assert sent[0][0] == LiveTrack.of(config).fragment(packets[0])  # and it is the frame's fragment
