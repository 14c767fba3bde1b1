"""
The real-world cases, each restated from the team's case list and named by its
id. Inputs go through the scripted API server and the real client; the
assertions are the cases' expected values.
"""

from __future__ import annotations

import asyncio
import datetime
import json

from tests.events import core_event, frame
from tests.fakeapi import ListStep, WatchStep


def uids(events: list[dict]) -> list[str]:
    return [event["uid"] for event in events]


def instant(value: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(value)


async def ingest(run_collector, objects, **kwargs):
    """Start a collector whose first list returns ``objects``; wait until synced."""
    script = [ListStep("100", objects), WatchStep("100")]
    harness_cm = run_collector(script, **kwargs)
    harness = await harness_cm.__aenter__()
    await harness.wait_for(lambda: harness.store.synced, what="the first sync")
    return harness_cm, harness


async def test_C01_null_last_timestamp_sorts_by_event_time(run_collector):
    objects = [
        core_event(
            "a", last="2026-05-01T10:00:05Z", first="2026-05-01T10:00:05Z", count=1
        ),
        core_event(
            "b",
            reason="Scheduled",
            source={},
            reportingComponent="default-scheduler",
            action="Binding",
            event_time="2026-05-01T10:00:09.123456Z",
        ),
    ]
    cm, harness = await ingest(run_collector, objects)
    try:
        assert uids(await harness.latest(2)) == ["b", "a"]
        latest_1 = await harness.latest(1)
        assert uids(latest_1) == ["b"]
        assert latest_1[0]["last_seen"] == "2026-05-01T10:00:09.123456Z"
        assert latest_1[0]["source"]["component"] == "default-scheduler"
    finally:
        await cm.__aexit__(None, None, None)


async def test_C02_series_gives_last_seen_and_count(run_collector):
    objects = [
        core_event(
            "s",
            event_time="2026-05-01T10:00:00.100000Z",
            series={"count": 7, "lastObservedTime": "2026-05-01T10:06:00.500000Z"},
        ),
        core_event(
            "l", last="2026-05-01T10:05:00Z", first="2026-05-01T10:04:00Z", count=2
        ),
    ]
    cm, harness = await ingest(run_collector, objects)
    try:
        events = await harness.latest(2)
        assert uids(events) == ["s", "l"]
        record = events[0]
        assert record["count"] == 7
        assert instant(record["first_seen"]) == instant("2026-05-01T10:00:00.100000Z")
        assert instant(record["last_seen"]) == instant("2026-05-01T10:06:00.500000Z")
    finally:
        await cm.__aexit__(None, None, None)


async def test_C03_zero_count_and_null_times_fall_back(run_collector):
    objects = [
        core_event(
            "f",
            created="2026-05-01T10:02:00Z",
            type="Warning",
            reason="FailedScheduling",
            count=0,
            series=None,
            event_time="2026-05-01T10:01:59.900000Z",
        ),
        core_event(
            "g",
            created="2026-05-01T10:02:00Z",
            type="Warning",
            reason="FailedScheduling",
            count=0,
        ),
    ]
    objects[0]["series"] = None
    cm, harness = await ingest(run_collector, objects)
    try:
        events = await harness.latest(2)
        assert uids(events) == ["g", "f"]
        by_uid = {event["uid"]: event for event in events}
        assert by_uid["f"]["count"] == 1
        assert instant(by_uid["f"]["last_seen"]) == instant(
            "2026-05-01T10:01:59.900000Z"
        )
        assert by_uid["g"]["count"] == 1
        assert instant(by_uid["g"]["last_seen"]) == instant("2026-05-01T10:02:00Z")
        raw = await harness.raw(b'{"op":"latest","limit":2}\n')
        assert b"0001-01-01" not in raw
    finally:
        await cm.__aexit__(None, None, None)


async def test_C04_events_v1_shape_is_read(run_collector):
    legacy = {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {
            "uid": "u4",
            "namespace": "team-a",
            "name": "web-1.u4",
            "resourceVersion": "100",
            "creationTimestamp": "2026-05-01T10:01:00Z",
        },
        "regarding": {"kind": "Pod", "name": "web-1", "namespace": "team-a"},
        "note": "Back-off restarting failed container",
        "reason": "BackOff",
        "type": "Warning",
        "eventTime": None,
        "deprecatedFirstTimestamp": "2026-05-01T10:01:00Z",
        "deprecatedLastTimestamp": "2026-05-01T10:03:00Z",
        "deprecatedCount": 3,
        "deprecatedSource": {"component": "kubelet", "host": "node-a"},
    }
    cm, harness = await ingest(run_collector, [legacy])
    try:
        events = await harness.latest(1)
        assert uids(events) == ["u4"]
        record = events[0]
        assert record["count"] == 3
        assert instant(record["last_seen"]) == instant("2026-05-01T10:03:00Z")
        assert record["message"] == "Back-off restarting failed container"
        assert record["object"]["kind"] == "Pod"
        assert record["object"]["name"] == "web-1"
    finally:
        await cm.__aexit__(None, None, None)


async def test_C05_times_compare_as_instants_not_strings(run_collector):
    objects = [
        core_event(
            "A", last="2026-05-01T10:00:05Z", first="2026-05-01T10:00:05Z", count=1
        ),
        core_event("B", event_time="2026-05-01T10:00:05.250000Z"),
        core_event("C", event_time="2026-05-01T10:00:04.999999Z"),
    ]
    cm, harness = await ingest(run_collector, objects)
    try:
        events = await harness.latest(3)
        assert uids(events) == ["B", "A", "C"]
        assert instant(events[0]["last_seen"]) == instant("2026-05-01T10:00:05.250000Z")
    finally:
        await cm.__aexit__(None, None, None)


def many_updates() -> list[dict]:
    first = datetime.datetime(2026, 5, 1, 9, 50, 26, tzinfo=datetime.UTC)
    last = datetime.datetime(2026, 5, 1, 9, 59, 30, tzinfo=datetime.UTC)
    frames = []
    for count in range(1, 143):
        moment = first + (last - first) * (count - 1) / 141
        stamp = moment.replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")
        message = (
            "Readiness probe failed: HTTP 503"
            if count == 142
            else "Readiness probe failed: timeout"
        )
        event = core_event(
            "u1",
            rv=str(99 + count),
            first="2026-05-01T09:50:26Z",
            last=stamp,
            count=count,
            message=message,
            type="Warning",
            reason="Unhealthy",
        )
        frames.append(frame("ADDED" if count == 1 else "MODIFIED", event))
    return frames


async def test_C07_many_updates_keep_one_record(run_collector):
    script = [ListStep("90", []), WatchStep("90", many_updates())]
    async with run_collector(script) as harness:
        await harness.wait_for(lambda: harness.watcher.resource_version == "241")
        events = await harness.latest(100)
        assert uids(events) == ["u1"]
        assert len(harness.store) == 1
        record = events[0]
        assert record["count"] == 142
        assert instant(record["first_seen"]) == instant("2026-05-01T09:50:26Z")
        assert instant(record["last_seen"]) == instant("2026-05-01T09:59:30Z")
        assert record["message"] == "Readiness probe failed: HTTP 503"


async def test_C09_ttl_delete_keeps_the_record_marked_deleted(run_collector):
    event = core_event(
        "u1",
        rv="100",
        count=3,
        last="2026-05-01T10:00:00Z",
        first="2026-05-01T09:58:00Z",
    )
    gone = json.loads(json.dumps(event))
    gone["metadata"]["resourceVersion"] = "5000"
    script = [
        ListStep("99", []),
        WatchStep(
            "99", [frame("ADDED", event), frame("DELETED", gone)], end="gone-410"
        ),
        ListStep("5100", []),
        WatchStep("5100"),
    ]
    async with run_collector(script) as harness:
        await harness.wait_for(
            lambda: len(harness.api.lists) == 2 and harness.store.synced
        )
        events = await harness.latest(10)
        assert uids(events) == ["u1"]
        assert len(harness.store) == 1
        assert events[0]["deleted"] is True
        assert events[0]["count"] == 3
        assert instant(events[0]["last_seen"]) == instant("2026-05-01T10:00:00Z")
        assert harness.api.mismatches == []


async def test_C11_gone_410_frame_relists_once_and_reconciles(run_collector):
    a = core_event("A", rv="990", count=1, last="2026-05-01T10:00:00Z")
    b = core_event("B", rv="995", count=1, last="2026-05-01T10:00:01Z")
    b2 = core_event("B", rv="1010", count=2, last="2026-05-01T10:00:10Z")
    a2 = core_event("A", rv="1550", count=3, last="2026-05-01T10:00:30Z")
    c = core_event("C", rv="1560", count=1, last="2026-05-01T10:00:20Z")
    script = [
        ListStep("1000", [a, b]),
        WatchStep("1000", [frame("MODIFIED", b2)], end="gone-410"),
        ListStep("1600", [a2, c]),
        WatchStep("1600"),
    ]
    async with run_collector(script) as harness:
        await harness.wait_for(lambda: len(harness.api.watches) == 2)
        events = await harness.latest(10)
        assert len(harness.api.lists) == 2
        assert len(harness.store) == 3
        assert uids(events) == ["A", "C", "B"]
        by_uid = {event["uid"]: event for event in events}
        assert by_uid["A"]["count"] == 3
        assert by_uid["B"]["deleted"] is True
        assert by_uid["B"]["count"] == 2
        assert by_uid["C"]["deleted"] is False
        assert harness.api.mismatches == []


async def test_C12_stale_watch_closing_empty_relists_with_backoff(run_collector):
    from collector.watching import WatchSettings

    a = core_event("A", rv="990", last="2026-05-01T10:00:00Z", count=1)
    d = core_event("D", rv="1990", last="2026-05-01T10:10:00Z", count=1)
    script = [
        ListStep("1000", [a]),
        WatchStep("1000", end="close", repeat=True),
        ListStep("2000", [a, d]),
        WatchStep("2000"),
    ]
    # The real backoff floor: what keeps a stale watch from becoming a tight loop.
    settings = WatchSettings(idle_timeout=5.0)
    async with run_collector(script, settings=settings) as harness:
        await harness.wait_for(
            lambda: any(
                w.params.get("resourceVersion") == "2000" for w in harness.api.watches
            ),
            within=20,
        )
        await asyncio.sleep(1.0)
        assert len(harness.api.lists) == 2
        assert len(harness.store) == 2
        assert uids(await harness.latest(10)) == ["D", "A"]
        times = [w.at for w in harness.api.watches]
        gaps = [
            later - earlier for earlier, later in zip(times, times[1:], strict=False)
        ]
        assert gaps and min(gaps) >= 1.0, gaps
        assert harness.api.mismatches == []


async def test_C14_bookmark_moves_the_resume_point_only(run_collector):
    a = core_event("A", rv="90", last="2026-05-01T10:00:00Z", count=1)
    bookmark = {
        "kind": "Event",
        "apiVersion": "v1",
        "metadata": {"resourceVersion": "12345"},
        "involvedObject": {},
        "source": {},
        "firstTimestamp": None,
        "lastTimestamp": None,
        "eventTime": None,
    }
    script = [
        ListStep("100", [a]),
        WatchStep("100", [frame("BOOKMARK", bookmark)], end="reset"),
        WatchStep("12345"),
    ]
    async with run_collector(script) as harness:
        await harness.wait_for(lambda: len(harness.api.watches) == 2)
        assert harness.api.watches[1].params["resourceVersion"] == "12345"
        assert len(harness.api.lists) == 1
        assert len(harness.store) == 1
        assert harness.api.mismatches == []


async def test_C15_cut_mid_frame_resumes_before_the_partial_frame(run_collector):
    u1 = core_event("u1", rv="200", last="2026-05-01T10:00:00Z", count=1)
    u2 = core_event("u2", rv="201", last="2026-05-01T10:00:01Z", count=1)
    script = [
        ListStep("199", []),
        WatchStep(
            "199",
            [frame("ADDED", u1), frame("ADDED", u2)],
            end="reset-inside-last-frame",
        ),
        WatchStep("200", [frame("ADDED", u2)]),
    ]
    async with run_collector(script) as harness:
        await harness.wait_for(lambda: len(harness.store) == 2)
        assert uids(await harness.latest(10)) == ["u2", "u1"]
        assert len(harness.api.lists) == 1
        assert harness.watcher.bad_frames == 0
        assert harness.api.mismatches == []


async def test_C17_big_initial_list_restarts_on_expired_continue(run_collector):
    items = [
        core_event(
            f"e{i}",
            name=f"pod-{i}.{i:x}",
            rv=str(1000 + i),
            last=f"2026-05-01T10:{i // 600 % 60:02d}:{i % 60:02d}Z",
            count=1,
        )
        for i in range(12_000)
    ]
    script = [
        ListStep("20000", items, expire_on_page=13, page_delay=0.01),
        WatchStep("20000"),
    ]
    async with run_collector(script) as harness:
        replies = []
        deadline = asyncio.get_running_loop().time() + 30
        while not harness.store.synced:
            assert asyncio.get_running_loop().time() < deadline, "never synced"
            replies.append(
                json.loads(await harness.raw(b'{"op":"latest","limit":1}\n'))
            )
            await asyncio.sleep(0.02)
        assert any(reply["synced"] is False for reply in replies)
        assert len(harness.store) == 12_000
        assert len(harness.api.lists) == 2
        after = json.loads(await harness.raw(b'{"op":"latest","limit":1}\n'))
        assert after["synced"] is True


async def test_C19_huge_message_survives_byte_exact_on_one_line(run_collector):
    message = "x" * 300_000
    objects = [core_event("big", last="2026-05-01T10:00:00Z", count=1, message=message)]
    cm, harness = await ingest(run_collector, objects)
    try:
        events = await harness.latest(1)
        assert events[0]["message"] == message
        raw = await harness.raw(b'{"op":"latest","limit":1}\n')
        assert raw.endswith(b"\n") and raw.count(b"\n") == 1
        assert json.loads(raw)["events"][0]["message"] == message
    finally:
        await cm.__aexit__(None, None, None)


async def test_C20_cjk_message_split_inside_a_character(run_collector):
    message = "节点 node-a 磁盘压力 DiskPressure ✓ 🚀"
    event = core_event(
        "u7",
        namespace="default",
        involved={"kind": "Node", "name": "node-a", "uid": "n-a"},
        type="Warning",
        reason="NodeHasDiskPressure",
        message=message,
        last="2026-05-01T10:00:00Z",
        count=1,
    )
    script = [
        ListStep("99", []),
        WatchStep("99", [frame("ADDED", event)], split_inside="磁"),
    ]
    async with run_collector(script) as harness:
        await harness.wait_for(lambda: len(harness.store) == 1)
        events = await harness.latest(1)
        assert events[0]["message"] == message
        assert harness.watcher.bad_frames == 0


async def test_C22_node_event_filters_by_object(run_collector):
    event = core_event(
        "n1",
        namespace="default",
        name="node-a.17a",
        involved={"kind": "Node", "name": "node-a", "uid": "x"},
        reason="RegisteredNode",
        message="Node node-a event: Registered Node node-a in Controller",
        source={"component": "node-controller"},
        first="2026-05-01T10:00:00Z",
        last="2026-05-01T10:00:00Z",
        count=1,
        reportingComponent="",
        reportingInstance="",
    )
    other = core_event("p1", last="2026-05-01T10:00:01Z", count=1)
    cm, harness = await ingest(run_collector, [event, other])
    try:
        assert uids(await harness.latest(10)) == ["p1", "n1"]
        found = await harness.latest(
            10, namespace="default", kind="Node", name="node-a"
        )
        assert uids(found) == ["n1"]
        assert found[0]["object"] == {
            "kind": "Node",
            "namespace": "",
            "name": "node-a",
            "uid": "x",
            "api_version": "",
            "field_path": "",
        }
        assert "node-controller" in found[0]["source"]["component"]
    finally:
        await cm.__aexit__(None, None, None)
