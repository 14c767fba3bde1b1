"""Normalising Event objects of either API shape into one record."""

from __future__ import annotations

import orjson
import pytest

from collector.record import build_record, parse_resource_version
from tests.events import core_event


def fields(obj: dict, **kwargs) -> dict:
    record, document = build_record(obj, **kwargs)
    assert orjson.loads(record.json()) == orjson.loads(document)
    return orjson.loads(document)


@pytest.mark.parametrize(
    ("event", "last_seen"),
    [
        pytest.param(
            core_event(
                "s",
                last="2026-05-01T10:00:00Z",
                series={"count": 2, "lastObservedTime": "2026-05-01T10:09:00.000001Z"},
            ),
            "2026-05-01T10:09:00.000001Z",
            id="series-wins",
        ),
        pytest.param(
            core_event(
                "l", last="2026-05-01T10:00:00Z", event_time="2026-05-01T11:00:00Z"
            ),
            "2026-05-01T10:00:00Z",
            id="last-timestamp-before-event-time",
        ),
        pytest.param(
            core_event("f", first="2026-05-01T09:00:00Z"),
            "2026-05-01T09:00:00Z",
            id="first-timestamp",
        ),
        pytest.param(
            core_event(
                "c", created="2026-05-01T08:00:00Z", last="0001-01-01T00:00:00Z"
            ),
            "2026-05-01T08:00:00Z",
            id="zero-time-counts-as-unset",
        ),
        pytest.param(
            core_event("x", created="2026-05-01T08:00:00Z", last="not a time"),
            "2026-05-01T08:00:00Z",
            id="unparseable-time-counts-as-unset",
        ),
    ],
)
def test_last_seen_follows_the_documented_precedence(event, last_seen):
    assert fields(event)["last_seen"] == last_seen


def test_source_falls_back_to_reporting_fields():
    event = core_event(
        "r",
        source={},
        reportingComponent="default-scheduler",
        reportingInstance="sched-1",
    )
    assert fields(event)["source"] == {
        "component": "default-scheduler",
        "host": "sched-1",
    }


def test_event_without_a_name_is_rejected():
    event = core_event("n")
    event["metadata"]["name"] = ""
    with pytest.raises(TypeError):
        build_record(event)


def test_deleted_flag_is_part_of_the_record():
    record, _ = build_record(core_event("d"), deleted=True)
    assert record.deleted is True
    assert orjson.loads(record.json())["deleted"] is True

    live, before = build_record(core_event("d"))
    gone = live.as_deleted()
    assert gone.deleted is True
    assert live.deleted is False
    after = orjson.loads(gone.json())
    assert after["deleted"] is True
    assert after == {**orjson.loads(before), "deleted": True}


def test_packed_json_is_a_fraction_of_the_json():
    long_message = "".join(
        f"\tat Handler{line}.call(Handler.java:{line})\n" for line in range(60)
    )
    for event in (core_event("short"), core_event("long", message=long_message)):
        record, document = build_record(event)
        assert record.json() == document
        assert len(record.packed) < len(document) / 2


@pytest.mark.parametrize(
    ("value", "number"),
    [("1000", 1000), ("999", 999), ("", 0), (None, 0), ("opaque-v1", 0)],
)
def test_resource_versions_compare_as_numbers(value, number):
    assert parse_resource_version(value) == number
