"""The catalogue's own vocabulary: segment states and gap reasons are enums with fixed values."""

from __future__ import annotations

from vmsd.storage.catalogue import GapReason, SegmentState
from vmsd.storage.store import Storage

S = 1_000_000_000
T = 1_767_225_600 * S


def test_stored_and_wire_values_never_change() -> None:
    # These strings are in every catalogue on disk and in every Search/Timeline answer.
    assert {s.name: s.value for s in SegmentState} == {
        "WRITING": "writing",
        "COMPLETE": "complete",
        "GARBAGE": "garbage",
    }
    assert {r.name: r.value for r in GapReason} == {
        "CAMERA_OFFLINE": "camera_offline",
        "STALL": "stall",
        "RESTART": "restart",
        "CRASH": "crash",
        "CLOCK_STEP": "clock_step",
        "STREAM_ERROR": "stream_error",
        "STORAGE_ERROR": "storage_error",
        "FAILOVER": "failover",
        "DISABLED": "camera_disabled",
        "UNKNOWN": "unknown",
    }


def test_rows_come_back_with_their_state_as_a_segment_state(storage: Storage) -> None:
    catalogue = storage.catalogue
    catalogue.upsert_camera("cam", "", "", 0)
    catalogue.insert_segments_bulk(
        [("cam", None, "recordings/cam/a.mp4", T, T + S, 10, "1" * 64, "0" * 64, "h264", 2, 2, False, 1)]
    )
    [row] = catalogue.segments("cam")
    assert row.state is SegmentState.COMPLETE
    assert catalogue.segments_in_state(SegmentState.COMPLETE) == [row]
    catalogue.open_gap("cam", T + S, GapReason.STALL, "no video")
    [gap] = catalogue.gaps("cam")
    assert gap.reason == "stall" == GapReason.STALL


def test_small_rows_are_named(storage: Storage) -> None:
    catalogue = storage.catalogue
    catalogue.upsert_camera("cam", "", "", 0)
    run_id = catalogue.begin_run("cam", T)
    [run] = catalogue.open_runs()
    assert (run.run_id, run.camera_id, run.start_ns) == (run_id, "cam", T)
    catalogue.put_api_camera("cam2", "{}", T)
    [api] = catalogue.api_cameras()
    assert (api.camera_id, api.spec_json) == ("cam2", "{}")


def test_failover_gaps_of_a_takeover_are_opened_together_and_never_over_held_footage(storage: Storage) -> None:
    catalogue = storage.catalogue
    for camera in ("held", "fresh", "crashed"):
        catalogue.upsert_camera(camera, "", "", 0)
    # "held": this recorder has footage up to T+10 s; the lost owner's hole is said to start at T+5 s.
    catalogue.insert_segments_bulk(
        [("held", None, "recordings/held/a.mp4", T, T + 10 * S, 10, "1" * 64, "0" * 64, "h264", 2, 2, False, 1)]
    )
    # "crashed": this recorder left a crash gap open when it last recorded the camera.
    catalogue.open_gap("crashed", T, GapReason.CRASH, "killed")
    catalogue.open_failover_gaps(
        [("held", T + 5 * S, "rec-a lost"), ("fresh", T + 5 * S, "rec-a lost"), ("crashed", T + 7 * S, "rec-a lost")]
    )
    [held] = catalogue.gaps("held")
    assert (held.start_ns, held.end_ns, held.reason, held.detail) == (
        T + 10 * S,
        None,
        GapReason.FAILOVER,
        "rec-a lost",
    )
    [fresh] = catalogue.gaps("fresh")
    assert (fresh.start_ns, fresh.end_ns, fresh.reason) == (T + 5 * S, None, GapReason.FAILOVER)
    crash, failover = sorted(catalogue.gaps("crashed"), key=lambda g: g.start_ns)
    assert (crash.reason, crash.start_ns, crash.end_ns) == (GapReason.CRASH, T, T + 7 * S)
    assert (failover.reason, failover.start_ns, failover.end_ns) == (GapReason.FAILOVER, T + 7 * S, None)
