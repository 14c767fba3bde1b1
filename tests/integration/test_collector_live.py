"""
The collector, as its own process, against a real kube-apiserver and etcd.

These are the cases a scripted API cannot vouch for: what the server really
sends for events written through either API group, for a PATCH, for a TTL
expiry, for a watch whose resourceVersion was compacted away, and across an
API server restart. Events are written with the built kubectl, as a user or a
controller would write them.
"""

from __future__ import annotations

import datetime
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from controlplane import ControlPlane
from tests.collector_process import CollectorProcess
from tests.integration.helpers import (
    cluster_events,
    core_event,
    create_namespace,
    create_objects,
    event_key,
    events_v1_event,
    eventually,
    iso_micro_time,
    iso_time,
    kubectl_count,
    kubectl_sort_time,
    record_key,
)

pytestmark = pytest.mark.integration

# Generous: the machine has two cores and other suites may run beside us.
CONVERGE_SECONDS = 60.0
# etcd checks leases about every half second; the API server adds up to 5% of
# the TTL to each lease. Expiry still lands within seconds of a 5 s TTL.
EVENT_TTL_SECONDS = 5.0
COMPACTION_INTERVAL_SECONDS = 2.0


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def assert_records_match_cluster(
    records: list[dict[str, Any]], items: list[dict[str, Any]]
) -> None:
    """Each record says what the API object says: version, uid, count, times."""
    by_key = {event_key(item): item for item in items}
    assert sorted(record_key(r) for r in records) == sorted(by_key)
    for record in records:
        item = by_key[record_key(record)]
        assert record["deleted"] is False
        assert record["uid"] == item["metadata"]["uid"]
        assert record["resource_version"] == item["metadata"]["resourceVersion"]
        assert record["count"] == kubectl_count(item)
        assert record["last_seen"] == kubectl_sort_time(item)
        assert record["reason"] == item["reason"]
        assert record["type"] == item["type"]


def expect_namespace(
    collector: CollectorProcess,
    plane: ControlPlane,
    namespace: str,
    names: list[str],
) -> list[dict[str, Any]]:
    """Wait until the namespace's records are ``names`` in order and match kubectl."""

    def check() -> list[dict[str, Any]]:
        records = collector.latest(namespace=namespace)
        assert [r["name"] for r in records] == names
        items = [
            item for item in cluster_events(plane) if event_key(item)[0] == namespace
        ]
        assert_records_match_cluster(records, items)
        return records

    return eventually(check, within=CONVERGE_SECONDS, what=f"{namespace}: {names}")


def ten_minutes_ago() -> Callable[[float], datetime.datetime]:
    """Return ``at(seconds)``: a time that many seconds after ten minutes ago."""
    base = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    base -= datetime.timedelta(minutes=10)
    return lambda seconds: base + datetime.timedelta(seconds=seconds)


def create_four_events(
    plane: ControlPlane, namespace: str, at: Callable[[float], datetime.datetime]
) -> None:
    """Two events from each API group; newest first: d, b, c, a."""
    # Created in an order unlike their times, so resourceVersion order is wrong.
    create_objects(
        plane,
        [
            events_v1_event(namespace=namespace, name="pod-d.1", at=at(200.123456)),
            events_v1_event(namespace=namespace, name="pod-c.1", at=at(120.5)),
            core_event(
                namespace=namespace,
                name="pod-b.1",
                at=at(180),
                count=4,
                firstTimestamp=iso_time(at(0)),
            ),
            core_event(namespace=namespace, name="pod-a.1", at=at(60)),
        ],
    )


def test_events_from_both_api_groups_reach_latest_newest_first(
    control_plane: ControlPlane,
    start_collector: Callable[..., CollectorProcess],
) -> None:
    namespace = create_namespace(control_plane, unique("both-apis"))
    collector = start_collector(control_plane.kubeconfig)
    at = ten_minutes_ago()

    create_four_events(control_plane, namespace, at)
    records = expect_namespace(
        collector,
        control_plane,
        namespace,
        ["pod-d.1", "pod-b.1", "pod-c.1", "pod-a.1"],
    )
    new_style, old_style = records[0], records[1]
    assert new_style["source"] == {
        "component": "example.com/live-test",
        "host": "live-test-instance",
    }
    assert new_style["action"] == "Testing"
    assert new_style["first_seen"] == iso_micro_time(at(200.123456))
    assert new_style["message"] == "pod-d.1 from the integration tests"
    assert old_style["source"] == {"component": "live-test", "host": "test-host"}
    assert old_style["first_seen"] == iso_time(at(0))
    assert old_style["count"] == 4

    # The new broadcaster's second occurrence: a series added by a later PATCH.
    series = {"series": {"count": 2, "lastObservedTime": iso_micro_time(at(240.25))}}
    control_plane.kubectl(
        "patch", "events.events.k8s.io", "pod-c.1", "-n", namespace,
        "--type=merge", "-p", json.dumps(series),
    )  # fmt: skip
    records = expect_namespace(
        collector,
        control_plane,
        namespace,
        ["pod-c.1", "pod-d.1", "pod-b.1", "pod-a.1"],
    )
    assert records[0]["count"] == 2
    assert records[0]["first_seen"] == iso_micro_time(at(120.5))


@pytest.mark.parametrize(
    ("patch_type", "name", "order"),
    [
        pytest.param(
            "strategic",
            "pod-a.1",
            ["pod-a.1", "pod-d.1", "pod-b.1", "pod-c.1"],
            id="strategic-merge",
        ),
        pytest.param(
            "merge", "pod-b.1", ["pod-b.1", "pod-d.1", "pod-c.1", "pod-a.1"], id="merge"
        ),
    ],
)
def test_a_patch_of_count_and_last_timestamp_updates_the_one_record(
    control_plane: ControlPlane,
    start_collector: Callable[..., CollectorProcess],
    patch_type: str,
    name: str,
    order: list[str],
) -> None:
    namespace = create_namespace(control_plane, unique("patch"))
    collector = start_collector(control_plane.kubeconfig)
    at = ten_minutes_ago()
    create_four_events(control_plane, namespace, at)
    before = expect_namespace(
        collector,
        control_plane,
        namespace,
        ["pod-d.1", "pod-b.1", "pod-c.1", "pod-a.1"],
    )
    old = next(record for record in before if record["name"] == name)

    # The old recorder's repeat: count and lastTimestamp, name and first time kept.
    bump = {"count": 9, "lastTimestamp": iso_time(at(300))}
    control_plane.kubectl(
        "patch", "event", name, "-n", namespace,
        f"--type={patch_type}", "-p", json.dumps(bump),
    )  # fmt: skip

    after = expect_namespace(collector, control_plane, namespace, order)
    assert len(after) == len(before)
    assert after[0]["count"] == 9
    assert after[0]["last_seen"] == iso_time(at(300))
    assert after[0]["uid"] == old["uid"]
    assert after[0]["first_seen"] == old["first_seen"]
    assert int(after[0]["resource_version"]) > int(old["resource_version"])


def test_an_event_expired_by_the_ttl_arrives_deleted_and_is_kept(
    start_control_plane: Callable[..., ControlPlane],
    start_collector: Callable[..., CollectorProcess],
) -> None:
    plane = start_control_plane(event_ttl=EVENT_TTL_SECONDS)
    collector = start_collector(plane.kubeconfig)
    now = datetime.datetime.now(datetime.UTC)
    create_objects(plane, [core_event(namespace="default", name="short.1", at=now)])

    def seen() -> dict[str, Any]:
        records = collector.latest(namespace="default", name="short")
        assert [r["name"] for r in records] == ["short.1"]
        return records[0]

    created = eventually(seen, within=CONVERGE_SECONDS, what="the event arrived")

    def expired() -> dict[str, Any]:
        record = seen()
        assert record["deleted"] is True
        return record

    record = eventually(expired, within=CONVERGE_SECONDS, what="the event expired")

    assert "short.1" not in {event_key(e)[1] for e in cluster_events(plane)}
    assert {
        k: v for k, v in record.items() if k not in ("deleted", "resource_version")
    } == {k: v for k, v in created.items() if k not in ("deleted", "resource_version")}
    # A DELETED frame carries the revision of the deletion.
    assert int(record["resource_version"]) > int(created["resource_version"])
    stats = collector.stats()
    assert stats["deleted"] == 1
    # It came as a DELETED frame on the watch, not as a gap found by a relist.
    assert stats["lists"] == 1


def wait_compacted(plane: ControlPlane, resource_version: str) -> None:
    """Wait until etcd compacted past ``resource_version`` (an exact list is 410)."""

    def compacted() -> None:
        result = plane.kubectl(
            "get",
            "--raw",
            f"/api/v1/events?limit=1&resourceVersion={resource_version}"
            "&resourceVersionMatch=Exact",
            check=False,
        )
        assert result.returncode != 0, f"{resource_version} is still readable"
        assert "Expired" in result.stderr or "too old" in result.stderr, result.stderr

    eventually(
        compacted, within=CONVERGE_SECONDS, what=f"compaction past {resource_version}"
    )


def test_a_watch_held_back_past_compaction_relists_and_keeps_deleted_events(
    start_control_plane: Callable[..., ControlPlane],
    start_collector: Callable[..., CollectorProcess],
) -> None:
    """
    Freeze the collector, move the cluster on, compact, and let it go.

    SIGSTOP alone does not do it: the open watch stays open and the server
    buffers the frames for it. The API server is therefore restarted while the
    collector is frozen, so that the collector must watch again from its old
    resourceVersion, which compaction has removed by then.
    """
    plane = start_control_plane(etcd_compaction_interval=COMPACTION_INTERVAL_SECONDS)
    namespace = create_namespace(plane, "held-back")
    collector = start_collector(plane.kubeconfig)
    now = datetime.datetime.now(datetime.UTC)
    kept = [f"kept-{i}.1" for i in range(5)]
    doomed = [f"doomed-{i}.1" for i in range(3)]
    create_objects(
        plane,
        [core_event(namespace=namespace, name=name, at=now) for name in kept + doomed],
    )
    eventually(
        lambda: assert_records_match_cluster(collector.latest(), cluster_events(plane)),
        within=CONVERGE_SECONDS,
        what="the first events arrived",
    )
    held_at = collector.stats()["resource_version"]

    collector.pause()
    plane.stop_apiserver()
    plane.start_apiserver()
    later = now + datetime.timedelta(seconds=30)
    added = [f"added-{i}.1" for i in range(10)]
    create_objects(
        plane, [core_event(namespace=namespace, name=n, at=later) for n in added]
    )
    plane.kubectl("delete", "events", "-n", namespace, *doomed)
    bump = {"count": 7, "lastTimestamp": iso_time(later)}
    plane.kubectl("patch", "event", kept[0], "-n", namespace, "-p", json.dumps(bump))
    wait_compacted(plane, held_at)
    collector.resume()

    def relisted() -> None:
        stats = collector.stats()
        assert stats["lists"] >= 2 and stats["synced"], stats
        records = collector.latest()
        live = [r for r in records if not r["deleted"]]
        assert_records_match_cluster(live, cluster_events(plane))
        gone = sorted(r["name"] for r in records if r["deleted"])
        assert gone == doomed

    eventually(relisted, within=CONVERGE_SECONDS, what="the relist after compaction")
    assert collector.latest(name="kept-0")[0]["count"] == 7
    log = collector.log()
    assert "Listing again" in log or "relisting" in log, collector.tail()
    # Which of the two signals the server gave: the 410 ERROR frame, or watches
    # that closed at once. Either must lead to the relist checked above.
    assert f"Watch at resourceVersion {held_at} expired (410)" in log or (
        f"Watch at resourceVersion {held_at} closed empty" in log
    ), collector.tail()


def test_an_api_server_restart_is_survived_without_losing_events(
    start_control_plane: Callable[..., ControlPlane],
    start_collector: Callable[..., CollectorProcess],
) -> None:
    plane = start_control_plane()
    namespace = create_namespace(plane, "restart")
    collector = start_collector(plane.kubeconfig)
    now = datetime.datetime.now(datetime.UTC)

    def events(prefix: str) -> list[dict[str, Any]]:
        names = [f"{prefix}-{i}.1" for i in range(3)]
        return [core_event(namespace=namespace, name=n, at=now) for n in names]

    create_objects(plane, events("early"))
    eventually(
        lambda: assert_records_match_cluster(
            collector.latest(namespace=namespace), cluster_events(plane)
        ),
        within=CONVERGE_SECONDS,
        what="the early events arrived",
    )
    # Killed right after the write: these may or may not have reached the
    # collector before its connection died.
    create_objects(plane, events("late"))
    killed_at = time.time()
    plane.stop_apiserver()

    def failing() -> None:
        stats = collector.stats()
        assert stats["last_error"] and stats["last_error_at"] >= killed_at, stats

    eventually(failing, within=CONVERGE_SECONDS, what="the outage noticed")
    during = collector.latest(namespace=namespace)
    assert {"early-0.1", "early-1.1", "early-2.1"} <= {r["name"] for r in during}
    collector.assert_running()

    plane.start_apiserver()
    create_objects(plane, events("after"))

    def caught_up() -> None:
        records = collector.latest(namespace=namespace)
        assert len(records) == 9, [r["name"] for r in records]
        assert_records_match_cluster(records, cluster_events(plane))

    eventually(caught_up, within=CONVERGE_SECONDS, what="every event after restart")
    collector.assert_running()
