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
