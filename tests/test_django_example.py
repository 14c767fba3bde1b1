"""
The example Django site, with real Django, against a real collector and none.

Django's settings are global to a process, so every page is fetched by a fresh
Python process with the example's settings module: nothing leaks into other
tests. The collector is the real one, in-process, fed by the scripted API.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from pathlib import Path
from typing import Any

from tests.events import core_event
from tests.fakeapi import ListStep, WatchStep

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "django"
UNAVAILABLE = "The event collector is unavailable"

# Runs in the child process: Django's own test client, the example's settings.
FETCH_PAGE = """
import json, sys
import django
from django.test import Client
from django.test.utils import setup_test_environment

django.setup()
setup_test_environment()
response = Client().get("/")
json.dump(
    {
        "status": response.status_code,
        "body": response.content.decode(),
        "retry_after": response.get("Retry-After"),
    },
    sys.stdout,
)
"""

BACKOFF = core_event(
    "A",
    namespace="shop",
    rv="90",
    type="Warning",
    reason="BackOff",
    message="Back-off restarting failed container",
    last="2026-05-01T10:06:00Z",
    count=7,
)
PULLED = core_event(
    "B",
    namespace="team-a",
    rv="91",
    message="Pulled <b>nginx</b>",
    last="2026-05-01T10:07:00Z",
    involved={"kind": "Deployment", "namespace": "team-a", "name": "api", "uid": "d"},
)


async def fetch_page(
    socket_path: Path, *, collector_timeout: float = 2.0
) -> dict[str, Any]:
    """Return the status, body and Retry-After of the site's page."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("EVENT_COLLECTOR_", "DJANGO_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="eventsite.settings",
        EVENT_COLLECTOR_SOCKET=str(socket_path),
        EVENT_COLLECTOR_TIMEOUT=str(collector_timeout),
        PYTHONPATH=os.pathsep.join([str(EXAMPLE), str(REPO)]),
    )
    # A subprocess, so the collector on this loop keeps answering meanwhile.
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        FETCH_PAGE,
        cwd=EXAMPLE,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        stdout, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode()
    return json.loads(stdout)


async def test_page_lists_the_latest_events_newest_first_like_kubectl(
    run_collector,
):
    script = [ListStep("100", [BACKOFF, PULLED]), WatchStep("100")]
    async with run_collector(script) as harness:
        await harness.wait_for(lambda: harness.store.synced, what="the first sync")

        page = await fetch_page(Path(harness.socket_path))

    body = page["body"]
    assert page["status"] == 200
    for header in ("NAMESPACE", "LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"):
        assert f"<th>{header}</th>" in body
    assert body.index("deployment/api") < body.index("pod/web-1")
    assert "<td>Back-off restarting failed container</td>" in body
    assert "<td>7</td>" in body
    assert "still listing" not in body


async def test_page_escapes_event_messages(run_collector):
    script = [ListStep("100", [PULLED]), WatchStep("100")]
    async with run_collector(script) as harness:
        await harness.wait_for(lambda: harness.store.synced, what="the first sync")

        page = await fetch_page(Path(harness.socket_path))

    assert "Pulled &lt;b&gt;nginx&lt;/b&gt;" in page["body"]
    assert "<b>nginx</b>" not in page["body"]


async def test_page_says_so_while_the_collector_is_still_listing(run_collector):
    script = [ListStep("100", [BACKOFF], page_delay=60.0), WatchStep("100")]
    async with run_collector(script) as harness:
        page = await fetch_page(Path(harness.socket_path))

    assert page["status"] == 200
    assert "still listing the cluster" in page["body"]
    assert "No events." in page["body"]


async def test_page_is_503_with_a_message_when_the_collector_is_absent(socket_dir):
    page = await fetch_page(socket_dir / "events.sock")

    assert page["status"] == 503
    assert UNAVAILABLE in page["body"]
    assert "not reachable" in page["body"]
    assert page["retry_after"] == "5"


async def test_page_is_503_when_the_collector_does_not_answer_in_time(socket_dir):
    # A socket that accepts connections into its backlog and never answers.
    path = socket_dir / "events.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as silent:
        silent.bind(str(path))
        silent.listen()

        page = await fetch_page(path, collector_timeout=0.3)

    assert page["status"] == 503
    assert UNAVAILABLE in page["body"]
    assert "within 0.3 s" in page["body"]
