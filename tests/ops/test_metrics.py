"""The Prometheus endpoint: series read from status snapshots at scrape time, event instruments,
and the `[metrics] listen` rules."""

from __future__ import annotations

import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from vmsd.config import MetricsConfig
from vmsd.ingest.recorder import CameraState, CameraStatus
from vmsd.ops.metrics import CameraSample, EventCounts, Metrics, SiteSample, Sources
from vmsd.retention.task import RetentionStatus


def scrape(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_series_follow_the_status_snapshots_and_events() -> None:
    status = CameraStatus("cam-1", state=CameraState.RECORDING, video_packets=10, bytes=5000, reconnects=2, gaps=1)
    retention = RetentionStatus(erased_segments_total=3, erased_bytes_total=900, free_bytes=10**9, total_bytes=10**10)
    metrics = Metrics()
    metrics.add_sources(
        Sources(
            cameras=lambda: [CameraSample("cam-1", status, 4)],
            retention=lambda: retention,
            function_check=lambda: None,
            events=lambda: EventCounts(2, 1, [("https://***@psim.example/hook", 7, 3)]),
        )
    )
    metrics.start("127.0.0.1", 0)
    try:
        first = scrape(metrics.port)
        assert first[("vmsd_events_dropped_total", frozenset())] == 2
        assert first[("vmsd_events_not_stored_total", frozenset())] == 1
        hook = frozenset({("url", "https://***@psim.example/hook")})
        assert (first[("vmsd_webhook_deliveries_total", hook)], first[("vmsd_webhook_failures_total", hook)]) == (7, 3)
        cam = frozenset({("camera_id", "cam-1")})
        assert first[("vmsd_camera_video_packets_total", cam)] == 10
        assert first[("vmsd_camera_received_bytes_total", cam)] == 5000
        assert first[("vmsd_camera_reconnects_total", cam)] == 2
        assert first[("vmsd_camera_gaps_total", cam)] == 1
        assert first[("vmsd_camera_recording", cam)] == 1
        assert first[("vmsd_camera_state", cam | {("state", "recording")})] == 1
        assert first[("vmsd_camera_state", cam | {("state", "offline")})] == 0
        assert first[("vmsd_relay_subscribers", cam)] == 4
        assert first[("vmsd_retention_erased_segments_total", frozenset())] == 3
        assert first[("vmsd_storage_free_bytes", frozenset())] == 10**9
        assert not any(name.startswith("vmsd_function_check") for name, _ in first)

        status.video_packets, status.state = 60, CameraState.OFFLINE
        metrics.observe_rpc("/vmsd.v1.CameraService/ListCameras", "OK", 2_000_000)
        metrics.observe_export("OK", 30_000_000_000)
        second = scrape(metrics.port)
        assert second[("vmsd_camera_video_packets_total", cam)] == 60
        assert second[("vmsd_camera_recording", cam)] == 0
        method = frozenset({("method", "/vmsd.v1.CameraService/ListCameras"), ("code", "OK")})
        assert second[("vmsd_rpc_requests_total", method)] == 1
        assert (
            second[("vmsd_rpc_duration_seconds_count", frozenset({("method", "/vmsd.v1.CameraService/ListCameras")}))]
            == 1
        )
        assert second[("vmsd_export_duration_seconds_sum", frozenset({("outcome", "OK")}))] == 30.0
    finally:
        metrics.close()
    with pytest.raises(OSError):
        scrape(metrics.port)


def test_two_daemons_in_one_process_have_their_own_registries() -> None:
    a, b = Metrics(), Metrics()
    a.observe_rpc("/x", "OK", 1)
    assert b.rpc_requests.labels("/x", "OK")._value.get() == 0


@pytest.mark.parametrize(
    ("listen", "address"),
    [("9108", ("127.0.0.1", 9108)), ("127.0.0.1:9108", ("127.0.0.1", 9108)), ("[::1]:9108", ("::1", 9108))],
)
def test_listen_forms(listen: str, address: tuple[str, int]) -> None:
    assert MetricsConfig.model_validate({"listen": listen}).address == address


def test_off_by_default_and_bad_addresses_are_named() -> None:
    assert MetricsConfig().address is None
    with pytest.raises(ValueError, match="expected HOST:PORT"):
        MetricsConfig.model_validate({"listen": "localhost"})


def test_site_series_appear_only_with_a_site() -> None:
    retention = RetentionStatus()
    site = SiteSample(owned=5, fenced=False, unfenced_cameras=5, failovers=3, moves=1, unfenced_runs=4, alarms=2)
    alone, member = Metrics(), Metrics()
    alone.add_sources(Sources(cameras=list, retention=lambda: retention, function_check=lambda: None))
    member.add_sources(
        Sources(cameras=list, retention=lambda: retention, function_check=lambda: None, site=lambda: site)
    )
    alone.start("127.0.0.1", 0)
    member.start("127.0.0.1", 0)
    try:
        assert not any(name.startswith("vmsd_site") for name, _ in scrape(alone.port))
        found = scrape(member.port)
        none = frozenset()
        assert found[("vmsd_site_owned_cameras", none)] == 5 and found[("vmsd_site_fenced", none)] == 0
        assert found[("vmsd_site_failovers_total", none)] == 3 and found[("vmsd_site_moves_total", none)] == 1
        assert found[("vmsd_site_unfenced_runs_total", none)] == 4
        assert found[("vmsd_site_unfenced_cameras", none)] == 5 and found[("vmsd_site_alarms", none)] == 2
    finally:
        alone.close()
        member.close()
