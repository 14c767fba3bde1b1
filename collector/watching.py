"""
The list-watch loop that keeps the store in step with the cluster.

Three layers, each testable on its own:

- ``Watcher.run`` never ends: it lists, watches until a relist is needed, and
  backs off (with jitter, bounded) after every failure.
- ``Watcher.list_events`` pages through the list once (``limit``+``continue``),
  starting again if the continue token expires, and reconciles the store.
- ``Watcher.watch_events`` watches from a resourceVersion and resumes from the
  last one seen after a dropped stream, until the resourceVersion expires: a 410
  (HTTP or ERROR frame), or watches that close at once without a frame, which
  is how the API server answers a stale resourceVersion for events when their
  watch cache is off.

Credentials the API server refuses (401 or 403) before the first list ever
succeeded are not a blip to back off from: the RBAC or the token is wrong, so
``run`` gives up with a ``ConfigError`` that says which permission is missing.
After a first sync the same answers are backed off from like any other, so a
revoked or expiring token leaves the last known events served.

Frames are split on newlines here and parsed with orjson; a frame cut off by a
dropped connection is never parsed, and the watch resumes before it.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass
from typing import Any

import orjson

from collector.errors import ApiError, ApiUnavailable, ConfigError, ResourceGone
from collector.kube import EventsApi, status_error
from collector.memory import release_free_memory
from collector.store import EventStore

logger = logging.getLogger(__name__)

# A watch answered with no frame this quickly was not idle: it was refused.
STALE_CLOSE_SECONDS = 2.0
# Two refusals in a row mean the resourceVersion is gone; one may be a blip.
STALE_CLOSES_BEFORE_RELIST = 2
# An expired continue token restarts the list at once, a few times, before the
# failure goes to the backoff like any other.
LIST_RESTARTS = 3
# Etcd refuses requests over 1.5 MiB, so no real frame comes near this.
MAX_FRAME_BYTES = 16 * 1024 * 1024
# Unauthorized and Forbidden: answers that retrying the same credentials never changes.
ACCESS_DENIED_STATUSES = frozenset({401, 403})


@dataclass(frozen=True, kw_only=True)
class WatchSettings:
    """How the watcher pages, waits and backs off."""

    page_size: int = 500
    """Events per list page; the API server's and kubectl's default chunk size."""

    watch_timeout: int = 300
    """Seconds after which the API server ends a watch cleanly and we reconnect."""

    idle_timeout: float = 330.0
    """Seconds without a byte before a watch connection is presumed dead."""

    min_backoff: float = 1.0
    """First delay after a failure; keeps retries at most one a second."""

    max_backoff: float = 30.0
    """Longest delay between retries, so recovery is noticed within a minute."""


class Backoff:
    """Exponential delays with positive jitter, reset by progress."""

    def __init__(self, *, minimum: float, maximum: float) -> None:
        self.minimum = minimum
        self.maximum = maximum
        self._failures = 0

    def next_delay(self) -> float:
        """Return the next delay; never below the minimum, never above 1.5x max."""
        base = min(self.maximum, self.minimum * 2.0**self._failures)
        self._failures += 1
        return base * random.uniform(1.0, 1.5)

    def reset(self) -> None:
        """Start again from the minimum delay."""
        self._failures = 0


class Watcher:
    """List-watch core/v1 Events into an ``EventStore``, forever."""

    def __init__(
        self, *, api: EventsApi, store: EventStore, settings: WatchSettings
    ) -> None:
        self.api = api
        self.store = store
        self.settings = settings
        self.backoff = Backoff(
            minimum=settings.min_backoff, maximum=settings.max_backoff
        )
        self.resource_version = ""
        self.lists = 0
        self.watch_requests = 0
        self.frames = 0
        self.bad_frames = 0
        self.last_error = ""
        self.last_error_at = 0.0
        self.last_sync_seconds = 0.0
        self.synced_once = False

    async def run(self) -> None:
        """
        List, watch until a relist is needed, repeat; back off after failures.

        Raises ``ConfigError`` if the API server refuses the credentials before
        the first list succeeded.
        """
        while True:
            try:
                await self.list_events()
                await self.watch_events()
                # The store is behind the cluster until the relist finishes.
                self.store.synced = False
                level, reason = logging.INFO, "the watch's resourceVersion expired"
            except ApiError as exc:
                if exc.status in ACCESS_DENIED_STATUSES and not self.synced_once:
                    raise access_denied(exc, namespace=self.api.namespace) from exc
                level, reason = logging.WARNING, self._note_error(exc)
            except ApiUnavailable as exc:
                level, reason = logging.WARNING, self._note_error(exc)

            delay = self.backoff.next_delay()
            logger.log(level, "Listing again in %.1f s because %s.", delay, reason)
            await asyncio.sleep(delay)

    async def list_events(self) -> None:
        """List every event in pages and reconcile the store with the list."""
        started = time.monotonic()
        for attempt in range(LIST_RESTARTS + 1):
            self.lists += 1
            self.store.begin_list()
            try:
                self.resource_version = await self._list_pages()
                break
            except ResourceGone:
                if attempt == LIST_RESTARTS:
                    raise
                logger.info(
                    "The list's continue token expired; listing from the start."
                )

        gone = self.store.finish_list()
        release_free_memory()
        self.synced_once = True
        self.last_sync_seconds = time.monotonic() - started
        logger.info(
            "Synced with %d events in %.2f s at resourceVersion %s; %d gone since.",
            len(self.store),
            self.last_sync_seconds,
            self.resource_version,
            gone,
            extra={
                "records": len(self.store),
                "resource_version": self.resource_version,
            },
        )

    async def watch_events(self) -> None:
        """
        Watch from the current resourceVersion until it expires.

        Returns when a relist is needed; a dropped or failed stream is resumed
        after a backoff, from the last resourceVersion seen.
        """
        stale_closes = 0
        while True:
            started = time.monotonic()
            frames_before = self.frames
            try:
                await self._watch_once()
                failure = None
            except ResourceGone:
                logger.info(
                    "Watch at resourceVersion %s expired (410).", self.resource_version
                )
                return
            except (ApiError, ApiUnavailable) as exc:
                failure = self._note_error(exc)

            # A watch that brought frames, or that the server kept open until its
            # timeout, was healthy: what follows it starts from the shortest delay.
            lasted = time.monotonic() - started
            if self.frames > frames_before or (
                failure is None and lasted >= STALE_CLOSE_SECONDS
            ):
                self.backoff.reset()
                stale_closes = 0
            elif failure is None:
                stale_closes += 1
                failure = "the watch closed at once without a frame"
                if stale_closes >= STALE_CLOSES_BEFORE_RELIST:
                    logger.info(
                        "Watch at resourceVersion %s closed empty %d times; relisting.",
                        self.resource_version,
                        stale_closes,
                    )
                    return

            if failure is None:
                logger.debug("Watch ended; resuming at %s.", self.resource_version)
                continue
            delay = self.backoff.next_delay()
            logger.warning(
                "Watching again in %.1f s from resourceVersion %s because %s.",
                delay,
                self.resource_version,
                failure,
            )
            await asyncio.sleep(delay)

    async def _list_pages(self) -> str:
        continue_token: str | None = None
        while True:
            page = await self.api.list_events(
                limit=self.settings.page_size, continue_token=continue_token
            )
            for item in page["items"]:
                self._apply(item, deleted=False)

            metadata = page.get("metadata") or {}
            continue_token = metadata.get("continue")
            if not continue_token:
                return str(metadata.get("resourceVersion") or "")

    async def _watch_once(self) -> None:
        self.watch_requests += 1
        logger.debug("Watching from resourceVersion %s.", self.resource_version)
        stream = self.api.watch_events(
            resource_version=self.resource_version,
            timeout_seconds=self.settings.watch_timeout,
            idle_timeout=self.settings.idle_timeout,
        )
        async with stream as chunks:
            partial: list[bytes] = []
            partial_size = 0
            async for chunk in chunks:
                if b"\n" not in chunk:
                    partial.append(chunk)
                    partial_size += len(chunk)
                    if partial_size > MAX_FRAME_BYTES:
                        raise ApiUnavailable(
                            f"a watch frame over {MAX_FRAME_BYTES} bytes"
                        )
                    continue

                lines = chunk.split(b"\n")
                if partial:
                    lines[0] = b"".join(partial) + lines[0]
                for line in lines[:-1]:
                    self._handle_frame(line)
                partial = [lines[-1]] if lines[-1] else []
                partial_size = len(lines[-1])

        if partial:
            raise ApiUnavailable(
                f"the watch stream ended inside a frame ({partial_size} bytes)"
            )

    def _handle_frame(self, line: bytes) -> None:
        if not line.strip():
            return
        try:
            frame = orjson.loads(line)
            kind = frame["type"]
            obj = frame["object"]
            if not isinstance(obj, dict):
                raise TypeError("object is not a JSON object")
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            self.bad_frames += 1
            logger.warning(
                "Ignored a malformed watch frame (%d bytes): %s", len(line), exc
            )
            return

        if kind == "ERROR":
            raise status_error(obj, default_code=500)
        if kind in ("ADDED", "MODIFIED"):
            self._apply(obj, deleted=False)
        elif kind == "DELETED":
            self._apply(obj, deleted=True)
        elif kind != "BOOKMARK":
            self.bad_frames += 1
            logger.warning("Ignored a watch frame of unknown type %r.", kind)
            return

        self.frames += 1
        version = (obj.get("metadata") or {}).get("resourceVersion")
        if isinstance(version, str) and version:
            self.resource_version = version

    def _apply(self, obj: dict[str, Any], *, deleted: bool) -> None:
        try:
            self.store.apply(obj, deleted=deleted)
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            self.bad_frames += 1
            logger.warning("Ignored a malformed event: %s", exc)

    def _note_error(self, exc: Exception) -> str:
        self.last_error = str(exc)
        self.last_error_at = time.time()
        return str(exc)


def access_denied(error: ApiError, *, namespace: str) -> ConfigError:
    """Explain a 401 or 403 on the first list: what is missing and how to grant it."""
    if error.status == 401:
        return ConfigError(
            "unauthorized: the API server rejected the credentials; check the "
            "kubeconfig's token or client certificate (a token made by `kubectl "
            f"create token` expires). The API server said: {error.message}"
        )
    if namespace:
        scope = f"in namespace {namespace!r}"
        remedy = (
            f"grant a Role with get, list and watch on events in {namespace!r} "
            "(deploy/rbac-namespaced.yaml)"
        )
    else:
        scope = "in all namespaces"
        remedy = (
            "grant a ClusterRole with get, list and watch on events "
            "(deploy/rbac.yaml) or pass --namespace"
        )
    return ConfigError(
        f"forbidden: cannot list events {scope}; {remedy}. "
        f"The API server said: {error.message}"
    )
