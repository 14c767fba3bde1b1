"""
The collector process: wiring, signals and an orderly shutdown.

One asyncio loop and one TaskGroup own every task: the watcher, the periodic
pruning and the socket server. SIGTERM and SIGINT only set an Event; shutdown
then runs in a fixed order: stop accepting clients, let answers in flight
finish (bounded), cancel the watcher, close the API client, remove the socket.
A task that dies takes the process down with exit code 1 instead of leaving a
collector that answers but no longer watches.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from typing import Any

from collector import kube
from collector.errors import ConfigError
from collector.memory import release_free_memory
from collector.serving import EventServer
from collector.settings import Settings
from collector.store import EventStore
from collector.watching import Watcher, WatchSettings

logger = logging.getLogger(__name__)

PRUNE_INTERVAL_SECONDS = 60.0


async def run(settings: Settings) -> None:
    """Run the collector until SIGTERM or SIGINT."""
    started = time.monotonic()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, _on_signal, signum, stop)

    api_client = await kube.connect(
        kubeconfig=settings.kubeconfig, context=settings.context
    )
    async with api_client:
        store = EventStore(
            max_records=settings.max_events,
            retention_seconds=settings.retention_seconds,
        )
        watcher = Watcher(
            api=kube.EventsApi(api_client, namespace=settings.namespace),
            store=store,
            settings=WatchSettings(
                page_size=settings.page_size,
                watch_timeout=settings.watch_timeout,
                idle_timeout=settings.watch_timeout + 30.0,
            ),
        )

        def stats() -> dict[str, Any]:
            return collect_stats(
                store=store, watcher=watcher, server=server, started=started
            )

        server = EventServer(
            store=store,
            stats=stats,
            socket_path=settings.socket_path,
            max_connections=settings.max_connections,
        )
        await server.start()
        logger.info(
            "Serving on %s; watching events in %s.",
            settings.socket_path,
            settings.namespace or "all namespaces",
        )
        try:
            async with asyncio.TaskGroup() as group:
                watching = group.create_task(watcher.run(), name="watching")
                pruning = group.create_task(prune_forever(store), name="pruning")
                await stop.wait()
                await server.close()
                watching.cancel()
                pruning.cancel()
        except* ConfigError as refused:
            # The watcher gave up on credentials that cannot work: report that as
            # the bad setting it is (exit 2), not as a crash inside the group.
            raise refused.exceptions[0] from None
        finally:
            await server.close()
    logger.info("Stopped.")


async def prune_forever(store: EventStore) -> None:
    """Drop records past retention once a minute, and give freed memory back."""
    while True:
        await asyncio.sleep(PRUNE_INTERVAL_SECONDS)
        if store.prune():
            release_free_memory()


def collect_stats(
    *, store: EventStore, watcher: Watcher, server: EventServer, started: float
) -> dict[str, Any]:
    """Return the counters the ``stats`` request reports."""
    return {
        "records": len(store),
        "deleted": store.deleted_count,
        "evicted": store.evicted_count,
        "synced": store.synced,
        "namespace": watcher.api.namespace or None,
        "resource_version": watcher.resource_version,
        "lists": watcher.lists,
        "relists": max(0, watcher.lists - 1),
        "watch_requests": watcher.watch_requests,
        "frames": watcher.frames,
        "bad_frames": watcher.bad_frames,
        "last_sync_seconds": round(watcher.last_sync_seconds, 3),
        "last_error": watcher.last_error or None,
        "last_error_at": watcher.last_error_at or None,
        "connections": server.connections,
        "requests": server.requests,
        "rejected_connections": server.rejected_connections,
        "uptime_seconds": round(time.monotonic() - started, 3),
    }


def _on_signal(signum: int, stop: asyncio.Event) -> None:
    logger.info("Received %s; stopping.", signal.Signals(signum).name)
    stop.set()
