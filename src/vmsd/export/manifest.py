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

**vmsd-export/2: footage of several recorders of a site** (an export across a failover). The
bundle is signed by the recorder that built it; `recorders` names every recorder whose footage
it holds (and `missing` any recorder whose part could not be fetched, when a partial export was
accepted). Every segment, erased segment and master names its `recorder`; `segments` is in time
order across recorders, and the chain rule holds per recorder: each segment links to the
previous listed segment OF THE SAME RECORDER (each recorder hashes its own chain). Time two
recorders both recorded (an unfenced run during a partition) is in both recorders' segments and
masters, and listed in `overlaps` — never merged. The masters are per recorder
(`master-<recorder>.mp4`, …). A bundle of one recorder's footage is written as vmsd-export/1,
exactly as before.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from vmsd.system_facts import ClockStatus  # the manifest records the clock as the machine reports it
from vmsd.units import NS_PER_S

FORMAT: Final = "vmsd-export/1"
FORMAT_SITE: Final = "vmsd-export/2"  # footage of several recorders of a site (module docstring)
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
    # vmsd-export/2 only: the recorder that recorded it, the ownership epoch of its run (None:
    # recorded outside a site) and whether that run was unfenced (a peer may have recorded too).
    recorder: str = Field(default="", exclude_if=lambda value: not value)
    epoch: int | None = Field(default=None, exclude_if=lambda value: value is None)
    unfenced: bool = Field(default=False, exclude_if=lambda value: not value)


class ErasedSegment(_Model):
    start_ns: int
    end_ns: int
    bytes: NonNegative
    sha256: Sha256
    prev_sha256: Sha256
    erased_ns: int
    reason: str
    recorder: str = Field(default="", exclude_if=lambda value: not value)  # vmsd-export/2


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
    recorder: str = Field(default="", exclude_if=lambda value: not value)  # vmsd-export/2: whose footage


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


class RecorderPart(_Model):
    """vmsd-export/2: one recorder's part of the footage and what was checked of it."""

    id: str
    # Its export signing key (as it reported it); None when it has none. Informational: the
    # bundle is signed by `recorder`, which hashed every byte of this part against this
    # recorder's catalogue as it arrived.
    key_fingerprint_sha256: Sha256 | None
    source: Literal["local", "peer"]  # this bundle's own recorder, or fetched from a peer
    segments: NonNegative
    bytes: NonNegative
    start_ns: int  # its first segment's start
    end_ns: int  # its last segment's end
    epochs: list[int]  # ownership epochs of its runs (empty: recorded outside a site)
    unfenced: bool  # some of it was recorded unfenced (see overlaps)
    chain: Literal["linked", "broken"]  # its segments' hash chain (breaks in chain_breaks)
    masters: list[BundleName]


class Overlap(_Model):
    """vmsd-export/2: time recorded by more than one recorder; each recorder's footage of it is in
    the bundle (segments and masters), never merged."""

    start_ns: int
    end_ns: int
    start: str
    end: str
    recorders: list[str]


class MissingPart(_Model):
    """vmsd-export/2: a recorder whose part could not be fetched (a partial export was asked for)."""

    recorder: str
    reason: str
    # The time no recorder in the bundle covers, where its footage may be; empty: it could only
    # hold footage of time the bundle already covers.
    spans: list[TimeSpan]


class Operator(_Model):
    principal: str
    role: str


class Manifest(_Model):
    format: Literal["vmsd-export/1", "vmsd-export/2"]
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
    # vmsd-export/2 only (module docstring): every recorder whose footage is in the bundle, the
    # time two of them both recorded, and the recorders whose part is missing.
    recorders: list[RecorderPart] = Field(default_factory=list, exclude_if=lambda value: not value)
    overlaps: list[Overlap] = Field(default_factory=list, exclude_if=lambda value: not value)
    missing: list[MissingPart] = Field(default_factory=list, exclude_if=lambda value: not value)


def chain_breaks(segments: list[Segment], erased: list[ErasedSegment]) -> list[ChainBreak]:
    """Where the listed segments fail the chain rule (module docstring); [] when they all link.
    Per recorder: each segment links to the previous one of its `recorder` (in vmsd-export/1
    every segment has the same, empty, recorder: the previous listed segment).

    Pure: used by the exporter (to declare breaks its own catalogue has) and by the verifier.
    """
    tombstones = {(t.recorder, t.sha256): t for t in erased}
    breaks: list[ChainBreak] = []
    previous: dict[str, int] = {}
    for index, segment in enumerate(segments):
        before = previous.get(segment.recorder)
        previous[segment.recorder] = index
        if before is None:
            continue
        expected = segments[before].sha256
        link = segment.prev_sha256
        steps = 0
        # Walk back through erased segments until the previous listed one is reached.
        while link != expected and (segment.recorder, link) in tombstones and steps <= len(tombstones):
            link = tombstones[(segment.recorder, link)].prev_sha256
            steps += 1
        if link != expected:
            whose = f" (recorder {segment.recorder})" if segment.recorder else ""
            breaks.append(
                ChainBreak(
                    index=index,
                    detail=(
                        f"segments[{index}].prev_sha256 {segment.prev_sha256[:16]}… is not the sha256 of "
                        f"segments[{before}] ({expected[:16]}…) nor reached from it through erased_segments{whose}"
                    ),
                )
            )
    return breaks


def overlaps(segments: list[Segment]) -> list[Overlap]:
    """The time more than one recorder's listed segments cover (pure; [] in vmsd-export/1). A
    sweep over the segments' edges (a segment ending where another begins does not overlap it)."""
    events = sorted([(s.end_ns, -1, s.recorder) for s in segments] + [(s.start_ns, 1, s.recorder) for s in segments])
    active: Counter[str] = Counter()
    found: list[Overlap] = []
    for (time_ns, step, recorder), following in zip(events, [*events[1:], None], strict=True):
        active[recorder] += step
        if following is None or following[0] == time_ns:
            continue
        recorders = sorted(r for r, count in active.items() if count > 0)
        if len(recorders) < 2:
            continue
        end_ns = following[0]
        last = found[-1] if found else None
        if last is not None and last.end_ns == time_ns and last.recorders == recorders:
            found[-1] = last.model_copy(update={"end_ns": end_ns, "end": iso_ns(end_ns)})
        else:
            found.append(
                Overlap(start_ns=time_ns, end_ns=end_ns, start=iso_ns(time_ns), end=iso_ns(end_ns), recorders=recorders)
            )
    return found


def time_span(start_ns: int, end_ns: int) -> TimeSpan:
    return TimeSpan(start_ns=start_ns, end_ns=end_ns, start=iso_ns(start_ns), end=iso_ns(end_ns))


def manifest_json(manifest: Manifest) -> bytes:
    """The bytes written to manifest.json (and signed): UTF-8 JSON, fields in schema order."""
    return (json.dumps(manifest.model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n").encode("utf-8")
