"""glibc malloc settings for the daemon's process, set once at start (`vmsd run`), before any
thread exists.

Why: a recorder moves a camera's video through malloc'd buffers (a key frame of a 1080p camera
is ~150 KiB, the rest ~20 KiB) on one ingest thread and frees them on 64 or more recorder
threads. With glibc's defaults that costs ~0.6 MiB per camera that is never used again (measured
at 64 native cameras, RSS over 15 s: 2.15 MiB per camera above the idle daemon's; with these
settings 1.52):

- the mmap threshold is dynamic: each freed mmapped chunk raises it to that chunk's size, so key
  frames soon come from the heaps and leave holes there that other sizes do not fill; a fixed
  64 KiB threshold gives every key frame back to the kernel when it is freed (two syscalls per key
  frame: ~1 per second per camera);
- the trim threshold follows the mmap threshold upwards (to 2×), so heap tops are seldom given
  back; it is fixed at 128 KiB;
- one arena per thread up to 8 × cores: each recorder thread's arena keeps its own free pages;
  two arenas are enough for threads that take turns holding the GIL.

An operator's own `MALLOC_*` environment (glibc's tunables) wins: a setting named there is left
alone. Elsewhere than glibc nothing is done.
"""

from __future__ import annotations

import ctypes
import os

# mallopt(3) parameters (malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8

MMAP_THRESHOLD_BYTES = 64 * 1024
TRIM_THRESHOLD_BYTES = 128 * 1024
ARENA_MAX = 2

# (mallopt parameter, value, the environment variable that overrides it)
SETTINGS = (
    (M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES, "MALLOC_MMAP_THRESHOLD_"),
    (M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES, "MALLOC_TRIM_THRESHOLD_"),
    (M_ARENA_MAX, ARENA_MAX, "MALLOC_ARENA_MAX"),
)


def tune_malloc() -> dict[str, int]:
    """Apply SETTINGS not overridden by the environment; returns what was set (by variable name),
    empty where the C library has no mallopt (not glibc)."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return {}
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    tunables = os.environ.get("GLIBC_TUNABLES", "")
    applied = {}
    for parameter, value, variable in SETTINGS:
        tunable = "glibc.malloc." + variable.removeprefix("MALLOC_").rstrip("_").lower()
        if variable in os.environ or tunable in tunables:
            continue
        if mallopt(parameter, value) == 1:  # mallopt returns 1 on success
            applied[variable] = value
    return applied
