"""
Fixtures shared by the tests: a collector wired in-process to a scripted API.

The collector under test is the real one (kubernetes-asyncio, the watcher, the
store, the socket server); only the API server is scripted, and it speaks real
HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from client import Client
from collector import kube
from collector.app import collect_stats
from collector.serving import EventServer
from collector.store import EventStore
from collector.watching import Watcher, WatchSettings
from tests.fakeapi import ListStep, ScriptedApiServer, WatchStep


@dataclass
class Harness:
    api: ScriptedApiServer
    store: EventStore
    watcher: Watcher
    server: EventServer
    socket_path: str

    async def wait_for(
        self, condition: Callable[[], bool], *, within: float = 10.0, what: str = ""
    ) -> None:
        deadline = time.monotonic() + within
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what or condition}")
            await asyncio.sleep(0.01)

    async def latest(self, limit: int = 100, **filters: Any) -> list[dict[str, Any]]:
        """Ask through the real client, off the loop (it is a blocking client)."""

        def call() -> list[dict[str, Any]]:
            with Client(self.socket_path) as client:
                return list(client.latest(limit, **filters))

        return await asyncio.to_thread(call)

    async def raw(self, line: bytes) -> bytes:
        reader, writer = await asyncio.open_unix_connection(
            self.socket_path, limit=2**24
        )
        writer.write(line)
        await writer.drain()
        answer = await reader.readline()
        writer.close()
        await writer.wait_closed()
        return answer


@pytest.fixture
def socket_dir() -> Any:
    # Unix socket paths are limited to about 100 bytes; pytest's tmp_path is long.
    path = tempfile.mkdtemp(prefix="ec-")
    yield Path(path)
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def fast_settings() -> WatchSettings:
    return WatchSettings(
        page_size=500,
        watch_timeout=30,
        idle_timeout=5.0,
        min_backoff=0.05,
        max_backoff=0.2,
    )


@pytest.fixture
def run_collector(
    socket_dir: Path, tmp_path: Path, fast_settings: WatchSettings
) -> Callable[..., contextlib.AbstractAsyncContextManager[Harness]]:
    @contextlib.asynccontextmanager
    async def start(
        script: list[ListStep | WatchStep],
        *,
        settings: WatchSettings | None = None,
        max_records: int = 100_000,
        retention_seconds: float = 10 * 365 * 86400.0,  # case data is from May 2026
        namespace: str = "",
    ) -> AsyncIterator[Harness]:
        api = ScriptedApiServer(script)
        await api.start()
        kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
        api_client = await kube.connect(kubeconfig=str(kubeconfig), context=None)
        store = EventStore(max_records=max_records, retention_seconds=retention_seconds)
        watcher = Watcher(
            api=kube.EventsApi(api_client, namespace=namespace),
            store=store,
            settings=settings or fast_settings,
        )
        started = time.monotonic()
        server = EventServer(
            store=store,
            stats=lambda: collect_stats(
                store=store, watcher=watcher, server=server, started=started
            ),
            socket_path=str(socket_dir / "events.sock"),
            max_connections=16,
        )
        await server.start()
        task = asyncio.create_task(watcher.run(), name="watching")
        try:
            yield Harness(api, store, watcher, server, server.socket_path)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await server.close()
            await api_client.close()
            await api.stop()

    return start
