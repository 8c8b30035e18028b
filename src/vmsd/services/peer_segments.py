"""Local copies of peer recorders' segments, for reviews made here that play a peer's footage.

A review made on this recorder may include segments another recorder of the site holds (a
review across a failover). The web console fetches each segment with HTTP byte ranges and the
MPEG-TS remux opens whole files, so a peer's segment is fetched whole — from the peer's own review,
for the principal who made this one (the peer re-authorises and audits every read) — into a file
under `<root>/peer-segments/`, checked against the size and SHA-256 the peer stated, and served
from there. Copies are keyed by the peer's review id (which belongs to one principal there) and
the forwarded principal: a copy is never handed to anyone the peer did not authorise. A cache, never evidence: at most
`max_bytes` (the least recently used go first), emptied when first used after a start.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import shutil
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from contextlib import aclosing
from pathlib import Path
from typing import IO

from vmsd.errors import ErrorKind, VmsdError
from vmsd.recordings.parts import ReviewedSegment
from vmsd.services.site_wide import PeerCalls, PeerRecorder

__all__ = ["DEFAULT_MAX_BYTES", "PeerSegmentCopies"]

# A few minutes of a dozen 4 Mbit/s cameras' segments: enough for the reviews under way at once.
DEFAULT_MAX_BYTES = 512 * 1024 * 1024

Key = tuple[str, str, int, tuple[tuple[str, str], ...]]  # (recorder, its review id, index, forwarded)


class PeerSegmentCopies:
    """No I/O in the constructor; the directory is (re)made on first use."""

    def __init__(self, directory: Path, peers: PeerCalls, *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self._directory = directory
        self._peers = peers
        self._max_bytes = max_bytes
        self._copies: OrderedDict[Key, tuple[Path, int]] = OrderedDict()
        self._ready = False
        # One fetch per segment at a time: a browser asks for several byte ranges of one file at once.
        self._locks: weakref.WeakValueDictionary[Key, asyncio.Lock] = weakref.WeakValueDictionary()

    async def fetch(
        self,
        peer: PeerRecorder,
        headers: Sequence[tuple[str, str]],
        review_id: str,
        index: int,
        segment: ReviewedSegment,
    ) -> Path:
        """The local copy of segment `index` of `peer`'s review `review_id` (fetched now if not
        kept). Raises VmsdError: the peer's (UNAVAILABLE naming it, its refusal), or DATA_LOSS
        when what came is not what the peer said it holds."""
        key = (peer.recorder_id, review_id, index, tuple(headers))
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        async with lock:
            kept = self._copies.get(key)
            if kept is not None and await asyncio.to_thread(kept[0].is_file):
                self._copies.move_to_end(key)
                return kept[0]
            path = await self._download(peer, headers, review_id, index, segment)
            self._copies[key] = (path, segment.bytes)
            await self._trim(keep=key)
            return path

    async def _download(
        self,
        peer: PeerRecorder,
        headers: Sequence[tuple[str, str]],
        review_id: str,
        index: int,
        segment: ReviewedSegment,
    ) -> Path:
        if not self._ready:
            await asyncio.to_thread(self._reset)
            self._ready = True
        name = secrets.token_hex(12)
        partial = self._directory / f"{name}.part"
        digest = hashlib.sha256()
        size = 0
        file = await asyncio.to_thread(partial.open, "wb")
        try:
            chunks = await self._peers.read_segment(peer.recorder_id, peer.address, headers, review_id, index)
            async with aclosing(chunks) as stream:
                async for data in stream:
                    size += len(data)
                    await asyncio.to_thread(_write, file, digest, data)
            await asyncio.to_thread(file.close)
            if (size, digest.hexdigest()) != (segment.bytes, segment.sha256):
                raise VmsdError(
                    ErrorKind.DATA_LOSS,
                    f"recorder {peer.recorder_id} sent segment {index} of its review with {size} bytes and a"
                    f" different SHA-256 from what it stated ({segment.bytes} bytes): not played",
                )
            final = self._directory / f"{name}.mp4"
            await asyncio.to_thread(partial.rename, final)
            return final
        except BaseException:
            await asyncio.to_thread(_discard, file, partial)
            raise

    def _reset(self) -> None:
        """Copies left by a previous run are nobody's now: start empty (blocking)."""
        shutil.rmtree(self._directory, ignore_errors=True)
        self._directory.mkdir(mode=0o700, parents=True, exist_ok=True)

    async def _trim(self, keep: Key) -> None:
        total = sum(size for _, size in self._copies.values())
        while total > self._max_bytes and len(self._copies) > 1:
            key, (path, size) = next(iter(self._copies.items()))
            if key == keep:
                self._copies.move_to_end(key)
                continue
            del self._copies[key]
            total -= size
            # A response still sending it keeps its open file: unlinking does not cut it short.
            await asyncio.to_thread(path.unlink, missing_ok=True)


def _write(file: IO[bytes], digest: hashlib._Hash, data: bytes) -> None:
    file.write(data)
    digest.update(data)


def _discard(file: IO[bytes], path: Path) -> None:
    file.close()
    if os.path.exists(path):
        path.unlink()
