"""The store: one record per event, updated in place, kept after deletion."""

from __future__ import annotations

import json

import orjson
import pytest

from collector.store import EventStore
from tests.events import core_event

FOREVER = 10 * 365 * 86400.0


def store(**kwargs) -> EventStore:
    kwargs.setdefault("max_records", 1000)
    kwargs.setdefault("retention_seconds", FOREVER)
    return EventStore(**kwargs)


def latest(events: EventStore, limit: int = 100, **filters) -> list[dict]:
    return [orjson.loads(doc) for doc in events.latest(limit, **filters)]


def test_modified_event_updates_its_record_in_place():
    events = store()
    events.apply(core_event("u1", rv="10", count=1, last="2026-05-01T10:00:00Z"))
    events.apply(core_event("u1", rv="11", count=2, last="2026-05-01T10:01:00Z"))

    assert len(events) == 1
    [record] = latest(events)
    assert record["count"] == 2
    assert record["resource_version"] == "11"


def test_recreated_event_with_a_new_uid_continues_the_same_record():
    events = store()
    events.apply(core_event("old-uid", name="web-1.abc", rv="10", count=5))
    events.apply(core_event("new-uid", name="web-1.abc", rv="90", count=6))

    assert len(events) == 1
    [record] = latest(events)
    assert (record["uid"], record["count"]) == ("new-uid", 6)


def test_an_older_version_never_overwrites_a_newer_one():
    events = store()
    events.apply(core_event("u1", rv="1000", count=9))
    events.apply(core_event("u1", rv="999", count=1))

    assert latest(events)[0]["count"] == 9


def test_update_moves_the_record_to_the_top():
    events = store()
    events.apply(core_event("a", rv="1", last="2026-05-01T10:00:00Z"))
    events.apply(core_event("b", rv="2", last="2026-05-01T10:00:01Z"))
    events.apply(core_event("a", rv="3", last="2026-05-01T10:00:02Z"))

    assert [record["uid"] for record in latest(events)] == ["a", "b"]


def test_equal_times_order_by_resource_version_then_name():
    events = store()
    same = "2026-05-01T10:00:00Z"
    events.apply(core_event("x", name="b", rv="5", last=same))
    events.apply(core_event("y", name="a", rv="5", last=same))
    events.apply(core_event("z", name="c", rv="7", last=same))

    assert [record["name"] for record in latest(events)] == ["c", "b", "a"]


def test_relist_marks_missing_events_deleted_and_keeps_them():
    events = store()
    events.begin_list()
    events.apply(core_event("a", rv="1", last="2026-05-01T10:00:00Z"))
    events.apply(core_event("b", rv="2", last="2026-05-01T10:00:01Z"))
    events.finish_list()

    events.begin_list()
    events.apply(core_event("a", rv="1", last="2026-05-01T10:00:00Z"))
    gone = events.finish_list()

    assert gone == 1
    by_uid = {record["uid"]: record for record in latest(events)}
    assert by_uid["b"]["deleted"] is True
    assert by_uid["a"]["deleted"] is False
    assert events.deleted_count == 1


def test_deleted_event_that_comes_back_is_live_again():
    events = store()
    events.apply(core_event("a", rv="1"), deleted=True)
    events.apply(core_event("a", rv="2"))

    assert latest(events)[0]["deleted"] is False
    assert events.deleted_count == 0


def test_retention_drops_only_deleted_records_past_the_window():
    events = store(retention_seconds=3600)
    now = 1_777_636_800.0  # 2026-05-01T12:00:00Z
    events.apply(
        core_event("old-gone", rv="1", last="2026-05-01T10:00:00Z"), deleted=True
    )
    events.apply(core_event("old-live", rv="2", last="2026-05-01T10:00:00Z"))
    events.apply(
        core_event("new-gone", rv="3", last="2026-05-01T11:30:00Z"), deleted=True
    )

    dropped = events.prune(now=now)

    assert dropped == 1
    assert {record["uid"] for record in latest(events)} == {"old-live", "new-gone"}


def test_size_cap_drops_the_oldest_first():
    events = store(max_records=3)
    for second in range(5):
        stamp = f"2026-05-01T10:00:0{second}Z"
        events.apply(core_event(f"e{second}", rv=str(second + 1), last=stamp))

    assert len(events) == 3
    assert [record["uid"] for record in latest(events)] == ["e4", "e3", "e2"]
    assert events.evicted_count == 2


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        pytest.param({"namespace": "shop"}, ["s2", "s1"], id="namespace"),
        pytest.param({"type": "Warning"}, ["s2", "o1"], id="type"),
        pytest.param({"reason": "BackOff"}, ["s2"], id="reason"),
        pytest.param({"kind": "Node"}, ["o1"], id="kind"),
        pytest.param(
            {"kind": "Pod", "name": "web-1"}, ["s2", "s1"], id="kind-and-name"
        ),
        pytest.param({"since_us": 1_777_629_601_000_000}, ["s2", "o1"], id="since"),
        pytest.param({"namespace": "nowhere"}, [], id="no-match"),
    ],
)
def test_filters_match_exactly(filters, expected):
    events = store()
    events.apply(
        core_event("s1", namespace="shop", rv="1", last="2026-05-01T10:00:00Z")
    )
    events.apply(
        core_event(
            "o1",
            namespace="default",
            rv="2",
            last="2026-05-01T10:00:01Z",
            type="Warning",
            involved={"kind": "Node", "name": "node-a"},
        )
    )
    events.apply(
        core_event(
            "s2",
            namespace="shop",
            rv="3",
            last="2026-05-01T10:00:02Z",
            type="Warning",
            reason="BackOff",
        )
    )

    assert [record["uid"] for record in latest(events, **filters)] == expected


def test_limit_caps_the_answer():
    events = store()
    for number in range(10):
        events.apply(core_event(f"e{number}", rv=str(number + 1)))

    assert len(events.latest(3)) == 3
    assert events.latest(0) == []


def test_record_json_is_prepared_once_and_is_valid():
    events = store()
    events.apply(core_event("u1", message='quotes " and \\ and\nnewlines'))

    [doc] = events.latest(1)
    assert json.loads(doc)["message"] == 'quotes " and \\ and\nnewlines'


def test_records_past_the_inflated_cache_are_served_whole(monkeypatch):
    monkeypatch.setattr("collector.store.INFLATED_RECORDS", 3)
    events = store()
    for minute in range(10):
        events.apply(
            core_event(
                f"u{minute}", rv=str(10 + minute), last=f"2026-05-01T10:0{minute}:00Z"
            )
        )

    everything = latest(events, 10)
    assert [record["uid"] for record in everything] == [
        f"u{m}" for m in range(9, -1, -1)
    ]
    assert everything[-1]["message"] == "Container image pulled"
    assert len(events._inflated) == 3

    # A record marked deleted while inflated is served with its new state.
    events.begin_list()
    events.finish_list()
    assert all(record["deleted"] for record in latest(events, 10))


@pytest.mark.parametrize(
    ("event_name", "object_name"),
    [
        pytest.param("web-1.17a8b9c0d1e2f3a4", "web-1", id="recorder-name"),
        pytest.param(
            "node-a.pool.internal.17a8b9c0", "node-a.pool.internal", id="dots"
        ),
        pytest.param("3f2a9c1e-random", "web-1", id="random-name"),
        pytest.param("web-1.17a8b9c0", "web-1.17a8b9c0", id="same-as-event"),
        pytest.param("web-1", "", id="no-object-name"),
    ],
)
def test_the_name_filter_matches_the_involved_object_however_the_event_is_named(
    event_name, object_name
):
    events = store()
    events.apply(
        core_event(
            "e1",
            name=event_name,
            involved={"kind": "Pod", "namespace": "team-a", "name": object_name},
        )
    )
    events.apply(
        core_event(
            "e2",
            name="web-10.17a8b9c0",
            rv="101",
            involved={"kind": "Pod", "namespace": "team-a", "name": "web-10"},
        )
    )

    [record] = [r for r in latest(events) if r["uid"] == "e1"]
    assert record["object"]["name"] == object_name
    if object_name:
        assert [r["uid"] for r in latest(events, name=object_name)] == ["e1"]
    assert [r["uid"] for r in latest(events, name="web")] == []
    assert [r["uid"] for r in latest(events, name="web-10")] == ["e2"]
