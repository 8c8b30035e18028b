"""How `vmsctl` gets its token: a file or the environment, so that it never shows in `ps`."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.rpc import RunningDaemon, make_config, token
from vmsd.cli.vmsctl.main import build_parser

VMSCTL = [sys.executable, "-m", "vmsd.cli.vmsctl"]


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDaemon]:
    daemon = RunningDaemon(make_config(tmp_path_factory.mktemp("token") / "root"))
    try:
        yield daemon
    finally:
        daemon.stop()


def _vmsctl(running: RunningDaemon, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != "VMSD_TOKEN"} | (env or {})
    argv = [*VMSCTL, "--server", f"127.0.0.1:{running.port}", "--timeout", "10", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, env=environment)


def _token_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "token"
    path.write_text(text)
    path.chmod(0o600)
    return path


def test_token_file(running: RunningDaemon, tmp_path: Path) -> None:
    path = _token_file(tmp_path, token("admin") + "\n")  # an editor's trailing newline is not part of it
    result = _vmsctl(running, "--token-file", str(path), "cameras")
    assert result.returncode == 0, result.stderr


def test_the_token_file_comes_before_the_environment(running: RunningDaemon, tmp_path: Path) -> None:
    path = _token_file(tmp_path, token("admin"))
    result = _vmsctl(running, "--token-file", str(path), "cameras", env={"VMSD_TOKEN": "wrong"})
    assert result.returncode == 0, result.stderr
    assert _vmsctl(running, "cameras", env={"VMSD_TOKEN": token("admin")}).returncode == 0


def test_an_unusable_token_file_is_a_usage_error_naming_it(running: RunningDaemon, tmp_path: Path) -> None:
    missing = _vmsctl(running, "--token-file", str(tmp_path / "nope"), "cameras")
    assert missing.returncode == 2 and "nope" in missing.stderr
    empty = _vmsctl(running, "--token-file", str(_token_file(tmp_path, "\n")), "cameras")
    assert empty.returncode == 2 and "empty" in empty.stderr
    both = _vmsctl(running, "--token-file", str(_token_file(tmp_path, "x")), "--token", "y", "cameras")
    assert both.returncode == 2


def test_the_help_says_where_the_token_is_visible() -> None:
    result = subprocess.run([*VMSCTL, "--help"], capture_output=True, text=True, timeout=60)
    help_text = " ".join(result.stdout.split())
    assert "--token-file" in help_text and "VMSD_TOKEN" in help_text
    assert "visible to other users" in help_text


@pytest.mark.parametrize("to", [["--to", "2026-01-02T00:00:00Z"], ["--to=2026-01-02T00:00:00Z"]])
def test_to_is_never_read_as_a_token_option(to: list[str]) -> None:
    """`--to` is a prefix of --token and --token-file: the global options take no abbreviations."""
    args = build_parser().parse_args(["search", "cam", "--from", "2026-01-01T00:00:00Z", *to])
    assert (args.end, args.token, args.token_file) == ("2026-01-02T00:00:00Z", None, None)
