"""
A collector run the way an operator runs it: ``python -m collector`` in its own
process, against the scripted API served from a thread of the test process.

The client tests use it to see the whole path (flags, signals, the socket file,
the log) that in-process fixtures skip. The sample events are dated relative to
now, so the ages the command line prints are known.
"""

from __future__ import annotations

import asyncio
import datetime
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from client import Client, CollectorError
from tests.events import core_event, frame
from tests.fakeapi import ListStep, ScriptedApiServer, WatchStep

REPO_ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 15.0


def rfc3339(moment: datetime.datetime, *, micro: bool = False) -> str:
    spec = "microseconds" if micro else "seconds"
    return moment.isoformat(timespec=spec).replace("+00:00", "Z")


def sample_script(now: datetime.datetime) -> list[ListStep | WatchStep]:
    """
    Six listed events, then a watch that adds one and deletes one.

    Newest first, the collector holds: created (1 s ago), killing (5 s),
    node-ready (45 s), backoff (60 s), scheduled (10 m), pulled (3 h, deleted by
    the watch) and failed-mount (2 d).
    """

    def ago(**delta: float) -> str:
        return rfc3339(now - datetime.timedelta(**delta))

    def event(uid: str, **fields: Any) -> dict[str, Any]:
        # Created when first reported, as the API server does.
        created = fields.get("first") or fields.get("last") or fields["event_time"]
        return core_event(uid, created=created, **fields)

    def pod(name: str, namespace: str = "shop") -> dict[str, Any]:
        return {"kind": "Pod", "namespace": namespace, "name": name, "uid": name}

    pulled = event(
        "pulled", namespace="shop", rv="11", last=ago(hours=3), first=ago(hours=3)
    )
    listed = [
        pulled,
        event(
            "backoff",
            namespace="shop",
            rv="12",
            type="Warning",
            reason="BackOff",
            message="  Back-off restarting failed container\n  web in pod web-2\n",
            involved={**pod("web-2"), "fieldPath": "spec.containers{web}"},
            last=ago(seconds=60),
            first=ago(minutes=20),
            count=5,
        ),
        event(
            "scheduled",
            namespace="kube-system",
            rv="13",
            reason="Scheduled",
            message="Successfully assigned kube-system/dns-1 to node-a",
            involved=pod("dns-1", "kube-system"),
            source={},
            reportingComponent="default-scheduler",
            event_time=rfc3339(now - datetime.timedelta(minutes=10), micro=True),
        ),
        event(
            "failed-mount",
            namespace="shop",
            rv="14",
            type="Warning",
            reason="FailedMount",
            involved=pod("db-0"),
            last=ago(days=2),
            first=ago(days=2),
        ),
        event(
            "node-ready",
            namespace="default",
            rv="15",
            reason="NodeReady",
            message="Node node-a status is now: NodeReady",
            involved={"kind": "Node", "name": "node-a", "uid": "node-a"},
            last=ago(seconds=45),
        ),
        event(
            "killing",
            namespace="shop",
            rv="16",
            reason="Killing",
            involved=pod("web-1"),
            last=ago(seconds=5),
        ),
    ]
    created = event(
        "created", namespace="shop", rv="17", reason="Created", last=ago(seconds=1)
    )
    # The API server's TTL ran out for "pulled": DELETED carries a newer version.
    expired = {**pulled, "metadata": {**pulled["metadata"], "resourceVersion": "18"}}
    watch = WatchStep(
        "16",
        frames=[frame("ADDED", created), frame("DELETED", expired)],
    )
    return [ListStep("16", listed), watch]


# The collector's view of sample_script, newest first.
SAMPLE_NEWEST_FIRST = [
    "created",
    "killing",
    "node-ready",
    "backoff",
    "scheduled",
    "pulled",
    "failed-mount",
]
SAMPLE_LISTED = 6


class ApiThread:
    """An event loop in a thread that hosts scripted API servers."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="scripted-api", daemon=True
        )
        self._servers: list[ScriptedApiServer] = []
        self._thread.start()

    def serve(self, script: list[ListStep | WatchStep]) -> ScriptedApiServer:
        async def start() -> ScriptedApiServer:
            api = ScriptedApiServer(script)
            await api.start()
            return api

        api = asyncio.run_coroutine_threadsafe(start(), self.loop).result(10)
        self._servers.append(api)
        return api

    def close(self) -> None:
        for api in self._servers:
            asyncio.run_coroutine_threadsafe(api.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


class CollectorProcess:
    """``python -m collector`` against one scripted API, logging to a file."""

    def __init__(
        self, *, kubeconfig: Path, socket_path: str, log_path: Path, args: list[str]
    ) -> None:
        self.socket_path = socket_path
        self.log_path = log_path
        command = [sys.executable, "-m", "collector", "--kubeconfig", str(kubeconfig)]
        command += ["--socket", socket_path, "--log-level", "debug", *args]
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=REPO_ROOT,
                env=clean_environment(),
            )

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, *, records: int, deleted: int = 0) -> dict[str, Any]:
        """Wait until the collector answers, is synced and holds ``records``."""
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        stats: dict[str, Any] = {}
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"the collector exited with {self.process.returncode}:\n{self.log}"
                )
            try:
                with Client(self.socket_path) as collector:
                    stats = collector.stats()
            except CollectorError:
                stats = {}
            if (stats.get("synced"), stats.get("records"), stats.get("deleted")) == (
                True,
                records,
                deleted,
            ):
                return stats
            time.sleep(0.05)
        raise AssertionError(f"the collector is not ready: {stats}\n{self.log}")

    def stop(self, signum: int = signal.SIGTERM) -> int:
        """Send a signal and return the exit code."""
        self.process.send_signal(signum)
        return self.process.wait(STOP_TIMEOUT_SECONDS)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(STOP_TIMEOUT_SECONDS)


def clean_environment(**extra: str) -> dict[str, str]:
    """The test's environment without settings that would steer a subprocess."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("EVENT_COLLECTOR_") and key != "KUBECONFIG"
    }
    env.update(extra)
    return env


def start_collector(
    api_thread: ApiThread, *, workdir: Path, socket_path: str, args: Sequence[str] = ()
) -> tuple[CollectorProcess, datetime.datetime]:
    """Serve the sample script and start a collector on it; wait until ready."""
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    api = api_thread.serve(sample_script(now))
    kubeconfig = api.write_kubeconfig(workdir / "kubeconfig")
    process = CollectorProcess(
        kubeconfig=kubeconfig,
        socket_path=socket_path,
        log_path=workdir / "collector.log",
        args=list(args),
    )
    try:
        process.wait_ready(records=len(SAMPLE_NEWEST_FIRST), deleted=1)
    except BaseException:
        process.kill()
        raise
    return process, now
