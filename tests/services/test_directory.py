"""The one answer to "does this camera exist?"."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.rpc import RunningDaemon, make_config, record_footage
from vmsd.errors import ErrorKind, VmsdError


def test_footage_of_a_camera_no_longer_configured_still_exists_but_the_camera_does_not(
    tmp_path: Path, h264_ts: Path
) -> None:
    root = tmp_path / "root"
    record_footage(root, h264_ts)
    # Only in-cam is configured; out-cam has footage in the catalogue only.
    running = RunningDaemon(make_config(root, cameras={"in-cam": "rtsp://127.0.0.1:9/in"}))
    try:
        directory = running.daemon.services.directory
        directory.require_known("in-cam")
        directory.require_known("out-cam")
        assert directory.configured("in-cam").config.id == "in-cam"
        for ask in (lambda: directory.configured("out-cam"), lambda: directory.require_known("never-cam")):
            with pytest.raises(VmsdError) as caught:
                ask()
            assert caught.value.kind is ErrorKind.NOT_FOUND
            assert "does not exist" in caught.value.message
    finally:
        running.stop()
