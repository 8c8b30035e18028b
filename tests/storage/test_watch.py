"""The storage watch (storage/watch.py) on a real storage root: a short outage is waited out, one
longer than the bound or a root that is another directory now is a lost storage; and the note
that tells the next start-up why the process stopped."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from vmsd.clock import FakeClock
from vmsd.storage.store import RootProblem, Storage
from vmsd.storage.watch import StorageWatch, clear_note, read_note, write_note
from vmsd.units import NS_PER_S

GONE = RootProblem(False, "storage root /x cannot be reached (No such file or directory)")
REPLACED = RootProblem(True, "storage root /x is no longer the filesystem vmsd opened")


@pytest.fixture
def storage(tmp_path: Path) -> Storage:
    opened = Storage(tmp_path / "root")
    opened.open()
    return opened


def _watch(storage: Storage, lost: list[str]) -> StorageWatch:
    return StorageWatch(storage, FakeClock(), lost.append, lost_after_ns=15 * NS_PER_S)


def test_a_short_outage_is_waited_out(storage: Storage) -> None:
    lost: list[str] = []
    watch = _watch(storage, lost)
    assert not watch.observe(GONE, 0)
    assert not watch.observe(GONE, 14 * NS_PER_S)
    assert not watch.observe(None, 14 * NS_PER_S)  # back: the bound starts again at the next problem
    assert not watch.observe(GONE, 20 * NS_PER_S)
    assert not watch.observe(GONE, 34 * NS_PER_S)
    assert lost == []


def test_an_outage_longer_than_the_bound_is_a_lost_storage(storage: Storage) -> None:
    lost: list[str] = []
    watch = _watch(storage, lost)
    assert not watch.observe(GONE, 0)
    assert watch.observe(GONE, 15 * NS_PER_S)
    assert lost == [GONE.detail]


def test_another_filesystem_at_the_root_is_lost_at_once(storage: Storage) -> None:
    lost: list[str] = []
    assert _watch(storage, lost).observe(REPLACED, 0)
    assert lost == [REPLACED.detail]


async def test_the_watch_sees_a_root_replaced_under_it(storage: Storage) -> None:
    """The root renamed away and a new directory made at its path: not the storage that was opened."""
    lost: list[str] = []
    watch = StorageWatch(storage, FakeClock(), lost.append, interval_ns=NS_PER_S // 100)
    task = asyncio.create_task(watch.run())
    await asyncio.sleep(0.05)
    assert not lost and not task.done()
    root = storage.layout.root
    root.rename(root.with_name("old-root"))
    root.mkdir()
    await asyncio.wait_for(task, 5)
    assert len(lost) == 1 and "no longer the filesystem vmsd opened" in lost[0], lost


def test_the_note_outlives_the_process_until_cleared(tmp_path: Path) -> None:
    assert not read_note(tmp_path) and not read_note(None)
    write_note(tmp_path, "storage root /x is on a read-only filesystem", 1)
    assert read_note(tmp_path)
    clear_note(tmp_path)
    assert not read_note(tmp_path)
    write_note(None, "outside systemd: nowhere to write, nothing happens", 1)
