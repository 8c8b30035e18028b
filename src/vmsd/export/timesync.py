"""What the recorder knows about its own clock at export time (for the manifest).

`timedatectl show` (systemd-timedated) answers whether NTP has synchronised the clock. Where it is
absent or fails (containers, no D-Bus), the status is "unknown" — stated, never guessed.
"""

from __future__ import annotations

import subprocess

from vmsd.export.manifest import ClockStatus

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
