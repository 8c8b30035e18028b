"""Paging of list replies: page sizes, page tokens, and keeping every reply under the size cap.

A reply larger than the server's message cap would fail as RESOURCE_EXHAUSTED after all the
work was done, so list RPCs return at most `page_size` items and, within that, only as many as
fit in REPLY_BUDGET_BYTES; `next_page_token` (an opaque cursor: the position of the last item
sent) asks for the rest. Old clients that send no page fields get the first page, which is what
they got before whenever it fitted.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from google.protobuf.message import Message

from vmsd.services.paging import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, bad_token, cursor, page_size, token

__all__ = ["DEFAULT_PAGE_SIZE", "MAX_PAGE_SIZE", "bad_token", "cursor", "fit", "fitting", "page_size", "token"]

M = TypeVar("M", bound=Message)

MAX_MESSAGE_BYTES = 4 * 1024 * 1024
# Room for the reply's other fields (flags, the next page token) around its repeated items.
REPLY_BUDGET_BYTES = MAX_MESSAGE_BYTES - 64 * 1024


def fit(messages: list[M], left_over: bool) -> tuple[list[M], bool]:
    """The leading messages that fit in one reply, and whether any are left for a next page
    (`left_over`: the caller already holds some back, e.g. beyond page_size)."""
    keep = fitting(m.ByteSize() for m in messages)
    return messages[:keep], left_over or keep < len(messages)


def fitting(item_bytes: Iterable[int]) -> int:
    """How many items, taken in order, fit in one reply (at least one, so paging always moves on)."""
    total = count = 0
    for size in item_bytes:
        total += size + 1 + _varint_len(size)  # a repeated field: tag, length, message
        if total > REPLY_BUDGET_BYTES and count:
            break
        count += 1
    return count


def _varint_len(value: int) -> int:
    return max(1, (value.bit_length() + 6) // 7)
