"""
Write to the benchmark's cluster fast: events, count-bump storms, a recorded watch.

Filling 100k events one ``kubectl create`` at a time would take hours, so this
talks HTTPS to the API server directly with aiohttp and the admin client
certificate, with many requests in flight at once. The same session bumps
counts the way the kubelet's recorder does (a merge-patch of ``count`` and
``lastTimestamp``), and records the raw watch stream those patches cause so
that it can be replayed later without the API server in the way.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import aiohttp
import orjson

logger = logging.getLogger(__name__)

DEFAULT_CONCURRENCY = 48
# A busy API server answers 429 or a 5xx now and then; a few retries ride it out.
REQUEST_ATTEMPTS = 5
RETRY_DELAY_SECONDS = 0.2
MERGE_PATCH = "application/merge-patch+json"


@dataclass(kw_only=True)
class WriteResult:
    """How many writes went through, how long they took, and what failed."""

    requests: int = 0
    succeeded: int = 0
    conflicts: int = 0
    failures: int = 0
    seconds: float = 0.0
    last_error: str = ""

    @property
    def rate(self) -> float:
        """Return successful writes per second."""
        return self.succeeded / self.seconds if self.seconds else 0.0


@dataclass(kw_only=True)
class Recording:
    """The raw lines of a watch, and the list they continue from."""

    resource_version: str
    items: list[dict[str, Any]] = field(default_factory=list)
    frames: list[bytes] = field(default_factory=list)


class ApiSession:
    """An HTTPS session to the API server as the admin user."""

    def __init__(
        self, *, server: str, pki_dir: Path, concurrency: int = DEFAULT_CONCURRENCY
    ) -> None:
        self.server = server
        self.concurrency = concurrency
        self._ssl = ssl.create_default_context(cafile=str(pki_dir / "ca.crt"))
        self._ssl.load_cert_chain(pki_dir / "admin.crt", pki_dir / "admin.key")
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Self:
        connector = aiohttp.TCPConnector(limit=self.concurrency + 4, ssl=self._ssl)
        self._session = aiohttp.ClientSession(
            base_url=self.server,
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=120.0),
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        """Return the open aiohttp session."""
        if self._session is None:
            raise RuntimeError("the ApiSession is not open")
        return self._session

    async def ensure_namespaces(self, names: list[str]) -> None:
        """Create the namespaces that do not exist yet."""
        for name in names:
            body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
            await self._send("POST", "/api/v1/namespaces", body, WriteResult())

    async def create_events(
        self, bodies: Iterator[dict[str, Any]], *, count: int
    ) -> WriteResult:
        """POST ``count`` events from ``bodies``, many at once."""

        def path_of(body: dict[str, Any]) -> str:
            return f"/api/v1/namespaces/{body['metadata']['namespace']}/events"

        requests = (
            ("POST", path_of(body), body) for body in itertools.islice(bodies, count)
        )
        return await self._run_all(requests)

    async def patch_events(
        self,
        targets: list[tuple[str, str]],
        *,
        count: int,
        timestamp: Callable[[], str],
    ) -> WriteResult:
        """Bump the count and lastTimestamp of ``count`` events, cycling ``targets``."""
        requests = (
            (
                "PATCH",
                f"/api/v1/namespaces/{namespace}/events/{name}",
                {"count": 1000 + serial, "lastTimestamp": timestamp()},
            )
            for serial, (namespace, name) in zip(
                range(count), itertools.cycle(targets), strict=False
            )
        )
        return await self._run_all(requests)

    async def patch_event(
        self, namespace: str, name: str, patch: dict[str, Any]
    ) -> WriteResult:
        """Merge-patch one event and wait for the answer."""
        result = WriteResult()
        started = time.perf_counter()
        await self._send(
            "PATCH", f"/api/v1/namespaces/{namespace}/events/{name}", patch, result
        )
        result.seconds = time.perf_counter() - started
        return result

    async def list_events(self, *, page_size: int = 500) -> Recording:
        """List every event, raw, in pages; return the items and the resourceVersion."""
        recording = Recording(resource_version="")
        params: dict[str, str] = {"limit": str(page_size)}
        while True:
            async with self.session.get("/api/v1/events", params=params) as response:
                response.raise_for_status()
                page = orjson.loads(await response.read())
            recording.items.extend(page["items"])
            token = page["metadata"].get("continue")
            if not token:
                recording.resource_version = page["metadata"]["resourceVersion"]
                return recording
            params["continue"] = token

    async def record_watch(
        self,
        recording: Recording,
        *,
        frames: int,
        started: asyncio.Event,
        watch_seconds: float,
    ) -> None:
        """Append ``frames`` raw watch lines from the recording's resourceVersion."""
        params = {
            "watch": "true",
            "resourceVersion": recording.resource_version,
            "allowWatchBookmarks": "false",
            "timeoutSeconds": str(int(watch_seconds)),
        }
        async with self.session.get(
            "/api/v1/events",
            params=params,
            timeout=aiohttp.ClientTimeout(total=watch_seconds + 10.0),
        ) as response:
            response.raise_for_status()
            started.set()
            buffer = b""
            async for chunk in response.content.iter_any():
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                recording.frames.extend(line + b"\n" for line in lines if line)
                if len(recording.frames) >= frames:
                    del recording.frames[frames:]
                    return

    async def _run_all(
        self, requests: Iterator[tuple[str, str, dict[str, Any]]]
    ) -> WriteResult:
        # One shared iterator feeds every worker, so no request list is built
        # up front and the number in flight is the number of workers.
        result = WriteResult()
        started = time.perf_counter()
        async with asyncio.TaskGroup() as group:
            for _ in range(self.concurrency):
                group.create_task(self._work(requests, result))
        result.seconds = time.perf_counter() - started
        return result

    async def _work(
        self, requests: Iterator[tuple[str, str, dict[str, Any]]], result: WriteResult
    ) -> None:
        for method, path, body in requests:
            await self._send(method, path, body, result)

    async def _send(
        self, method: str, path: str, body: dict[str, Any], result: WriteResult
    ) -> None:
        result.requests += 1
        headers = {
            "Content-Type": MERGE_PATCH if method == "PATCH" else "application/json"
        }
        data = orjson.dumps(body)
        for attempt in range(REQUEST_ATTEMPTS):
            try:
                async with self.session.request(
                    method, path, data=data, headers=headers
                ) as response:
                    answer = await response.read()
                    status = response.status
            except (aiohttp.ClientError, TimeoutError) as exc:
                status, answer = 0, repr(exc).encode()
            if status in (200, 201):
                result.succeeded += 1
                return
            if status == 409:
                result.conflicts += 1
                return
            if status not in (0, 429) and status < 500:
                break
            await asyncio.sleep(RETRY_DELAY_SECONDS * (attempt + 1))
        result.failures += 1
        result.last_error = f"{method} {path}: {status} {answer[:300]!r}"
        logger.warning("Write failed: %s", result.last_error)
