"""Builders for Event objects as the API server returns them."""

from __future__ import annotations

from typing import Any


def core_event(
    uid: str,
    *,
    namespace: str = "team-a",
    name: str | None = None,
    rv: str = "100",
    created: str = "2026-05-01T10:00:00Z",
    last: str | None = None,
    first: str | None = None,
    count: int | None = None,
    event_time: str | None = None,
    series: dict[str, Any] | None = None,
    message: str = "Container image pulled",
    reason: str = "Pulled",
    type: str = "Normal",
    involved: dict[str, Any] | None = None,
    source: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Return a core/v1 Event about pod web-1, with the fields the tests vary."""
    event: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "uid": uid,
            "namespace": namespace,
            "name": name or f"web-1.{uid}",
            "resourceVersion": rv,
            "creationTimestamp": created,
        },
        "involvedObject": involved
        or {"kind": "Pod", "namespace": namespace, "name": "web-1", "uid": "p-1"},
        "type": type,
        "reason": reason,
        "message": message,
        "source": {"component": "kubelet", "host": "node-a"}
        if source is None
        else source,
        "firstTimestamp": first,
        "lastTimestamp": last,
        "eventTime": event_time,
    }
    if count is not None:
        event["count"] = count
    if series is not None:
        event["series"] = series
    event.update(extra)
    return event


def frame(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    """Return one watch frame."""
    return {"type": kind, "object": obj}
