"""`make wheel` (scripts/build-wheel.sh): a wheel that carries the generated gRPC code (git-ignored)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_wheel_contains_the_generated_grpc_code_and_the_commands(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(ROOT / "scripts" / "build-wheel.sh"), sys.executable, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    (wheel,) = tmp_path.glob("vmsd-*-py3-none-any.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(archive.read(n).decode() for n in names if n.endswith(".dist-info/entry_points.txt"))
    generated = {p.name for p in (ROOT / "src" / "vmsd" / "v1").glob("*.py*")}
    assert generated, "run make proto first"
    assert {f"vmsd/v1/{name}" for name in generated} <= names
    assert "vmsd/cli/vmsd.py" in names
    assert not any("__pycache__" in n or n.endswith(".stamp") for n in names)
    assert "vmsd = vmsd.cli.vmsd:main" in entry_points and "vmsctl = vmsd.cli.vmsctl:main" in entry_points
