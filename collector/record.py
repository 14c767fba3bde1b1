"""
One normalised record per Kubernetes Event.

The API gives an event's times and count in different fields depending on who
wrote it: the old recorder fills ``firstTimestamp``/``lastTimestamp``/``count``,
the events.k8s.io/v1 broadcaster fills ``eventTime`` and ``series`` and leaves
the others null. A record says the same thing either way, so readers never see
a null "last seen" or a year-1 date, and the order is the same for both.

The record's JSON is serialised once, here, at ingest, and kept deflated: most
of an event's JSON is field names and values that every event repeats, so raw
deflate with a preset dictionary of them keeps under a third of the bytes
(measured on the benchmark's event mix: 918 B of JSON in 254 B). The store keeps the
inflated JSON of the records readers ask for most, so serving ``latest`` for the
newest events still only joins prepared bytes.
"""

from __future__ import annotations

import datetime
import functools
import sys
import zlib
from typing import Any, NamedTuple

import orjson

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
_MICROSECOND = datetime.timedelta(microseconds=1)

# Values that repeat across thousands of records; one shared string each.
_intern = sys.intern

# Raw deflate (negative window bits): no header or checksum, 6 bytes a record
# saved; the bytes never leave this process, so nothing needs to recognise them.
_WINDOW_BITS = -15
_DEFLATE_LEVEL = 6
# NB: deflate finds repeats of the dictionary's text in each record. It holds the
# record's own skeleton in both field orders a record can take, and values that
# real clusters repeat in most events. Changing it makes every stored record
# unreadable, which is harmless only because records never outlive the process.
_PRESET_DICTIONARY = (
    b"Pulling image Successfully pulled image Created container Started container "
    b"Back-off restarting failed container Liveness probe failed: Readiness probe "
    b"failed: HTTP probe failed with statuscode: 0/3 nodes are available: "
    b"preemption: Successfully assigned default-scheduler kubelet "
    b"replicaset-controller deployment-controller Scheduled FailedScheduling "
    b"SuccessfulCreate ScalingReplicaSet BackOff Unhealthy Pulled Pulling Killing "
    b'ReplicaSet Deployment Node Pod apps/v1 spec.containers{"first_seen":"20'
    b'{"namespace":"default","name":"","uid":"","type":"Normal","reason":"",'
    b'"message":"","action":"","object":{"kind":"Pod","namespace":"","name":"",'
    b'"uid":"","api_version":"v1","field_path":""},"source":{"component":"",'
    b'"host":""},"first_seen":"20","last_seen":"20","count":1,'
    b'"resource_version":"","deleted":false}'
    b'{"namespace":"","name":"","uid":"","type":"Warning","reason":"","message":"",'
    b'"action":"","object":{"kind":"Pod","namespace":"","name":"","uid":"",'
    b'"api_version":"v1","field_path":"spec.containers{"},"source":{"component"'
    b':"kubelet","host":""},"first_seen":"20","last_seen":"20","count":1,'
    b'"resource_version":"","deleted":false}'
)


class Record(NamedTuple):
    """
    An event as the store keeps it: sort and filter fields plus its JSON.

    The record is its own entry in the order index: the first four fields are
    the order (last seen, then resourceVersion, then namespace and name) and,
    since namespace and name are unique in the store, tuple comparison never
    reaches the rest. One tuple a record, and no separate index entry, saves
    80 B of each.

    ``packed`` is the record's JSON object, deflated; ``json()`` gives it back
    ready for the wire. The other fields are the few that the filters read, kept
    outside the JSON so that a query never inflates it.
    """

    last_seen_us: int
    resource_version: int
    namespace: str
    name: str
    type: str
    reason: str
    kind: str
    distinct_object_name: str | None
    """The involved object's name; None where it is ``name`` up to its last dot."""
    deleted: bool
    packed: bytes

    def object_name(self) -> str:
        """Return the name of the object the event is about."""
        if self.distinct_object_name is None:
            return self.name.rpartition(".")[0]
        return self.distinct_object_name

    def json(self) -> bytes:
        """Return the record's JSON object."""
        inflater = zlib.decompressobj(_WINDOW_BITS, zdict=_PRESET_DICTIONARY)
        return inflater.decompress(self.packed)

    def as_deleted(self) -> Record:
        """Return the record marked gone from the cluster, every other value kept."""
        if self.deleted:
            return self
        fields = orjson.loads(self.json())
        fields["deleted"] = True
        return self._replace(deleted=True, packed=pack(orjson.dumps(fields)))


def build_record(obj: dict[str, Any], *, deleted: bool = False) -> tuple[Record, bytes]:
    """
    Normalise one Event object, core/v1 or events.k8s.io/v1, into a record.

    Returns the record and its JSON, which the caller may keep at hand instead
    of inflating the record's copy again.

    Raises ``KeyError`` or ``TypeError`` when the object has no metadata name,
    which the caller treats as a malformed frame.
    """
    metadata = obj["metadata"]
    namespace = _intern(metadata.get("namespace") or "")
    name: str = metadata["name"]
    if not isinstance(name, str) or not name:
        raise TypeError("an event without a metadata.name")

    involved = obj.get("involvedObject") or obj.get("regarding") or {}
    source = obj.get("source") or obj.get("deprecatedSource") or {}
    series = obj.get("series") or {}
    created = metadata.get("creationTimestamp")
    event_time = obj.get("eventTime")
    first_timestamp = obj.get("firstTimestamp") or obj.get("deprecatedFirstTimestamp")
    last_timestamp = obj.get("lastTimestamp") or obj.get("deprecatedLastTimestamp")

    # kubectl's rule (series, lastTimestamp, eventTime), extended with the first
    # and creation times so that no event sorts, or shows, as the zero time.
    last_seen, last_seen_us = _first_time(
        series.get("lastObservedTime"),
        last_timestamp,
        event_time,
        first_timestamp,
        created,
    )
    first_seen, _ = _first_time(first_timestamp, event_time, created)

    count = series.get("count") if series else None
    if not count:
        count = obj.get("count") or obj.get("deprecatedCount") or 1

    kind = _intern(involved.get("kind") or "")
    object_name = involved.get("name") or ""
    event_type = _intern(obj.get("type") or "")
    reason = _intern(obj.get("reason") or "")
    resource_version = metadata.get("resourceVersion") or ""
    fields = {
        "namespace": namespace,
        "name": name,
        "uid": metadata.get("uid") or "",
        "type": event_type,
        "reason": reason,
        "message": obj.get("message", obj.get("note")) or "",
        "action": obj.get("action") or "",
        "object": {
            "kind": kind,
            "namespace": involved.get("namespace") or "",
            "name": object_name,
            "uid": involved.get("uid") or "",
            "api_version": involved.get("apiVersion") or "",
            "field_path": involved.get("fieldPath") or "",
        },
        "source": {
            "component": source.get("component")
            or obj.get("reportingComponent")
            or obj.get("reportingController")
            or "",
            "host": source.get("host") or obj.get("reportingInstance") or "",
        },
        "first_seen": first_seen,
        "last_seen": last_seen,
        "count": count,
        "resource_version": resource_version,
        "deleted": deleted,
    }

    # NB: orjson returns its output in a buffer of at least a few KiB; kept as is,
    # each record held about 4 KiB (measured: 196 MiB of RSS for 22 MiB of JSON).
    # The copy the store may keep is made to size, at the cost of one memcpy.
    document = bytes(memoryview(orjson.dumps(fields)))
    record = Record(
        last_seen_us=last_seen_us,
        resource_version=parse_resource_version(resource_version),
        namespace=namespace,
        name=name,
        type=event_type,
        reason=reason,
        kind=kind,
        # Most events are named "<object name>.<hex>" by their recorder; then the
        # object's name is not kept twice (about 70 B a record).
        distinct_object_name=(
            None if name.rpartition(".")[0] == object_name else object_name
        ),
        deleted=deleted,
        packed=pack(document),
    )
    return record, document


def pack(document: bytes) -> bytes:
    """Deflate a record's JSON for keeping; zlib returns it in a bytes of its size."""
    deflater = zlib.compressobj(
        _DEFLATE_LEVEL, zlib.DEFLATED, _WINDOW_BITS, zdict=_PRESET_DICTIONARY
    )
    return deflater.compress(document) + deflater.flush()


def parse_resource_version(value: str) -> int:
    """
    Return a resourceVersion as a number for ordering, or 0 if it is not one.

    The API calls resourceVersions opaque, but every etcd-backed server sends
    the etcd revision, a decimal integer; comparing them as strings would put
    "1000" before "999".
    """
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def epoch_microseconds(moment: datetime.datetime) -> int:
    """Return an aware datetime as microseconds since the epoch."""
    return (moment - _EPOCH) // _MICROSECOND


@functools.lru_cache(maxsize=4096)
def parse_time(value: str) -> int:
    """
    Return an RFC 3339 time as microseconds since the epoch.

    Events in a burst share their second-precision timestamps, so a small cache
    saves most of the parsing during a list or a storm of updates.
    """
    moment = datetime.datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return epoch_microseconds(moment)


def _first_time(*candidates: object) -> tuple[str, int]:
    # Some writers send the zero time as "0001-01-01T00:00:00Z" instead of null;
    # anything at or before the epoch counts as unset.
    for candidate in candidates:
        if not isinstance(candidate, str) or not candidate:
            continue
        try:
            moment = parse_time(candidate)
        except ValueError:
            continue
        if moment > 0:
            return candidate, moment
    return "", 0
