"""Page sizes and page tokens: which items a list use case returns.

A page token is an opaque cursor (the position of the last item sent); the transport decides how
many of a page's items fit in one reply (rpc/paging.py) and issues the next token from the last
item it sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from vmsd.services import validate

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 1000
MAX_PAGE_SIZE = 10_000


@dataclass(frozen=True)
class Page(Generic[T]):
    """At most page_size items, in order; `more`: items beyond them were held back."""

    items: list[T]
    more: bool


def page_size(*sizes: tuple[str, int]) -> int:
    """The first non-zero of (field name, value) pairs, validated; DEFAULT_PAGE_SIZE when all are 0."""
    for field, value in sizes:
        if value:
            if not 0 < value <= MAX_PAGE_SIZE:
                raise validate.invalid(f"{field} must be between 1 and {MAX_PAGE_SIZE} (0: {DEFAULT_PAGE_SIZE})")
            return value
    return DEFAULT_PAGE_SIZE


def cursor(page_token: str) -> int:
    """The position a page token stands for; 0 for the first page."""
    if not page_token:
        return 0
    if not (page_token.isascii() and page_token.isdigit()) or int(page_token) <= 0 or len(page_token) > 19:
        raise bad_token()
    return int(page_token)


def bad_token() -> Exception:
    return validate.invalid("page_token is not one this server issued: pass next_page_token back unchanged")


def token(position: int) -> str:
    return str(position)
