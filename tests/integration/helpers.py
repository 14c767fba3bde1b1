"""
Helpers for the integration tests: waits, Event manifests in both API shapes,
and kubectl's view of the same events.

The collector itself runs as ``tests.collector_process.CollectorProcess``
(``python -m collector`` in its own process, talking to a real kube-apiserver),
so a test can pause it, signal it and read its log; conftest gives it the
generous timeouts below. Every wait here polls against a deadline: the
machine has two cores shared with other work, and a fixed sleep that passes on
a quiet machine fails on a busy one.
"""

from __future__ import annotations

import datetime
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import client
from controlplane import ControlPlane

T = TypeVar("T")

REPO_ROOT = Path(__file__).resolve().parents[2]
POLL_INTERVAL_SECONDS = 0.2
SYNC_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 30.0


def eventually(check: Callable[[], T], *, within: float, what: str) -> T:
    """
    Call ``check`` until it returns without an AssertionError; return its value.

    After the deadline the last AssertionError is raised again, so the failure
    shows what was still wrong rather than only that time ran out.
    """
    deadline = time.monotonic() + within
    while True:
        try:
            return check()
        except (AssertionError, client.CollectorError) as exc:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"still not true after {within:.0f} s: {what}: {exc}"
                ) from exc
        time.sleep(POLL_INTERVAL_SECONDS)


def iso_time(moment: datetime.datetime) -> str:
    """Format a metav1.Time: UTC, to the second."""
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_micro_time(moment: datetime.datetime) -> str:
    """Format a metav1.MicroTime: UTC, six decimals."""
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def core_event(
    *, namespace: str, name: str, at: datetime.datetime, count: int = 1, **fields: Any
) -> dict[str, Any]:
    """An Event as client-go's old recorder writes it through core/v1."""
    event: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"namespace": namespace, "name": name},
        "involvedObject": {
            "apiVersion": "v1",
            "kind": "Pod",
            "namespace": namespace,
            "name": name.split(".")[0],
        },
        "reason": "LiveTest",
        "message": f"{name} from the integration tests",
        "type": "Normal",
        "source": {"component": "live-test", "host": "test-host"},
        "firstTimestamp": iso_time(at),
        "lastTimestamp": iso_time(at),
        "count": count,
    }
    event.update(fields)
    return event


def events_v1_event(
    *, namespace: str, name: str, at: datetime.datetime, **fields: Any
) -> dict[str, Any]:
    """An Event as client-go's new broadcaster writes it through events.k8s.io/v1."""
    event: dict[str, Any] = {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"namespace": namespace, "name": name},
        "regarding": {
            "apiVersion": "v1",
            "kind": "Pod",
            "namespace": namespace,
            "name": name.split(".")[0],
        },
        "eventTime": iso_micro_time(at),
        "reportingController": "example.com/live-test",
        "reportingInstance": "live-test-instance",
        "action": "Testing",
        "reason": "LiveTest",
        "note": f"{name} from the integration tests",
        "type": "Warning",
    }
    event.update(fields)
    return event


def create_objects(plane: ControlPlane, objects: Sequence[dict[str, Any]]) -> None:
    """Create objects with one kubectl call (a List), as real writers would."""
    manifest = {"apiVersion": "v1", "kind": "List", "items": list(objects)}
    plane.kubectl("create", "-f", "-", input=json.dumps(manifest))


def create_namespace(plane: ControlPlane, name: str) -> str:
    """Create a namespace and return its name."""
    plane.kubectl("create", "namespace", name)
    return name


def cluster_events(plane: ControlPlane) -> list[dict[str, Any]]:
    """Return every event in the cluster as ``kubectl get events -A -o json`` does."""
    result = plane.kubectl("get", "events", "-A", "-o", "json")
    items: list[dict[str, Any]] = json.loads(result.stdout)["items"]
    return items


def event_key(event: dict[str, Any]) -> tuple[str, str]:
    """(namespace, name) of an API Event."""
    return (event["metadata"].get("namespace", ""), event["metadata"]["name"])


def record_key(record: dict[str, Any]) -> tuple[str, str]:
    """(namespace, name) of a collector record."""
    return (record["namespace"], record["name"])


def kubectl_count(event: dict[str, Any]) -> int:
    """The COUNT kubectl shows: series.count, else count, else 1."""
    series = event.get("series")
    if series:
        return int(series["count"])
    return int(event.get("count") or 1)


def kubectl_sort_time(event: dict[str, Any]) -> str:
    """
    The time ``kubectl events`` sorts by, or "" where it uses the zero time.

    series.lastObservedTime if there is a series, else lastTimestamp if set,
    else eventTime: kubectl/pkg/cmd/events's eventTime().
    """
    series = event.get("series")
    if series:
        return str(series.get("lastObservedTime") or "")
    return str(event.get("lastTimestamp") or event.get("eventTime") or "")


def parse_time(value: str) -> datetime.datetime:
    """Parse an API time (Time or MicroTime)."""
    return datetime.datetime.fromisoformat(value)
