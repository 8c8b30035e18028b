"""The shipped package carries no test hooks: nothing a test needs may be switchable in production."""

from __future__ import annotations

import re
from pathlib import Path

import vmsd

SRC = Path(vmsd.__file__).parent


def test_no_test_hook_is_read_from_the_environment() -> None:
    # An environment variable read by the daemon is a switch anyone who can set the unit's
    # environment can flip; test behaviour is injected by test code (tests/support) instead.
    scanned, hooks = 0, []
    for path in sorted(SRC.rglob("*.py")):
        scanned += 1
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"VMSD_TEST|environ[^\n]*\btest", line, re.IGNORECASE):
                hooks.append(f"{path.relative_to(SRC)}:{number}: {line.strip()}")
    assert scanned > 50, f"scanned only {scanned} files under {SRC}"
    assert hooks == []
