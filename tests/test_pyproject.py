"""pyproject.toml's floors are ones the code works with, and constraints.txt (what CI tested) is what
`make venv` installs and satisfies them."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
GENERATED = ROOT / "src" / "vmsd" / "v1"


def _requirements() -> dict[str, Requirement]:
    extras = PROJECT["optional-dependencies"]
    listed = PROJECT["dependencies"] + extras["dev"] + extras["report"]
    return {canonicalize_name(r.name): r for r in map(Requirement, listed)}


def _floor(name: str) -> Version:
    (floor,) = [Version(s.version) for s in _requirements()[name].specifier if s.operator == ">="]
    return floor


def _pins() -> dict[str, Version]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[canonicalize_name(name)] = Version(version)
    return pins


def test_the_floors_cover_what_the_generated_grpc_code_checks_at_import() -> None:
    """The generated modules refuse an older runtime at import: the floors must not allow one."""
    pb2 = sorted(GENERATED.glob("*_pb2.py"))
    grpc = sorted(GENERATED.glob("*_pb2_grpc.py"))
    assert pb2 and grpc, "run `make proto` first"
    for path in pb2:
        found = re.search(r"^# Protobuf Python Version: (\S+)$", path.read_text(), re.M)
        assert found, path
        assert Version(found.group(1)) <= _floor("protobuf"), f"{path.name} needs protobuf>={found.group(1)}"
    for path in grpc:
        found = re.search(r"^GRPC_GENERATED_VERSION = '(\S+)'$", path.read_text(), re.M)
        assert found, path
        for name in ("grpcio", "grpcio-health-checking", "grpcio-reflection", "grpcio-tools"):
            assert Version(found.group(1)) <= _floor(name), f"{path.name} needs {name}>={found.group(1)}"


def test_the_constraints_pin_every_requirement_within_its_range() -> None:
    pins = _pins()
    for name, requirement in _requirements().items():
        assert name in pins, f"constraints.txt does not pin {name}"
        assert requirement.specifier.contains(pins[name]), f"constraints.txt pins {name}=={pins[name]}: {requirement}"


def test_make_venv_installs_the_tested_versions() -> None:
    # -n: print the recipe without running it (-B: even when the venv is up to date).
    shown = subprocess.run(
        ["make", "-n", "-B", "-C", str(ROOT), ".venv/.stamp"], capture_output=True, text=True, timeout=60
    )
    assert shown.returncode == 0, shown.stderr
    assert "pip install -q -c constraints.txt -e '.[dev,report]'" in shown.stdout
