"""`vmsd` with one camera's recorder thread wedged on purpose — a test-only launcher.

    python -m tests.support.wedged_vmsd CAMERA_ID run --config FILE …

The production code has no such hook: this module wraps `CameraRecorder._segment_closed` in
its own process before handing over to vmsd's real `main`. After its first segment the chosen
camera's recorder thread blocks, bumping no heartbeat, until the daemon stops it — what a
recorder stuck in a hung write or a library call looks like to the watchdog.
"""

from __future__ import annotations

import sys
from typing import Any

from vmsd.cli import vmsd
from vmsd.ingest.recorder import CameraRecorder


def wedge(camera_id: str) -> None:
    original = CameraRecorder._segment_closed

    def segment_closed_then_wedge(self: CameraRecorder, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        if self.camera.id == camera_id:
            self._stop.wait()  # no packets, no heartbeat until the daemon stops this recorder

    CameraRecorder._segment_closed = segment_closed_then_wedge  # type: ignore[method-assign]


if __name__ == "__main__":
    wedge(sys.argv[1])
    sys.exit(vmsd.main(sys.argv[2:]))
