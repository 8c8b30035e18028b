"""RecordingService: search pages, timeline, and a review audited with what it read."""

from __future__ import annotations

import pytest

from tests.services.conftest import principal
from tests.support.rpc import MID, RunningDaemon, S
from vmsd.errors import ErrorKind, VmsdError
from vmsd.recordings.search import Gap, Span
from vmsd.services.activity import Activity


def test_search_returns_time_ordered_spans_and_gaps_a_page_at_a_time(running: RunningDaemon) -> None:
    recordings = running.daemon.services.recordings
    viewer = principal("viewer")
    everything = running.run(recordings.search(viewer, Activity(), "in-cam", MID - 5 * S, MID + 30 * S))
    assert not everything.more
    assert [type(i) for i in everything.items] == [Span, Gap, Span, Gap]
    first = running.run(recordings.search(viewer, Activity(), "in-cam", MID - 5 * S, MID + 30 * S, page_size=1))
    assert first.items == everything.items[:1] and first.more
    rest = running.run(
        recordings.search(
            viewer, Activity(), "in-cam", MID - 5 * S, MID + 30 * S, page_token=str(first.items[0].end_ns)
        )
    )
    assert rest.items == everything.items[1:]


def test_search_outside_the_scope_is_denied_before_any_lookup(running: RunningDaemon) -> None:
    activity = Activity()
    with pytest.raises(VmsdError) as caught:
        running.run(running.daemon.services.recordings.search(principal("viewer"), activity, "out-cam", MID, MID + S))
    assert caught.value.kind is ErrorKind.PERMISSION_DENIED
    assert (activity.camera_id, activity.start_ns, activity.end_ns) == ("out-cam", MID, MID + S)


def test_a_review_streams_footage_and_its_activity_records_reason_and_bytes(running: RunningDaemon) -> None:
    activity = Activity()

    async def watch() -> int:
        review = await running.daemon.services.recordings.review(
            principal("viewer"), activity, "in-cam", MID - 5 * S, MID + 5 * S, "incident 42"
        )
        total = 0
        async for data in review.chunks:
            total += len(data)
        return total

    total = running.run(watch())
    assert total > 0
    assert activity.audited and activity.reason == "incident 42"
    assert activity.detail["bytes"] == total and activity.detail["video_frames"] > 0


def test_a_timeline_covers_the_utc_day_in_buckets(running: RunningDaemon) -> None:
    timeline = running.run(
        running.daemon.services.recordings.timeline(principal("viewer"), Activity(), "in-cam", "2026-01-02")
    )
    assert timeline.day_start_ns == MID and timeline.bucket_ns == 60 * S
    assert len(timeline.coverage_per_mille) == 1440
    # MID+0..+7 s and +13.96..+21.96 s recorded in the first minute; nothing after it.
    assert timeline.coverage_per_mille[0] == 250 and set(timeline.coverage_per_mille[1:]) == {0}
    with pytest.raises(VmsdError) as caught:
        running.run(running.daemon.services.recordings.timeline(principal("viewer"), Activity(), "in-cam", "2.1.26"))
    assert caught.value.message == "day '2.1.26' must be a UTC date as YYYY-MM-DD"
