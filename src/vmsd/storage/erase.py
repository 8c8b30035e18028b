"""The delete protocol (docs/design/storage.md, "Delete"), in one place.

Mark the row `garbage`, unlink the file, fsync its directory, then drop the row (its tombstone keeps
the hash chain verifiable). A crash between any two steps leaves a `garbage` row, which startup
reconciliation finishes with this same function.
"""

from __future__ import annotations

from vmsd.files import fsync_dir
from vmsd.storage.catalogue import Catalogue, SegmentRow
from vmsd.storage.layout import Layout


def erase_segment(catalogue: Catalogue, layout: Layout, row: SegmentRow, *, erased_ns: int, reason: str) -> None:
    """Erase a segment's file and row by the protocol; a file already gone is not an error."""
    catalogue.mark_garbage(row.id)
    path = layout.abspath(row.path)
    try:
        path.unlink()
    except FileNotFoundError:
        pass  # nothing changed in the directory, so there is nothing to make durable
    else:
        fsync_dir(path.parent)
    catalogue.delete_segment(row.id, erased_ns=erased_ns, reason=reason)
