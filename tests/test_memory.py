"""vmsd.memory: the malloc settings take effect in a fresh process (a 100 KiB block, under
glibc's default 128 KiB threshold, is mmapped once tuned), and an operator's environment wins."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

PROBE = """
import ctypes, json
from vmsd.memory import tune_malloc

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
                 "fordblks", "keepcost")]

libc = ctypes.CDLL(None)
libc.mallinfo2.restype = MallInfo2
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
applied = tune_malloc()
before = libc.mallinfo2().hblks
block = libc.malloc(100 * 1024)
mmapped = libc.mallinfo2().hblks - before
libc.free(block)
print(json.dumps({"applied": applied, "mmapped": mmapped}))
"""


def _probe(env: dict[str, str]) -> dict:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env={**clean, **env}, capture_output=True, text=True, check=True
    )
    return dict(json.loads(out.stdout))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_a_tuned_process_gives_large_blocks_their_own_mapping() -> None:
    found = _probe({})
    assert found["applied"] == {
        "MALLOC_MMAP_THRESHOLD_": 65536,
        "MALLOC_TRIM_THRESHOLD_": 131072,
        "MALLOC_ARENA_MAX": 2,
    }
    assert found["mmapped"] == 1


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
@pytest.mark.parametrize(
    "env",
    [{"MALLOC_MMAP_THRESHOLD_": str(1 << 20)}, {"GLIBC_TUNABLES": f"glibc.malloc.mmap_threshold={1 << 20}"}],
    ids=["variable", "tunable"],
)
def test_the_operators_environment_wins(env: dict[str, str]) -> None:
    found = _probe(env)
    assert "MALLOC_MMAP_THRESHOLD_" not in found["applied"]
    assert found["applied"]["MALLOC_ARENA_MAX"] == 2
    assert found["mmapped"] == 0  # the operator's 1 MiB threshold: a 100 KiB block is not mmapped
