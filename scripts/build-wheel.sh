#!/bin/bash
# Build vmsd's wheel with the generated gRPC code (src/vmsd/v1, git-ignored, made by `make proto`) inside.
#   scripts/build-wheel.sh PYTHON OUTDIR
# PYTHON is any Python >= 3.11 with pip. The build runs on a clean copy of the sources, so a stale
# build/ directory (modules since moved or deleted) can never leak into the wheel.
set -euo pipefail
python=${1:?usage: build-wheel.sh PYTHON OUTDIR}
out=${2:?usage: build-wheel.sh PYTHON OUTDIR}
root=$(cd "$(dirname "$0")/.." && pwd)

if [ ! -f "$root/src/vmsd/v1/__init__.py" ]; then
	echo "build-wheel: the generated gRPC code is missing (src/vmsd/v1): run 'make proto' first" >&2
	exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/src" "$out"
cp "$root/pyproject.toml" "$root/README.md" "$tmp/"
cp -r "$root/src/vmsd" "$tmp/src/"
find "$tmp/src" \( -name __pycache__ -o -name '.stamp' \) -prune -exec rm -rf {} +
"$python" -m pip wheel -q --no-deps --disable-pip-version-check -w "$tmp/wheel" "$tmp"

wheel=$(ls "$tmp"/wheel/vmsd-*.whl)
# The wheel is useless without the generated code: fail here rather than on a user's machine.
"$python" - "$wheel" <<'PY'
import sys, zipfile
names = set(zipfile.ZipFile(sys.argv[1]).namelist())
missing = [n for n in ("vmsd/v1/__init__.py", "vmsd/v1/cameras_pb2.py", "vmsd/v1/cameras_pb2_grpc.py") if n not in names]
if missing:
    sys.exit(f"build-wheel: {sys.argv[1]} lacks the generated gRPC code: {', '.join(missing)}")
PY
cp "$wheel" "$out/"
echo "$out/$(basename "$wheel")"
