"""The systemd watchdog: ping only while the daemon is really working.

systemd restarts the service when `WATCHDOG=1` stops arriving for `WatchdogSec=`. A ping from a
timer alone would only prove that the event loop runs; a recorder thread stuck in a driver call
or a deadlock would go on losing footage unnoticed. So every `WatchdogSec/2` the `Watchdog` asks
its probe for problems and pings only when there are none *and* the event loop woke up on time
(if `run()` got scheduled late by more than the interval, the loop is not responsive enough).
Whatever the outcome, it sends a `STATUS=` line (`systemctl status vmsd` shows it).

What counts as wedged (`recorder_probe`): a camera's recorder thread has not bumped its
`heartbeat_mono_ns` for `max_silence_ns`. A camera that is merely offline is not wedged: its
thread goes round its reconnect loop (bumping the heartbeat at each attempt), so the silence is
bounded by one connection attempt plus one backoff (`max_silence_ns()` derives the bound from the
ingest config). A recorder thread that died also stops bumping, so it is caught the same way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Protocol

from vmsd.clock import Clock
from vmsd.config import IngestConfig
from vmsd.ingest.recorder import CameraRecorder, CameraState
from vmsd.log import get_logger
from vmsd.ops.sdnotify import Notifier
from vmsd.units import NS_PER_S
from vmsd.waits import wait_event

log = get_logger(component="watchdog")

# Without a systemd watchdog (but under systemd) the STATUS line is still refreshed this often.
STATUS_INTERVAL_NS = 10 * NS_PER_S
MAX_STATUS_CHARS = 300

Probe = Callable[[], list[str]]


class _Heartbeating(Protocol):
    """What the probe needs of a recorder (CameraRecorder, or a stand-in in tests)."""

    @property
    def heartbeat_mono_ns(self) -> int: ...


class Watchdog:
    """Pings systemd's watchdog while healthy. `run()` until `aclose()`; the constructor does no I/O.

    `probes` is called on the event loop once per interval and must return quickly (it reads
    counters; it must not do I/O); it returns the problems found, empty when healthy. `summary`
    gives the healthy STATUS line (default "healthy"). If either raises, that is a problem too
    (logged with its traceback) — never a ping.
    """

    def __init__(
        self,
        notifier: Notifier,
        probes: Probe,
        clock: Clock,
        *,
        summary: Callable[[], str] | None = None,
    ) -> None:
        self._notifier = notifier
        self._probes = probes
        self._clock = clock
        self._summary = summary
        self._stop = asyncio.Event()
        self.healthy = True
        self.last_status = ""
        self.pings = 0

    @property
    def interval_ns(self) -> int | None:
        """How often run() checks: half the watchdog timeout, as sd_watchdog_enabled(3) advises."""
        timeout_ns = self._notifier.watchdog_timeout_ns
        if timeout_ns is not None:
            return max(timeout_ns // 2, 1)
        return STATUS_INTERVAL_NS if self._notifier.enabled else None

    async def run(self) -> None:
        interval_ns = self.interval_ns
        if interval_ns is None:  # not under systemd: nothing to tell anyone
            await self._stop.wait()
            return
        due_mono_ns = self._clock.mono_ns()
        while not self._stop.is_set():
            self.beat(lag_ns=max(0, self._clock.mono_ns() - due_mono_ns))
            due_mono_ns = self._clock.mono_ns() + interval_ns
            await wait_event(self._stop, interval_ns / NS_PER_S)

    async def aclose(self) -> None:
        """Stop pinging (call before shutting the recorders down: a stopped recorder looks dead)."""
        self._stop.set()

    def beat(self, *, lag_ns: int = 0) -> bool:
        """One check: ping if healthy, always send STATUS. Returns True if WATCHDOG=1 was sent.

        `lag_ns` is how late the event loop ran this check; more than one interval is a problem.
        """
        interval_ns = self.interval_ns or STATUS_INTERVAL_NS
        problems: list[str] = []
        if lag_ns > interval_ns:
            problems.append(f"event loop stalled for {lag_ns / NS_PER_S:.1f}s")
        try:
            problems += self._probes()
        except Exception:
            log.exception("watchdog_probe_failed")
            problems.append("health probe failed (see the log)")
        if problems:
            status = _truncate("unhealthy: " + "; ".join(problems))
            if self.healthy:
                log.error("watchdog_withheld", problems=problems)
            self.healthy = False
            self._send_status(status)
            return False
        status = self._healthy_summary()
        if not self.healthy:
            log.info("watchdog_resumed", status=status)
        self.healthy = True
        self.last_status = status
        if self._notifier.watchdog_timeout_ns is None:
            self._notifier.status(status)
            return False
        sent = self._notifier.watchdog(status)
        self.pings += sent
        return sent

    def _healthy_summary(self) -> str:
        if self._summary is None:
            return "healthy"
        try:
            return _truncate(self._summary())
        except Exception:
            log.exception("watchdog_summary_failed")
            return "healthy"

    def _send_status(self, status: str) -> None:
        self.last_status = status
        self._notifier.status(status)


def _truncate(text: str) -> str:
    return text if len(text) <= MAX_STATUS_CHARS else text[: MAX_STATUS_CHARS - 1] + "…"


def max_silence_ns(ingest: IngestConfig) -> int:
    """The longest a healthy recorder thread may go without a heartbeat, with a 2× margin.

    The thread bumps its heartbeat on every packet and before every connection attempt. Between
    two bumps it may legitimately spend: one blocking open (`open_timeout`) or one read that
    gives up (`stall_timeout`), closing the session (fsync of the last segment), and one backoff
    wait (up to `max_backoff` + 25 % jitter).
    """
    one_cycle_ns = max(ingest.open_timeout_ns, ingest.stall_timeout_ns) + ingest.max_backoff_ns
    return max(2 * one_cycle_ns, 10 * NS_PER_S)


def recorder_probe(
    recorders: Callable[[], Mapping[str, _Heartbeating]],
    clock: Clock,
    max_silence_ns: int,
) -> Probe:
    """A probe reporting every recorder whose thread made no progress for `max_silence_ns`.

    `recorders` is called on every check (cameras come and go over the API). A recorder seen for
    the first time is given `max_silence_ns` from that moment to start its thread.
    """
    first_seen: dict[str, tuple[object, int]] = {}

    def probe() -> list[str]:
        now_ns = clock.mono_ns()
        current = recorders()
        problems: list[str] = []
        for camera_id in sorted(current):
            recorder = current[camera_id]
            known = first_seen.get(camera_id)
            since_ns = known[1] if known is not None and known[0] is recorder else now_ns
            first_seen[camera_id] = (recorder, since_ns)
            silent_ns = now_ns - max(recorder.heartbeat_mono_ns, since_ns)
            if silent_ns > max_silence_ns:
                problems.append(f"camera {camera_id}: recorder made no progress for {silent_ns / NS_PER_S:.0f}s")
        for camera_id in set(first_seen) - set(current):
            del first_seen[camera_id]
        return problems

    return probe


def recorder_summary(recorders: Callable[[], dict[str, CameraRecorder]]) -> Callable[[], str]:
    """The healthy STATUS line: "recording 3/3 cameras", or which are not recording and why."""

    def summary() -> str:
        current = recorders()
        if not current:
            return "no cameras enabled"
        not_recording: dict[str, list[str]] = {}
        for camera_id in sorted(current):
            state = current[camera_id].status.state
            if state is not CameraState.RECORDING:
                not_recording.setdefault(state.value, []).append(camera_id)
        recording = len(current) - sum(len(ids) for ids in not_recording.values())
        text = f"recording {recording}/{len(current)} cameras"
        if not_recording:
            text += " (" + "; ".join(f"{state}: {', '.join(ids)}" for state, ids in not_recording.items()) + ")"
        return text

    return summary
