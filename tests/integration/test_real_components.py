"""
Events written by real Kubernetes components, seen through the collector and
through kubectl side by side.

A control plane with kube-scheduler and kube-controller-manager runs a
Deployment that can never be scheduled (the cluster has no nodes). That makes
both writers of the Events API speak: the controllers' old recorder
(ScalingReplicaSet, SuccessfulCreate: count and timestamps through core/v1)
and the scheduler's new broadcaster (FailedScheduling: eventTime, then a
series PATCHed on its retry). kubectl is the reference for what the cluster
holds and for how it orders and counts events.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from controlplane import ControlPlane, ControlPlaneError
from tests.collector_process import CollectorProcess
from tests.integration.helpers import (
    cluster_events,
    event_key,
    eventually,
    kubectl_count,
    kubectl_sort_time,
    parse_time,
    record_key,
)

pytestmark = pytest.mark.integration

NAMESPACE = "shop"
# The scheduler's first retry (the one that writes a series) comes after a
# backoff of a few seconds; the margin is for a loaded machine.
REAL_EVENTS_SECONDS = 120.0
CONVERGE_SECONDS = 60.0
REAL_REASONS = {"ScalingReplicaSet", "SuccessfulCreate", "FailedScheduling"}


@pytest.fixture(scope="module")
def busy_cluster(control_plane_bin_dir: Path) -> Iterator[ControlPlane]:
    """A cluster with an unschedulable Deployment whose components wrote events."""
    plane = ControlPlane(
        bin_dir=control_plane_bin_dir, scheduler=True, controller_manager=True
    )
    try:
        plane.start()
    except ControlPlaneError as exc:
        pytest.fail(f"could not start the control plane: {exc}", pytrace=False)
    try:
        plane.kubectl("create", "namespace", NAMESPACE)
        plane.kubectl(
            "create", "deployment", "web", "-n", NAMESPACE, "--image=busybox",
            "--replicas=3", "--", "sleep", "3600",
        )  # fmt: skip
        eventually(
            lambda: assert_real_events_written(cluster_events(plane)),
            within=REAL_EVENTS_SECONDS,
            what="the components' events",
        )
        yield plane
    finally:
        plane.stop()


def assert_real_events_written(items: list[dict[str, Any]]) -> None:
    reasons = {item.get("reason") for item in items}
    assert REAL_REASONS <= reasons, reasons
    retried = [item for item in items if item.get("series")]
    assert retried, "no event with a series yet (the scheduler has not retried)"


def versions(items: list[dict[str, Any]]) -> dict[tuple[str, str], str]:
    return {event_key(item): item["metadata"]["resourceVersion"] for item in items}


def wide_table_counts(plane: ControlPlane) -> dict[tuple[str, str], int]:
    """COUNT by namespace/name, read from the table of ``kubectl get events -o wide``."""
    table = plane.kubectl("get", "events", "-A", "-o", "wide", "--no-headers").stdout
    counts = {}
    for row in table.splitlines():
        # Messages have spaces, but NAMESPACE leads the row and COUNT, NAME end it.
        cells = row.split()
        counts[(cells[0], cells[-1])] = int(cells[-2])
    return counts


def test_component_events_are_deduplicated_with_kubectls_counts(
    busy_cluster: ControlPlane,
    start_collector: Callable[..., CollectorProcess],
) -> None:
    collector = start_collector(busy_cluster.kubeconfig)

    def matches() -> list[dict[str, Any]]:
        before = cluster_events(busy_cluster)
        table = wide_table_counts(busy_cluster)
        records = collector.latest()
        after = cluster_events(busy_cluster)
        assert versions(before) == versions(after), "the cluster changed meanwhile"

        keys = [record_key(record) for record in records]
        assert len(keys) == len(set(keys)), "more than one record for an event"
        by_key = {event_key(item): item for item in after}
        assert set(keys) == set(by_key)
        assert {record_key(r): r["count"] for r in records} == table
        for record in records:
            item = by_key[record_key(record)]
            assert record["count"] == kubectl_count(item)
            assert (record["reason"], record["type"]) == (item["reason"], item["type"])
            assert record["resource_version"] == item["metadata"]["resourceVersion"]
            assert record["deleted"] is False
        return records

    records = eventually(
        matches, within=CONVERGE_SECONDS, what="the records match kubectl"
    )
    by_reason: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_reason.setdefault(record["reason"], []).append(record)
    assert REAL_REASONS <= set(by_reason)
    assert {r["source"]["component"] for r in by_reason["FailedScheduling"]} == {
        "default-scheduler"
    }
    assert {r["source"]["component"] for r in by_reason["ScalingReplicaSet"]} == {
        "deployment-controller"
    }
    assert max(r["count"] for r in by_reason["FailedScheduling"]) >= 2


def test_latest_holds_the_clusters_events_in_kubectl_events_order(
    busy_cluster: ControlPlane,
    start_collector: Callable[..., CollectorProcess],
) -> None:
    """
    ``latest(N)`` is exactly kubectl's events, newest first as kubectl orders them.

    ``kubectl events`` sorts oldest first by series.lastObservedTime, else
    lastTimestamp, else eventTime, with an unstable sort and no tie-breaker.
    Its order of two events is therefore defined only where their sort times
    differ, and neither is the zero time (no series, lastTimestamp nor
    eventTime), which kubectl sorts first and we place by firstTimestamp or
    creation. For every such pair, our order must be the reverse of kubectl's;
    ties may come in any order.
    """
    collector = start_collector(busy_cluster.kubeconfig)

    def kubectl_events() -> list[dict[str, Any]]:
        result = busy_cluster.kubectl("events", "-A", "-o", "json")
        items: list[dict[str, Any]] = json.loads(result.stdout)["items"]
        return items

    def ordered() -> int:
        before = kubectl_events()
        records = collector.latest(len(before))
        beyond = collector.latest(len(before) + 50)
        after = kubectl_events()
        assert versions(before) == versions(after), "the cluster changed meanwhile"

        assert [record_key(r) for r in beyond] == [record_key(r) for r in records]
        assert {record_key(r) for r in records} == set(versions(after))
        sort_times = [kubectl_sort_time(item) for item in after]
        assert all(sort_times), "an event kubectl sorts as the zero time"
        moments = [parse_time(value) for value in sort_times]
        assert moments == sorted(moments), "kubectl events did not sort as read"
        return compare_pairs(records, after)

    compared = eventually(
        ordered, within=CONVERGE_SECONDS, what="latest() in kubectl's order"
    )
    assert compared > 0, "no two events with different times: nothing was compared"


def compare_pairs(records: list[dict[str, Any]], oldest_first: list[Any]) -> int:
    """Check every pair whose kubectl time differs; return how many there were."""
    position = {event_key(item): n for n, item in enumerate(oldest_first)}
    moment = {
        event_key(item): parse_time(kubectl_sort_time(item)) for item in oldest_first
    }
    keys = [record_key(record) for record in records]
    compared = 0
    for i, newer in enumerate(keys):
        for older in keys[i + 1 :]:
            if moment[newer] == moment[older]:
                continue
            assert moment[newer] > moment[older], (newer, older)
            assert position[newer] > position[older], (newer, older)
            compared += 1
    return compared
