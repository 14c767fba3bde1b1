"""
The measurements: each approach to "the latest 100 events", timed the same way.

1. ``kubectl get events -A --sort-by=.lastTimestamp | tail -n 100``, as people
   type it, run by bash with pipefail.
2. ``kubectl events -A``, kubectl's newer events command.
3. A naive Python rewrite: kubernetes-asyncio's typed models, a paged list of
   every event, a sort by last timestamp in Python, the first 100 kept.
4. ``client.latest(100)`` against the running collector: sequential calls on
   one connection, then many threads at once.

Wall times are taken with ``time.perf_counter`` around the whole call, so they
are what a caller waits for, parsing included.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import math
import shlex
import statistics
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from kubernetes_asyncio import client as k8s_client
from kubernetes_asyncio import config as k8s_config

from client import Client

logger = logging.getLogger(__name__)

LATEST_LIMIT = 100
# A web request that waits longer than this is cut off by the app's timeout.
WEB_TIMEOUT_SECONDS = 5.0
COMMAND_TIMEOUT_SECONDS = 900.0
_MIN_TIME = datetime.datetime.min.replace(tzinfo=datetime.UTC)


@dataclass(kw_only=True)
class Runs:
    """Wall times of one approach run several times."""

    seconds: list[float]
    lines: int = 0
    note: str = ""

    @property
    def median(self) -> float:
        """Return the median wall time in seconds."""
        return statistics.median(self.seconds)

    def to_json(self) -> dict[str, Any]:
        """Return the figures for results.json."""
        return {
            "median_seconds": round(self.median, 4),
            "runs_seconds": [round(value, 4) for value in self.seconds],
            "over_web_timeout": self.median > WEB_TIMEOUT_SECONDS,
            "lines": self.lines,
            "note": self.note,
        }


@dataclass(kw_only=True)
class Latency:
    """Per-call latency of ``client.latest``, in milliseconds, and throughput."""

    calls: int
    threads: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    calls_per_second: float
    events_returned: int

    def to_json(self) -> dict[str, Any]:
        """Return the figures for results.json."""
        return {key: _round(value) for key, value in asdict(self).items()}


def percentile(values: list[float], fraction: float) -> float:
    """Return the nearest-rank percentile (``fraction`` in 0..1) of ``values``."""
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def time_kubectl(
    *, kubectl: Path, kubeconfig: Path, command: str, runs: int, budget: float
) -> Runs:
    """
    Time a kubectl pipeline run by ``bash -c`` with pipefail, ``runs`` times.

    ``command`` follows ``kubectl --kubeconfig=...``. Runs stop early once their
    total passes ``budget`` seconds (a slow approach at 100k events would eat
    the whole benchmark), and the note says so.
    """
    line = (
        f"set -o pipefail; {shlex.quote(str(kubectl))} "
        f"--kubeconfig={shlex.quote(str(kubeconfig))} {command}"
    )
    result = Runs(seconds=[])
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run(
            ["bash", "-c", line],
            capture_output=True,
            timeout=COMMAND_TIMEOUT_SECONDS,
            check=False,
        )
        result.seconds.append(time.perf_counter() - started)
        if done.returncode != 0:
            raise RuntimeError(f"{command!r} failed: {done.stderr[-500:]!r}")
        result.lines = done.stdout.count(b"\n")
        if sum(result.seconds) > budget:
            break
    if len(result.seconds) < runs:
        result.note = f"stopped after {len(result.seconds)} run(s): over {budget:.0f} s"
    return result


def time_typed_list(*, kubeconfig: Path, runs: int, budget: float) -> Runs:
    """Time the naive rewrite: typed models, every page, a sort in Python."""
    result = Runs(
        seconds=[],
        note="kubernetes-asyncio typed models (list_event_for_all_namespaces, "
        "limit 500 + continue), sorted in Python; client set-up not counted",
    )
    for _ in range(runs):
        seconds, kept = asyncio.run(_typed_latest(kubeconfig))
        result.seconds.append(seconds)
        result.lines = kept
        if sum(result.seconds) > budget:
            result.note += f"; stopped after {len(result.seconds)} run(s)"
            break
    return result


async def _typed_latest(kubeconfig: Path) -> tuple[float, int]:
    api_client = await k8s_config.new_client_from_config(
        config_file=str(kubeconfig), persist_config=False
    )
    async with api_client:
        core = k8s_client.CoreV1Api(api_client)
        started = time.perf_counter()
        events: list[Any] = []
        kwargs: dict[str, Any] = {"limit": 500}
        while True:
            page = await core.list_event_for_all_namespaces(**kwargs)
            events.extend(page.items)
            kwargs["_continue"] = page.metadata._continue
            if not kwargs["_continue"]:
                break
        events.sort(key=_typed_last_seen, reverse=True)
        latest = events[:LATEST_LIMIT]
        return time.perf_counter() - started, len(latest)


def _typed_last_seen(event: Any) -> datetime.datetime:
    # kubectl's order: series.lastObservedTime, then lastTimestamp, then eventTime.
    series = event.series
    return (
        (series.last_observed_time if series else None)
        or event.last_timestamp
        or event.event_time
        or _MIN_TIME
    )


def time_latest_sequential(*, socket_path: str, calls: int) -> Latency:
    """Call ``latest(100)`` ``calls`` times on one connection; one warm-up first."""
    with Client(socket_path, timeout=10.0) as collector:
        returned = len(collector.latest(LATEST_LIMIT))
        timings = _timed_calls(collector, calls)
    return _latency(timings, threads=1, wall=sum(timings), returned=returned)


def time_latest_concurrent(
    *, socket_path: str, threads: int, calls_each: int
) -> Latency:
    """Run ``threads`` clients at once, each with its own connection."""
    barrier = threading.Barrier(threads + 1)
    per_thread: list[list[float]] = [[] for _ in range(threads)]
    returned: list[int] = [0] * threads

    def worker(slot: int) -> None:
        with Client(socket_path, timeout=10.0) as collector:
            returned[slot] = len(collector.latest(LATEST_LIMIT))
            barrier.wait()
            per_thread[slot] = _timed_calls(collector, calls_each)

    workers = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for thread in workers:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in workers:
        thread.join()
    wall = time.perf_counter() - started

    timings = [value for values in per_thread for value in values]
    return _latency(timings, threads=threads, wall=wall, returned=min(returned))


def _timed_calls(collector: Client, calls: int) -> list[float]:
    timings = []
    for _ in range(calls):
        started = time.perf_counter()
        collector.latest(LATEST_LIMIT)
        timings.append(time.perf_counter() - started)
    return timings


def _latency(
    timings: list[float], *, threads: int, wall: float, returned: int
) -> Latency:
    return Latency(
        calls=len(timings),
        threads=threads,
        p50_ms=percentile(timings, 0.50) * 1e3,
        p99_ms=percentile(timings, 0.99) * 1e3,
        max_ms=max(timings) * 1e3,
        calls_per_second=len(timings) / wall if wall else 0.0,
        events_returned=returned,
    )


def wait_visible(
    *, socket_path: str, message: str, timeout: float, clock: Callable[[], float]
) -> float:
    """Poll ``latest(1)`` until its message is ``message``; return when, by ``clock``."""
    deadline = clock() + timeout
    with Client(socket_path, timeout=5.0) as collector:
        while clock() < deadline:
            events = collector.latest(1)
            if events and events[0]["message"] == message:
                return clock()
    raise TimeoutError(f"the change {message!r} never showed in latest(1)")


def _round(value: Any) -> Any:
    return round(value, 4) if isinstance(value, float) else value
