"""Prometheus metrics (`[metrics] listen`; off when absent), with prometheus-client.

Two kinds of series:
- read at scrape time from the components' own status snapshots (`DaemonCollector`): recorder
  state and counters, relay subscribers, retention erasures, disk space, function-check verdicts.
  Nothing is counted per packet on behalf of metrics; a scrape copies a few status structs.
- instruments that the components update as events happen (`Metrics.observe_rpc`,
  `Metrics.observe_export`, `Metrics.observe_live_send`): RPC counts and latencies, export
  durations, live frames' delay from arrival to send (per frame per viewer: a few µs each).

The registry is per daemon (not prometheus-client's global one), so tests can run several
daemons in one process. The HTTP server is prometheus-client's own (a WSGI thread).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from vmsd.ingest.recorder import CameraState, CameraStatus
from vmsd.ingest.rtsp.clock import ClockStatus
from vmsd.log import get_logger
from vmsd.retention.task import RetentionStatus
from vmsd.units import NS_PER_S

log = get_logger(component="metrics")

_STATES = [s.value for s in CameraState]
_CLOCK_STATUSES = [s.value for s in ClockStatus]


@dataclass(frozen=True)
class CameraSample:
    camera_id: str
    status: CameraStatus
    relay_subscribers: int


@dataclass(frozen=True)
class EventCounts:
    """The event bus's losses and each webhook's deliveries (url without credentials, delivered,
    failed attempts)."""

    dropped: int
    not_stored: int
    webhooks: list[tuple[str, int, int]]


@dataclass(frozen=True)
class SiteSample:
    """This recorder's part in a site ([site]): vmsd.site.coordinator's figures."""

    owned: int
    fenced: bool
    unfenced_cameras: int
    failovers: int  # cameras taken over from a lost owner, since start
    moves: int  # cameras claimed by an operator's move or failback, since start
    unfenced_runs: int  # runs marked unfenced, since start
    alarms: int


@dataclass(frozen=True)
class Sources:
    """What the collector reads at scrape time (callables, so it never holds stale objects)."""

    cameras: Callable[[], list[CameraSample]]
    retention: Callable[[], RetentionStatus]
    function_check: Callable[[], Any]  # the latest FunctionCheckReport or None
    events: Callable[[], EventCounts] | None = None
    site: Callable[[], SiteSample] | None = None


class DaemonCollector(Collector):
    def __init__(self, sources: Sources) -> None:
        self._sources = sources

    def collect(self) -> Iterator[Metric]:
        yield from self._cameras(self._sources.cameras())
        yield from self._retention(self._sources.retention())
        yield from self._function_check(self._sources.function_check())
        if self._sources.events is not None:
            yield from self._events(self._sources.events())
        if self._sources.site is not None:
            yield from self._site(self._sources.site())

    @staticmethod
    def _site(sample: SiteSample) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "vmsd_site_owned_cameras", "Cameras this recorder owns (records) in the site", value=sample.owned
        )
        yield GaugeMetricFamily(
            "vmsd_site_fenced", "1 while this recorder's etcd lease is renewed in time", value=int(sample.fenced)
        )
        yield GaugeMetricFamily(
            "vmsd_site_unfenced_cameras", "Cameras recorded past the fencing deadline", value=sample.unfenced_cameras
        )
        yield CounterMetricFamily(
            "vmsd_site_failovers", "Cameras taken over from a lost recorder", value=sample.failovers
        )
        yield CounterMetricFamily("vmsd_site_moves", "Cameras claimed by a move or failback", value=sample.moves)
        yield CounterMetricFamily(
            "vmsd_site_unfenced_runs", "Runs marked as recorded unfenced", value=sample.unfenced_runs
        )
        yield GaugeMetricFamily(
            "vmsd_site_alarms", "Active site alarms (quorum lost, unfenced, duplicate id)", value=sample.alarms
        )

    @staticmethod
    def _events(counts: EventCounts) -> Iterator[Metric]:
        yield CounterMetricFamily(
            "vmsd_events_dropped", "Events lost: the publish queue was full (catalogue stuck)", value=counts.dropped
        )
        yield CounterMetricFamily(
            "vmsd_events_not_stored",
            "Event store attempts the catalogue refused (the events are kept and retried)",
            value=counts.not_stored,
        )
        delivered = CounterMetricFamily("vmsd_webhook_deliveries", "Events delivered to a webhook", labels=["url"])
        failed = CounterMetricFamily("vmsd_webhook_failures", "Failed webhook delivery attempts", labels=["url"])
        for url, ok, failures in counts.webhooks:
            delivered.add_metric([url], ok)
            failed.add_metric([url], failures)
        yield delivered
        yield failed

    @staticmethod
    def _cameras(samples: Iterable[CameraSample]) -> Iterator[Metric]:
        state = GaugeMetricFamily(
            "vmsd_camera_state", "1 for the camera's current recorder state", labels=["camera_id", "state"]
        )
        recording = GaugeMetricFamily("vmsd_camera_recording", "1 while the camera is recording", labels=["camera_id"])
        counters = {
            "bytes": CounterMetricFamily(
                "vmsd_camera_received_bytes", "Bytes of audio and video recorded", labels=["camera_id"]
            ),
            "video": CounterMetricFamily("vmsd_camera_video_packets", "Video frames recorded", labels=["camera_id"]),
            "audio": CounterMetricFamily("vmsd_camera_audio_packets", "Audio packets recorded", labels=["camera_id"]),
            "dropped": CounterMetricFamily(
                "vmsd_camera_dropped_packets",
                "Packets not recorded (garbage, untimed, before the first keyframe); updated per segment",
                labels=["camera_id"],
            ),
            "reconnects": CounterMetricFamily(
                "vmsd_camera_reconnects", "Connection attempts after a failure", labels=["camera_id"]
            ),
            "gaps": CounterMetricFamily(
                "vmsd_camera_gaps", "Recording sessions that ended in a gap", labels=["camera_id"]
            ),
            "segments": CounterMetricFamily("vmsd_camera_segments", "Segments closed", labels=["camera_id"]),
        }
        last_packet = GaugeMetricFamily(
            "vmsd_camera_last_packet_timestamp_seconds", "Wall time of the newest recorded packet", labels=["camera_id"]
        )
        subscribers = GaugeMetricFamily(
            "vmsd_relay_subscribers", "Live relay viewers of the camera", labels=["camera_id"]
        )
        alarms = GaugeMetricFamily("vmsd_camera_alarms", "Active recorder alarms", labels=["camera_id"])
        clock_offset = GaugeMetricFamily(
            "vmsd_camera_clock_offset_seconds",
            "The camera's clock minus the recorder's, from RTCP sender reports (source = native; absent when unknown)",
            labels=["camera_id"],
        )
        clock_status = GaugeMetricFamily(
            "vmsd_camera_clock_status", "1 for the camera clock's current status", labels=["camera_id", "status"]
        )
        for sample in samples:
            status, cid = sample.status, sample.camera_id
            for name in _STATES:
                state.add_metric([cid, name], 1.0 if status.state.value == name else 0.0)
            recording.add_metric([cid], 1.0 if status.state is CameraState.RECORDING else 0.0)
            counters["bytes"].add_metric([cid], status.bytes)
            counters["video"].add_metric([cid], status.video_packets)
            counters["audio"].add_metric([cid], status.audio_packets)
            counters["dropped"].add_metric([cid], status.dropped_packets)
            counters["reconnects"].add_metric([cid], status.reconnects)
            counters["gaps"].add_metric([cid], status.gaps)
            counters["segments"].add_metric([cid], status.segments_written)
            last_packet.add_metric([cid], status.last_packet_ns / NS_PER_S)
            subscribers.add_metric([cid], sample.relay_subscribers)
            alarms.add_metric([cid], len(status.alarms))
            for name in _CLOCK_STATUSES:
                clock_status.add_metric([cid, name], 1.0 if status.camera_clock_status == name else 0.0)
            if status.camera_clock_offset_ns is not None:
                clock_offset.add_metric([cid], status.camera_clock_offset_ns / NS_PER_S)
        yield state
        yield recording
        yield from counters.values()
        yield last_packet
        yield subscribers
        yield alarms
        yield clock_status
        yield clock_offset

    @staticmethod
    def _retention(status: RetentionStatus) -> Iterator[Metric]:
        yield CounterMetricFamily(
            "vmsd_retention_erased_segments", "Segments erased by retention", value=status.erased_segments_total
        )
        yield CounterMetricFamily(
            "vmsd_retention_erased_bytes", "Bytes erased by retention", value=status.erased_bytes_total
        )
        yield GaugeMetricFamily("vmsd_storage_free_bytes", "Free bytes on the storage root", value=status.free_bytes)
        yield GaugeMetricFamily("vmsd_storage_total_bytes", "Size of the storage filesystem", value=status.total_bytes)
        yield GaugeMetricFamily(
            "vmsd_storage_min_free_bytes", "Free space retention keeps (min_free)", value=status.min_free_bytes
        )
        yield GaugeMetricFamily(
            "vmsd_retention_paused", "1 while age-based erasure is paused (clock in doubt)", value=int(status.paused)
        )
        yield GaugeMetricFamily("vmsd_retention_alarms", "Active retention alarms", value=len(status.alarms))

    @staticmethod
    def _function_check(report: Any) -> Iterator[Metric]:
        if report is None:
            return
        rank = {"ok": 0, "warning": 1, "fail": 2}
        overall = GaugeMetricFamily(
            "vmsd_function_check_verdict", "Latest function check: 0 ok, 1 warning, 2 fail", value=rank[report.verdict]
        )
        yield overall
        yield GaugeMetricFamily(
            "vmsd_function_check_timestamp_seconds",
            "When the latest function check finished",
            value=report.finished_ns / NS_PER_S,
        )
        per_camera = GaugeMetricFamily(
            "vmsd_function_check_camera_verdict",
            "Latest function check per camera: 0 ok, 1 warning, 2 fail",
            labels=["camera_id"],
        )
        for camera in report.cameras:
            per_camera.add_metric([camera.camera_id], rank[camera.verdict])
        yield per_camera
        yield GaugeMetricFamily(
            "vmsd_storage_write_latency_seconds",
            "64 KiB write+fsync at the latest function check",
            value=report.disk.write_latency_ns / NS_PER_S,
        )


class Metrics:
    """The daemon's registry and event instruments. Constructor does no I/O; `start()` listens."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.rpc_requests = Counter(
            "vmsd_rpc_requests", "gRPC calls by method and status", ["method", "code"], registry=self.registry
        )
        self.rpc_seconds = Histogram(
            "vmsd_rpc_duration_seconds",
            "gRPC call duration (streams: until the last message)",
            ["method"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60, 600),
            registry=self.registry,
        )
        self.export_seconds = Histogram(
            "vmsd_export_duration_seconds",
            "Evidence export duration, by outcome",
            ["outcome"],
            buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600),
            registry=self.registry,
        )
        self.live_send_delay_seconds = Histogram(
            "vmsd_live_send_delay_seconds",
            "Live relay: from a video frame's arrival at the recorder to its send to a viewer, by transport",
            ["transport"],
            buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.03, 0.04, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5, 10),
            registry=self.registry,
        )
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.port = 0

    def add_sources(self, sources: Sources) -> None:
        self.registry.register(DaemonCollector(sources))

    def observe_rpc(self, method: str, code: str, duration_ns: int) -> None:
        self.rpc_requests.labels(method, code).inc()
        self.rpc_seconds.labels(method).observe(duration_ns / NS_PER_S)

    def observe_export(self, outcome: str, duration_ns: int) -> None:
        self.export_seconds.labels(outcome).observe(duration_ns / NS_PER_S)

    def observe_live_send(self, transport: str, delay_ns: int) -> None:
        self.live_send_delay_seconds.labels(transport).observe(delay_ns / NS_PER_S)

    def start(self, host: str, port: int) -> None:
        """Listen (blocking bind; raises OSError when the address is taken)."""
        self._server, self._thread = start_http_server(port, addr=host, registry=self.registry)
        self.port = int(self._server.server_port)
        log.info("metrics_listening", listen=f"{host}:{self.port}")

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
