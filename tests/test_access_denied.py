"""
Credentials the API server refuses: a clear exit at start, a backoff later.

Before the first sync a 401 or 403 can only mean missing RBAC or a bad token,
so the collector stops with exit code 2 and says what to grant; once it has
synced, the same answers are retried while the events it has stay served.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from collector import kube
from collector.errors import ConfigError
from collector.store import EventStore
from collector.watching import Watcher, WatchSettings
from tests.events import core_event
from tests.fakeapi import ListStep, ScriptedApiServer, WatchStep

REPO = Path(__file__).resolve().parent.parent

A = core_event("A", rv="90", last="2026-05-01T10:00:00Z", count=1)
B = core_event("B", rv="101", last="2026-05-01T10:00:01Z", count=1)


async def first_run_error(
    script: list[ListStep | WatchStep], *, namespace: str, tmp_path: Path
) -> tuple[ConfigError, ScriptedApiServer]:
    """Run a watcher against the script and return the error it stopped with."""
    api = ScriptedApiServer(script)
    await api.start()
    try:
        kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
        api_client = await kube.connect(kubeconfig=str(kubeconfig), context=None)
        async with api_client:
            watcher = Watcher(
                api=kube.EventsApi(api_client, namespace=namespace),
                store=EventStore(max_records=10, retention_seconds=60.0),
                settings=WatchSettings(min_backoff=0.01, max_backoff=0.02),
            )
            with pytest.raises(ConfigError) as raised:
                async with asyncio.timeout(10):
                    await watcher.run()
    finally:
        await api.stop()
    return raised.value, api


@pytest.mark.parametrize(
    ("status", "namespace", "expected"),
    [
        pytest.param(
            403,
            "",
            "forbidden: cannot list events in all namespaces; grant a ClusterRole",
            id="403-all-namespaces",
        ),
        pytest.param(
            403,
            "team-a",
            "forbidden: cannot list events in namespace 'team-a'; grant a Role",
            id="403-one-namespace",
        ),
        pytest.param(
            401,
            "",
            "unauthorized: the API server rejected the credentials",
            id="401",
        ),
    ],
)
async def test_refused_first_list_stops_with_a_message_naming_the_grant(
    tmp_path, status, namespace, expected
):
    script: list[ListStep | WatchStep] = [ListStep("1", [], status=status)]

    error, api = await first_run_error(script, namespace=namespace, tmp_path=tmp_path)

    assert str(error).startswith(expected)
    assert "The API server said: scripted failure" in str(error)
    assert len(api.lists) == 1


async def test_all_namespaces_message_suggests_passing_a_namespace(tmp_path):
    script: list[ListStep | WatchStep] = [ListStep("1", [], status=403)]

    error, _ = await first_run_error(script, namespace="", tmp_path=tmp_path)

    assert "deploy/rbac.yaml" in str(error)
    assert "or pass --namespace" in str(error)


async def test_server_error_on_first_list_is_still_retried(tmp_path):
    # Only refused credentials end the collector; a 500 is the server's trouble.
    script = [ListStep("1", [], status=500), ListStep("1", [], status=403)]

    error, api = await first_run_error(script, namespace="", tmp_path=tmp_path)

    assert "forbidden" in str(error)
    assert len(api.lists) == 2


async def test_forbidden_relist_after_a_sync_is_backed_off_and_served(
    run_collector,
):
    script = [
        ListStep("100", [A]),
        WatchStep("100", end="gone-410"),
        ListStep("100", [], status=403),
        ListStep("101", [A, B]),
        WatchStep("101"),
    ]
    async with run_collector(script) as harness:
        await harness.wait_for(lambda: len(harness.store) == 2, what="the relist")

        assert len(harness.api.lists) == 3
        assert "403" in harness.watcher.last_error
        assert [event["name"] for event in await harness.latest()] == [
            B["metadata"]["name"],
            A["metadata"]["name"],
        ]


async def test_collector_process_exits_2_and_removes_its_socket_when_forbidden(
    tmp_path, socket_dir
):
    api = ScriptedApiServer([ListStep("1", [], status=403)])
    await api.start()
    socket_path = socket_dir / "events.sock"
    env = {
        key: value
        for key, value in os.environ.items()
        if key != "KUBECONFIG" and not key.startswith("EVENT_COLLECTOR_")
    }
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "collector",
            f"--kubeconfig={api.write_kubeconfig(tmp_path / 'kubeconfig')}",
            f"--socket={socket_path}",
            cwd=REPO,
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        # A collector that backed off forever would hang here, not exit.
        async with asyncio.timeout(30):
            _, stderr = await process.communicate()
    finally:
        await api.stop()

    log = stderr.decode()
    assert process.returncode == 2, log
    assert "forbidden: cannot list events in all namespaces" in log
    assert "Traceback" not in log
    assert not socket_path.exists()
