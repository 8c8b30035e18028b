"""Facts about the machine vmsd runs on: free disk space and whether the clock is synchronised.

Retention, exports and the function checks all ask these questions; they live here, below all of
them, so that none has to import another for them.

`timedatectl show` (systemd-timedated) answers whether NTP has synchronised the clock. Where it is
absent or fails (containers, no D-Bus), the status is "unknown" — stated, never guessed.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict


@dataclass
class DiskSpace:
    free_bytes: int  # available to an unprivileged writer (f_bavail), which vmsd is
    total_bytes: int


def disk_space(path: os.PathLike[str] | str) -> DiskSpace:
    stats = os.statvfs(path)
    return DiskSpace(stats.f_bavail * stats.f_frsize, stats.f_blocks * stats.f_frsize)


class ClockStatus(BaseModel):
    """The clock's state as recorded in evidence (the export manifest's `clock` field)."""

    # The manifest's rules (export/manifest.py): a closed, exact, immutable record.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    source: str  # e.g. "timedatectl", or "unavailable"
    synchronized: Literal["yes", "no", "unknown"]
    detail: dict[str, str]


# The properties worth keeping in evidence; the rest (e.g. RTC details) adds nothing.
_KEEP = ("Timezone", "LocalRTC", "CanNTP", "NTP", "NTPSynchronized", "TimeUSec", "RTCTimeUSec")


def clock_status(timeout_s: float = 2.0) -> ClockStatus:
    """Ask timedatectl (blocking, bounded by `timeout_s`); never raises."""
    try:
        done = subprocess.run(["timedatectl", "show"], capture_output=True, text=True, timeout=timeout_s, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return ClockStatus(source="unavailable", synchronized="unknown", detail={"error": str(exc)[:200]})
    if done.returncode != 0:
        error = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[0]
        return ClockStatus(source="timedatectl", synchronized="unknown", detail={"error": error[:200]})
    values = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    synced = values.get("NTPSynchronized", "")
    return ClockStatus(
        source="timedatectl",
        synchronized="yes" if synced == "yes" else "no" if synced == "no" else "unknown",
        detail={k: values[k] for k in _KEEP if k in values},
    )
