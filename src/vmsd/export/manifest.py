"""The export manifest: what a bundle claims, in a schema a verifier can check field by field.

`manifest.json` is UTF-8 JSON written once; `manifest.sig` is the recorder's Ed25519 signature
over exactly those bytes (no canonicalisation: the recipient verifies the file as it is, with
openssl if need be). Every instant is integer nanoseconds since the Unix epoch (UTC) in a field
ending in `_ns`; ISO-8601 strings beside them are for people and carry no extra authority.

The hash-chain rule (checked by verify.py, documented in README.txt of every bundle):
  `segments` lists the source segments in time order, each with the SHA-256 the recorder computed
  while writing it and `prev_sha256`, the hash of the camera's previous segment at the time. For
  every segment after the first, `prev_sha256` must equal the previous listed segment's `sha256`,
  or lead to it through erasure tombstones listed in `erased_segments` (each tombstone's own
  `prev_sha256` continuing the walk) — so footage removed in between is either shown as erased,
  with its hash and reason, or the chain breaks. The first segment's `prev_sha256` links to
  footage outside the export; it is recorded so that two exports of the same camera can be
  joined. A break the recorder itself found in its catalogue is declared in `chain_breaks` (and
  reported by verify as a warning); any other break fails verification.

A segment still being written when the export was made (a range reaching `now`) may be listed
last, with `open_at_export: true`: its `sha256`, `bytes` and `end_ns` cover its complete fragments
at that moment — a prefix of the file the recorder finishes later, so the recorder's final hash
of that segment differs, and the next segment's `prev_sha256` links to the finished file, not to
this prefix. The requested time after it is a gap with reason `recording_in_progress`. The field
is written only when true, so bundles without an open segment read exactly as before.

Bumping `format` is required for any change a v1 verifier would misread; v1 rejects unknown
fields so that nothing unsigned-for can hide in a bundle it accepts.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from vmsd.system_facts import ClockStatus  # the manifest records the clock as the machine reports it
from vmsd.units import NS_PER_S

FORMAT: Final = "vmsd-export/1"
MANIFEST_NAME = "manifest.json"
SIGNATURE_NAME = "manifest.sig"
PUBLIC_KEY_NAME = "recorder-public-key.pem"
README_NAME = "README.txt"
SUMS_NAME = "SHA256SUMS"

Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
# A path inside the bundle: relative, every component starting with a letter, digit, '_' or '-'
# (so never '.', '..' or absolute) — a verifier opens these names.
BundleName = Annotated[
    str, StringConstraints(max_length=200, pattern=r"^[A-Za-z0-9_-][A-Za-z0-9._-]*(/[A-Za-z0-9_-][A-Za-z0-9._-]*)*$")
]
NonNegative = Annotated[int, Field(ge=0)]

# File roles, so a recipient knows which file is what.
Role = Literal["master", "original_segment", "redacted_working_copy", "public_key", "readme", "checksums"]
ROLE_MASTER: Final = "master"  # the footage remuxed without re-encoding: the evidential master
ROLE_ORIGINAL: Final = "original_segment"  # a recorded segment file, bit for bit
ROLE_REDACTED: Final = "redacted_working_copy"  # re-encoded with privacy masks: a processed copy
ROLE_PUBLIC_KEY: Final = "public_key"
ROLE_README: Final = "readme"
ROLE_SUMS: Final = "checksums"
ROLES = (ROLE_MASTER, ROLE_ORIGINAL, ROLE_REDACTED, ROLE_PUBLIC_KEY, ROLE_README, ROLE_SUMS)


def iso_ns(value_ns: int) -> str:
    """ISO-8601 UTC with nanoseconds: 2026-01-02T00:00:13.960000000Z."""
    seconds, nanos = divmod(value_ns, NS_PER_S)
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos:09d}Z"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Recorder(_Model):
    id: str
    key_fingerprint_sha256: Sha256  # sha256 of the raw 32-byte Ed25519 public key
    software: str


class Camera(_Model):
    id: str
    name: str
    location: str


class TimeSpan(_Model):
    start_ns: int
    end_ns: int
    start: str  # ISO-8601 UTC, for people
    end: str


# The requested time after the complete fragments of the segment being written (see above).
GAP_RECORDING_IN_PROGRESS: Final = "recording_in_progress"


class Gap(_Model):
    start_ns: int
    end_ns: int
    # The catalogue's reason (camera_offline, stall, restart, …), not_recorded (nothing was being
    # recorded) or recording_in_progress.
    reason: str
    detail: str


class Segment(_Model):
    start_ns: int
    end_ns: int
    bytes: NonNegative
    sha256: Sha256
    prev_sha256: Sha256
    recorded_path: str  # where it lives on the recorder (relative to the storage root)
    file: BundleName | None  # its bit-exact copy in this bundle, when originals are included
    # Still being written at export time: the fields above describe its complete fragments then.
    open_at_export: bool = Field(default=False, exclude_if=lambda value: not value)


class ErasedSegment(_Model):
    start_ns: int
    end_ns: int
    bytes: NonNegative
    sha256: Sha256
    prev_sha256: Sha256
    erased_ns: int
    reason: str


class ChainBreak(_Model):
    index: NonNegative  # segments[index] does not link to segments[index - 1]
    detail: str


class TimelinePiece(_Model):
    """A stretch of continuous footage: master time `master_offset_ns` is wall time `start_ns`."""

    master_offset_ns: NonNegative
    start_ns: int
    end_ns: int


class Master(_Model):
    file: BundleName
    container: Literal["mp4"]
    start_ns: int  # wall time of master time 0 (the first frame: a keyframe at/before the request)
    start: str
    end_ns: int  # wall time the last frame ends
    duration_ns: NonNegative  # master timeline length (gaps are cut out, see timeline)
    creation_time: str  # what the MP4's creation_time metadata says (second precision in mvhd)
    video_codec: str
    width: NonNegative
    height: NonNegative
    has_audio: bool
    video_frames: NonNegative
    timeline: list[TimelinePiece]


class Redacted(_Model):
    file: BundleName
    source: BundleName  # the master it was made from
    masks: list[list[tuple[float, float]]]  # normalised polygons, as configured for the camera
    encoder: str
    note: str


class File(_Model):
    name: BundleName
    role: Role
    bytes: NonNegative
    sha256: Sha256


class CameraClockReading(_Model):
    """The camera's own clock against the recorder's, from its RTCP sender reports (cameras
    recorded with source = "native"), as the recorder read it from `time_ns` on."""

    time_ns: int
    time: str
    status: Literal["ok", "offset", "stepped", "unknown"]
    offset_ns: int | None  # camera minus recorder; None when unknown
    reason: str


class Operator(_Model):
    principal: str
    role: str


class Manifest(_Model):
    format: Literal["vmsd-export/1"]
    export_id: str
    recorder: Recorder
    camera: Camera
    requested: TimeSpan
    covered: list[TimeSpan]  # footage actually in the master(s), in wall time
    gaps: list[Gap]  # every interval of the requested range without footage, with its reason
    masters: list[Master] = Field(min_length=1)
    redacted: list[Redacted]
    segments: list[Segment] = Field(min_length=1)
    erased_segments: list[ErasedSegment]
    chain_breaks: list[ChainBreak]
    files: list[File] = Field(min_length=1)
    operator: Operator
    case_ref: str = Field(min_length=1)
    reason: str = Field(min_length=1)
    recipient: str
    exported_at_ns: int
    exported_at: str
    hold_id: int | None  # the evidence hold placed on the exported range, if any
    clock: ClockStatus
    # The camera's clock over the requested range: the reading in force at its start, then every
    # one inside it. Written only when the recorder has readings (source = "native" cameras), so
    # bundles of other cameras read exactly as before. Footage times are the recorder's either way.
    camera_clock: list[CameraClockReading] = Field(default_factory=list, exclude_if=lambda value: not value)


def chain_breaks(segments: list[Segment], erased: list[ErasedSegment]) -> list[ChainBreak]:
    """Where the listed segments fail the chain rule (module docstring); [] when they all link.

    Pure: used by the exporter (to declare breaks its own catalogue has) and by the verifier.
    """
    tombstones = {t.sha256: t for t in erased}
    breaks: list[ChainBreak] = []
    for index in range(1, len(segments)):
        expected = segments[index - 1].sha256
        link = segments[index].prev_sha256
        steps = 0
        # Walk back through erased segments until the previous listed one is reached.
        while link != expected and link in tombstones and steps <= len(tombstones):
            link = tombstones[link].prev_sha256
            steps += 1
        if link != expected:
            breaks.append(
                ChainBreak(
                    index=index,
                    detail=(
                        f"segments[{index}].prev_sha256 {segments[index].prev_sha256[:16]}… is not the sha256 of "
                        f"segments[{index - 1}] ({expected[:16]}…) nor reached from it through erased_segments"
                    ),
                )
            )
    return breaks


def time_span(start_ns: int, end_ns: int) -> TimeSpan:
    return TimeSpan(start_ns=start_ns, end_ns=end_ns, start=iso_ns(start_ns), end=iso_ns(end_ns))


def manifest_json(manifest: Manifest) -> bytes:
    """The bytes written to manifest.json (and signed): UTF-8 JSON, fields in schema order."""
    return (json.dumps(manifest.model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n").encode("utf-8")
