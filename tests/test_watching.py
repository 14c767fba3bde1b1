"""
The watcher under faults: every failure is survived, backed off from, and
resumed from the right place, and no bad frame stops it.
"""

from __future__ import annotations

import asyncio

import pytest

from collector import kube
from collector.store import EventStore
from collector.watching import Backoff, Watcher, WatchSettings
from tests.events import core_event, frame
from tests.fakeapi import ListStep, WatchStep

A = core_event("A", rv="90", last="2026-05-01T10:00:00Z", count=1)
B = core_event("B", rv="101", last="2026-05-01T10:00:01Z", count=1)


async def test_server_error_on_list_is_retried_until_it_syncs(run_collector):
    script = [ListStep("100", [], status=500), ListStep("100", [A]), WatchStep("100")]
    async with run_collector(script) as harness:
        await harness.wait_for(lambda: harness.store.synced)
        assert len(harness.api.lists) == 2
        assert "500" in harness.watcher.last_error


@pytest.mark.parametrize("status", [403, 500, 503])
async def test_failed_watch_resumes_from_the_same_version(run_collector, status):
    script = [
        ListStep("100", [A]),
        WatchStep("100", status=status),
        WatchStep("100", [frame("ADDED", B)]),
    ]
    async with run_collector(script) as harness:
        await harness.wait_for(lambda: len(harness.store) == 2)
        assert len(harness.api.lists) == 1
        assert str(status) in harness.watcher.last_error
        assert harness.api.mismatches == []


async def test_http_410_on_a_watch_relists(run_collector):
    script = [
        ListStep("100", [A]),
        WatchStep("100", status=410),
        ListStep("200", [A, B]),
        WatchStep("200"),
    ]
    async with run_collector(script) as harness:
        await harness.wait_for(lambda: len(harness.api.watches) == 2)
        assert len(harness.api.lists) == 2
        assert len(harness.store) == 2


async def test_error_frame_other_than_410_resumes_without_relisting(run_collector):
    internal = {
        "kind": "Status",
        "code": 500,
        "reason": "InternalError",
        "message": "boom",
    }
    script = [
        ListStep("100", [A]),
        WatchStep("100", [frame("ADDED", B), frame("ERROR", internal)], end="close"),
        WatchStep("101"),
    ]
    async with run_collector(script) as harness:
        await harness.wait_for(lambda: len(harness.api.watches) == 2)
        assert len(harness.api.lists) == 1
        assert "boom" in harness.watcher.last_error
        assert harness.api.mismatches == []


async def test_malformed_frames_are_skipped_and_later_frames_applied(run_collector):
    nameless = core_event("X", rv="102")
    del nameless["metadata"]["name"]
    c = core_event("C", rv="103", last="2026-05-01T10:00:02Z", count=1)
    frames = [
        b"this is not json\n",
        b'{"type": "ADDED"}\n',
        b'{"type": "ADDED", "object": [1, 2]}\n',
        frame("SURPRISE", B),
        frame("ADDED", nameless),
        frame("ADDED", c),
    ]
    script = [ListStep("100", [A]), WatchStep("100", frames)]
    async with run_collector(script) as harness:
        await harness.wait_for(lambda: harness.watcher.resource_version == "103")
        assert harness.watcher.bad_frames == 5
        assert sorted(record["uid"] for record in await harness.latest()) == ["A", "C"]


async def test_idle_stream_is_reconnected_after_the_idle_timeout(run_collector):
    settings = WatchSettings(idle_timeout=0.3, min_backoff=0.05, max_backoff=0.1)
    script = [
        ListStep("100", [A]),
        WatchStep("100"),
        WatchStep("100", [frame("ADDED", B)]),
    ]
    async with run_collector(script, settings=settings) as harness:
        await harness.wait_for(lambda: len(harness.store) == 2)
        assert len(harness.api.lists) == 1
        assert len(harness.api.watches) == 2


async def test_unreachable_api_server_is_retried_and_the_socket_still_answers(
    socket_dir, tmp_path, unused_tcp_port
):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        '{"apiVersion": "v1", "kind": "Config", "current-context": "c",'
        f' "clusters": [{{"name": "c", "cluster": {{"server": "http://127.0.0.1:{unused_tcp_port}"}}}}],'
        ' "users": [{"name": "u", "user": {"token": "t"}}],'
        ' "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}'
    )
    api_client = await kube.connect(kubeconfig=str(kubeconfig), context=None)
    store = EventStore(max_records=10, retention_seconds=60)
    watcher = Watcher(
        api=kube.EventsApi(api_client, namespace=""),
        store=store,
        settings=WatchSettings(min_backoff=0.01, max_backoff=0.02),
    )
    task = asyncio.create_task(watcher.run())
    try:
        async with asyncio.timeout(10):
            while watcher.lists < 3:  # noqa: ASYNC110 - polls the watcher's own counter
                await asyncio.sleep(0.01)
        assert "cannot reach the API server" in watcher.last_error
        assert not task.done()
        assert store.synced is False
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await api_client.close()


async def test_a_410_after_a_healthy_quiet_watch_does_not_grow_the_backoff(
    run_collector, monkeypatch, caplog
):
    # Events get no bookmarks: a quiet watch on a busy cluster meets a 410 at
    # every reconnect after compaction, which is routine, not a failure streak.
    monkeypatch.setattr("collector.watching.STALE_CLOSE_SECONDS", 0.1)
    settings = WatchSettings(idle_timeout=5.0, min_backoff=0.05, max_backoff=10.0)
    script = []
    for cycle in range(4):
        version = str(100 + cycle)
        script += [
            ListStep(version, [A]),
            WatchStep(version, end="close", hold=0.2),
            WatchStep(version, end="gone-410"),
        ]
    script += [ListStep("200", [A]), WatchStep("200")]

    with caplog.at_level("INFO", logger="collector.watching"):
        async with run_collector(script, settings=settings) as harness:
            await harness.wait_for(lambda: len(harness.api.lists) == 5)

    delays = [
        float(record.getMessage().split()[3])
        for record in caplog.records
        if record.getMessage().startswith("Listing again in")
    ]
    assert len(delays) >= 4
    assert max(delays) <= 0.1, delays


def test_backoff_grows_to_a_bound_with_jitter_and_resets():
    backoff = Backoff(minimum=1.0, maximum=8.0)
    delays = [backoff.next_delay() for _ in range(8)]

    assert 1.0 <= delays[0] <= 1.5
    assert all(1.0 <= delay <= 12.0 for delay in delays)
    assert delays[-1] >= 8.0
    backoff.reset()
    assert backoff.next_delay() <= 1.5
