"""
The order index: every record, kept sorted by last seen.

"Latest N" must cost O(N), not a sort of the whole store, and an update moves
one record. A flat sorted list makes each move a memmove of up to the whole
store; a list of sorted chunks, each a few hundred entries, keeps a move to a
bisect over chunk maxima plus a bisect and a short memmove inside one chunk.

Entries are tuples that start ``(last_seen_us, resource_version, namespace,
name)``, as ``collector.record.Record`` does. Those four fields are unique per
entry, so tuple comparison never reaches the fields after them.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterator
from typing import Any, Generic, TypeVar

Entry = TypeVar("Entry", bound=tuple[Any, ...])

# Chunks split at twice this size. A few hundred keeps both the per-chunk
# memmove and the list of chunk maxima short for stores of 10^4..10^6 records.
CHUNK_SIZE = 512


class OrderIndex(Generic[Entry]):
    """A sorted multiset of entries with O(sqrt n) insert and remove."""

    def __init__(self) -> None:
        self._chunks: list[list[Entry]] = []
        self._maxes: list[Entry] = []
        self._len = 0

    def __len__(self) -> int:
        return self._len

    def add(self, entry: Entry) -> None:
        """Insert an entry in order."""
        self._len += 1
        if not self._chunks:
            self._chunks.append([entry])
            self._maxes.append(entry)
            return

        position = bisect_left(self._maxes, entry)
        if position == len(self._maxes):
            # The common case: an updated event becomes the newest.
            position -= 1
            chunk = self._chunks[position]
            chunk.append(entry)
            self._maxes[position] = entry
        else:
            chunk = self._chunks[position]
            insort(chunk, entry)

        if len(chunk) > 2 * CHUNK_SIZE:
            self._chunks[position : position + 1] = [
                chunk[:CHUNK_SIZE],
                chunk[CHUNK_SIZE:],
            ]
            self._maxes[position : position + 1] = [chunk[CHUNK_SIZE - 1], chunk[-1]]

    def remove(self, entry: Entry) -> None:
        """Remove an entry that is in the index; raise ``KeyError`` if it is not."""
        position = bisect_left(self._maxes, entry)
        if position == len(self._maxes):
            raise KeyError(entry[:4])
        chunk = self._chunks[position]
        offset = bisect_left(chunk, entry)
        if offset == len(chunk) or chunk[offset][:4] != entry[:4]:
            raise KeyError(entry[:4])

        del chunk[offset]
        self._len -= 1
        if not chunk:
            del self._chunks[position]
            del self._maxes[position]
        elif offset == len(chunk):
            self._maxes[position] = chunk[-1]

    def newest(self) -> Iterator[Entry]:
        """Yield entries from the newest to the oldest."""
        for chunk in reversed(self._chunks):
            yield from reversed(chunk)

    def oldest(self) -> Iterator[Entry]:
        """Yield entries from the oldest to the newest."""
        for chunk in self._chunks:
            yield from chunk
