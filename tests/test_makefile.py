"""`make install` puts `vmsd` and `vmsctl` on PATH (the docs use the bare names), or says how."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def make_bin(bindir: Path) -> subprocess.CompletedProcess[str]:
    # The `bin` step of `make install` alone (the others install Debian packages and the venv).
    return subprocess.run(
        ["make", "-s", "-C", str(ROOT), "bin", f"BINDIR={bindir}"], capture_output=True, text=True, timeout=60
    )


def test_install_links_the_commands_into_a_writable_bin_directory(tmp_path: Path) -> None:
    result = make_bin(tmp_path)
    assert result.returncode == 0, result.stderr
    for tool in ("vmsd", "vmsctl"):
        link = tmp_path / tool
        assert link.is_symlink(), result.stdout
        assert os.readlink(link) == str(ROOT / ".venv" / "bin" / tool)
        ran = subprocess.run([str(link), "--help"], capture_output=True, text=True, timeout=60)
        assert ran.returncode == 0 and f"usage: {tool}" in ran.stdout, ran.stderr
    # Idempotent, like the rest of `make install`.
    assert make_bin(tmp_path).returncode == 0


def test_install_prints_the_path_line_when_it_cannot_link(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dir"
    result = make_bin(missing)
    assert result.returncode == 0, result.stderr
    assert f'export PATH="{ROOT / ".venv" / "bin"}:$PATH"' in result.stdout
    assert not missing.exists()


def test_install_leaves_a_foreign_command_of_the_same_name_alone(tmp_path: Path) -> None:
    (tmp_path / "vmsd").write_text("#!/bin/sh\necho someone else's\n")
    result = make_bin(tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "vmsd").read_text().endswith("someone else's\n")
    assert "left alone" in result.stdout
    assert (tmp_path / "vmsctl").is_symlink()
