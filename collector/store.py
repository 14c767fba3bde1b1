"""
The deduplicated event store.

One record per event object, keyed by namespace and name, updated in place.
The key is the name, not the uid: when an event expires and the recorder writes
it again, it re-creates it under its old name with a new uid and a higher count,
and that continues the same story.

Records outlive the API server's copy. A DELETED frame (TTL expiry) or an event
missing from a relist marks the record deleted and keeps it; it goes only when
it is older than the retention window or the store is over its size cap, the
oldest first.

Records keep their JSON deflated (see ``collector.record``). The JSON of the
records served or written most recently stays inflated in a small LRU cache, so
a reader polling the newest events costs a join of prepared bytes, and only a
query that reaches deep into the store pays for inflating what it returns.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from typing import Any

from collector.index import Entry, OrderIndex
from collector.record import Record, build_record, parse_resource_version

logger = logging.getLogger(__name__)

# Records whose JSON stays inflated: a few pages of the web app's latest(100),
# and what arrived since; about 1 KiB each.
INFLATED_RECORDS = 2000


class EventStore:
    """Records by (namespace, name), plus an index by last seen."""

    def __init__(self, *, max_records: int, retention_seconds: float) -> None:
        self.max_records = max_records
        self.retention_seconds = retention_seconds
        self.synced = False
        self.deleted_count = 0
        self.evicted_count = 0
        # Each value is the record's index entry, whose last item is the record:
        # one dict serves lookups and finds the entry to move in the index.
        self._entries: dict[tuple[str, str], Entry] = {}
        self._index = OrderIndex()
        self._generation = 0
        self._inflated: OrderedDict[Record, bytes] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def apply(self, obj: dict[str, Any], *, deleted: bool = False) -> None:
        """
        Insert or update the record of one Event object.

        An object older than the record (a lower resourceVersion) is ignored,
        and one at the same resourceVersion only refreshes the list mark, so a
        relist of an unchanged cluster re-serialises nothing.
        """
        metadata = obj["metadata"]
        key = (metadata.get("namespace") or "", metadata["name"])
        old_entry = self._entries.get(key)
        old: Record | None = old_entry[4] if old_entry is not None else None
        if old is not None:
            version = parse_resource_version(metadata.get("resourceVersion"))
            if version and version < old.resource_version:
                return
            if version == old.resource_version and deleted == old.deleted:
                old.listed = self._generation
                return

        record, document = build_record(obj, deleted=deleted)
        record.listed = self._generation
        self._put(key, record, old)
        self._remember(record, document)

    def begin_list(self) -> None:
        """Start a (re)list: records not seen before ``finish_list`` are gone."""
        self._generation += 1
        self.synced = False

    def finish_list(self) -> int:
        """Mark records missing from the finished list as deleted; return how many."""
        missing = [
            entry[4]
            for entry in self._entries.values()
            if entry[4].listed != self._generation and not entry[4].deleted
        ]
        for record in missing:
            self._inflated.pop(record, None)
            record.mark_deleted()
        self.deleted_count += len(missing)

        self.synced = True
        self.prune()
        return len(missing)

    def latest(
        self,
        limit: int,
        *,
        namespace: str | None = None,
        type: str | None = None,
        reason: str | None = None,
        kind: str | None = None,
        name: str | None = None,
        since_us: int | None = None,
    ) -> list[bytes]:
        """Return the JSON of up to ``limit`` records, newest first."""
        docs: list[bytes] = []
        if limit <= 0:
            return docs

        if not (namespace or type or reason or kind or name or since_us is not None):
            for entry in self._index.newest():
                docs.append(self._json(entry[4]))
                if len(docs) == limit:
                    break
            return docs

        # A filtered query walks from the top and stops at ``since``; a rare
        # match may walk the whole store, which is still one pass, no sort.
        for entry in self._index.newest():
            record: Record = entry[4]
            if since_us is not None and record.last_seen_us < since_us:
                break
            if (
                (namespace and record.namespace != namespace)
                or (type and record.type != type)
                or (reason and record.reason != reason)
                or (kind and record.kind != kind)
                or (name and record.object_name != name)
            ):
                continue
            docs.append(self._json(record))
            if len(docs) == limit:
                break
        return docs

    def prune(self, *, now: float | None = None) -> int:
        """Drop deleted records past retention, then the oldest over the cap."""
        cutoff_us = int(((now or time.time()) - self.retention_seconds) * 1e6)
        victims: list[Record] = []
        for entry in self._index.oldest():
            record: Record = entry[4]
            if record.last_seen_us >= cutoff_us:
                break
            if record.deleted:
                victims.append(record)

        excess = len(self._entries) - len(victims) - self.max_records
        if excess > 0:
            chosen = {id(record) for record in victims}
            for entry in self._index.oldest():
                if excess <= 0:
                    break
                if id(entry[4]) not in chosen:
                    victims.append(entry[4])
                    excess -= 1

        for record in victims:
            self._drop((record.namespace, record.name))
        if victims:
            self.evicted_count += len(victims)
            logger.debug("Evicted %d records.", len(victims))
        return len(victims)

    def _json(self, record: Record) -> bytes:
        document = self._inflated.get(record)
        if document is None:
            document = record.json()
            self._remember(record, document)
        else:
            self._inflated.move_to_end(record)
        return document

    def _remember(self, record: Record, document: bytes) -> None:
        self._inflated[record] = document
        if len(self._inflated) > INFLATED_RECORDS:
            self._inflated.popitem(last=False)

    def _put(self, key: tuple[str, str], record: Record, old: Record | None) -> None:
        if old is not None:
            self._index.remove(self._entries[key])
            self._inflated.pop(old, None)
            self.deleted_count -= old.deleted
        self.deleted_count += record.deleted

        entry = (*record.sort_key(), record)
        self._entries[key] = entry
        self._index.add(entry)

        if old is None and len(self._entries) > self.max_records:
            oldest = next(self._index.oldest())[4]
            self._drop((oldest.namespace, oldest.name))
            self.evicted_count += 1

    def _drop(self, key: tuple[str, str]) -> None:
        entry = self._entries.pop(key)
        self._index.remove(entry)
        self._inflated.pop(entry[4], None)
        self.deleted_count -= entry[4].deleted
