"""The operator guide's camera examples are what vmsd accepts (they are copied, so they must work)."""

from __future__ import annotations

import re
import textwrap
import tomllib
from pathlib import Path

from google.protobuf import json_format

from vmsd.config import parse_config
from vmsd.v1 import cameras_pb2

GUIDE = (Path(__file__).resolve().parents[1] / "docs" / "operator-guide.md").read_text()
SECTION = GUIDE.split("## Adding or changing a camera", 1)[1].split("\n## ", 1)[0]


def test_the_documented_camera_table_is_a_valid_configuration(tmp_path: Path) -> None:
    block = re.search(r"\n( +)\[\[cameras\]\]\n(?:\1.*\n)+", SECTION)
    assert block is not None
    cameras = tomllib.loads(textwrap.dedent(block.group(0)))["cameras"]
    config = parse_config({"recorder_id": "docs", "storage": {"root": str(tmp_path)}, "cameras": cameras})
    assert [c.id for c in config.cameras] == ["station-rd-02"] and config.cameras[0].enabled


def test_the_documented_add_camera_request_parses_and_enables_the_camera() -> None:
    body = re.search(r"<<'EOF'\n(.*?)\n +EOF", SECTION, re.S)
    assert body is not None
    request = json_format.Parse(body.group(1), cameras_pb2.AddCameraRequest())
    assert request.camera.id == "station-rd-02" and request.camera.enabled and request.reason
