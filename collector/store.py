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

from collector.index import OrderIndex
from collector.record import Record, build_record, parse_resource_version

logger = logging.getLogger(__name__)

# Records whose JSON stays inflated: the web app's latest(100) several times
# over, and what arrived since; about 1 KiB each.
INFLATED_RECORDS = 1000

Key = tuple[str, str]


class EventStore:
    """Records by (namespace, name), plus an index by last seen."""

    def __init__(self, *, max_records: int, retention_seconds: float) -> None:
        self.max_records = max_records
        self.retention_seconds = retention_seconds
        self.synced = False
        self.deleted_count = 0
        self.evicted_count = 0
        self._records: dict[Key, Record] = {}
        self._index: OrderIndex[Record] = OrderIndex()
        self._inflated: OrderedDict[Key, bytes] = OrderedDict()
        # The keys a list in progress has returned; None between lists.
        self._listed: set[Key] | None = None

    def __len__(self) -> int:
        return len(self._records)

    def apply(self, obj: dict[str, Any], *, deleted: bool = False) -> None:
        """
        Insert or update the record of one Event object.

        An object older than the record (a lower resourceVersion) is ignored,
        and one at the same resourceVersion only counts as listed, so a relist
        of an unchanged cluster re-serialises nothing.
        """
        metadata = obj["metadata"]
        key = (metadata.get("namespace") or "", metadata["name"])
        if self._listed is not None:
            self._listed.add(key)
        old = self._records.get(key)
        if old is not None:
            version = parse_resource_version(metadata.get("resourceVersion"))
            if version and version < old.resource_version:
                return
            if version == old.resource_version and deleted == old.deleted:
                return

        record, document = build_record(obj, deleted=deleted)
        if self._put(key, record, old):
            self._remember(key, document)

    def begin_list(self) -> None:
        """Start a (re)list: records not seen before ``finish_list`` are gone."""
        self._listed = set()
        self.synced = False

    def finish_list(self) -> int:
        """Mark records missing from the finished list as deleted; return how many."""
        listed = self._listed or set()
        self._listed = None
        missing = [
            (key, record)
            for key, record in self._records.items()
            if not record.deleted and key not in listed
        ]
        for key, record in missing:
            self._inflated.pop(key, None)
            self._put(key, record.as_deleted(), record)

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
            for record in self._index.newest():
                docs.append(self._json(record))
                if len(docs) == limit:
                    break
            return docs

        # A filtered query walks from the top and stops at ``since``; a rare
        # match may walk the whole store, which is still one pass, no sort.
        for record in self._index.newest():
            if since_us is not None and record.last_seen_us < since_us:
                break
            if (
                (namespace and record.namespace != namespace)
                or (type and record.type != type)
                or (reason and record.reason != reason)
                or (kind and record.kind != kind)
                or (name and record.object_name() != name)
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
        for record in self._index.oldest():
            if record.last_seen_us >= cutoff_us:
                break
            if record.deleted:
                victims.append(record)

        excess = len(self._records) - len(victims) - self.max_records
        if excess > 0:
            chosen = {id(record) for record in victims}
            for record in self._index.oldest():
                if excess <= 0:
                    break
                if id(record) not in chosen:
                    victims.append(record)
                    excess -= 1

        for record in victims:
            self._drop((record.namespace, record.name))
        if victims:
            self.evicted_count += len(victims)
            logger.debug("Evicted %d records.", len(victims))
        return len(victims)

    def _json(self, record: Record) -> bytes:
        key = (record.namespace, record.name)
        document = self._inflated.get(key)
        if document is None:
            document = record.json()
            self._remember(key, document)
        else:
            self._inflated.move_to_end(key)
        return document

    def _remember(self, key: Key, document: bytes) -> None:
        self._inflated[key] = document
        self._inflated.move_to_end(key)
        if len(self._inflated) > INFLATED_RECORDS:
            self._inflated.popitem(last=False)

    def _put(self, key: Key, record: Record, old: Record | None) -> bool:
        """Store ``record`` in place of ``old``; return False if it was evicted at once."""
        if old is not None:
            self._index.remove(old)
            self.deleted_count -= old.deleted
        self.deleted_count += record.deleted
        self._records[key] = record
        self._index.add(record)

        if old is None and len(self._records) > self.max_records:
            # A new record older than all the others is itself the one to go.
            oldest = next(self._index.oldest())
            self._drop((oldest.namespace, oldest.name))
            self.evicted_count += 1
            return oldest is not record
        return True

    def _drop(self, key: Key) -> None:
        record = self._records.pop(key)
        self._index.remove(record)
        self._inflated.pop(key, None)
        self.deleted_count -= record.deleted
