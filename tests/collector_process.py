"""
A collector run the way an operator runs it: ``python -m collector`` in its own
process, and the scripted API it can run against, served from a thread of the
test process.

``CollectorProcess`` is the one way tests and the benchmark start that process,
whether on the scripted API, a real kube-apiserver or the benchmark's cluster:
it shows the whole path (flags, signals, the socket file, the log) that
in-process fixtures skip. The sample events are dated relative to now, so the
ages the client's command line prints are known.
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
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import client
from tests.events import core_event, frame
from tests.fakeapi import ListStep, ScriptedApiServer, WatchStep

REPO_ROOT = Path(__file__).resolve().parent.parent
SYNC_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 15.0
POLL_SECONDS = 0.05
LOG_TAIL_LINES = 60

# latest() is capped at the protocol's maximum; the test clusters hold far fewer.
ALL_EVENTS = 5000


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
    """
    ``python -m collector`` in its own process, its output going to a log file.

    The same class runs the collector against the scripted API, a real
    kube-apiserver or the benchmark's cluster: the caller gives the kubeconfig,
    the socket and log paths, any further flags and, when the test's own
    environment must not leak in, the environment. Every wait polls against a
    deadline and fails with the end of the log, so a failure says why.
    """

    def __init__(
        self,
        *,
        kubeconfig: Path,
        socket_path: str,
        log_path: Path,
        extra_args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        client_timeout: float = client.DEFAULT_TIMEOUT,
    ) -> None:
        self.socket_path = socket_path
        self.log_path = log_path
        # Debug logging shows every step in a failure's log; flags in
        # extra_args come later and win, as the last occurrence does.
        self.argv = [
            sys.executable,
            "-m",
            "collector",
            "--kubeconfig",
            str(kubeconfig),
            "--socket",
            socket_path,
            "--log-level",
            "debug",
            *extra_args,
        ]
        self.env = None if env is None else dict(env)
        self.client_timeout = client_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._paused = False

    @property
    def pid(self) -> int:
        """Return the process id."""
        return self._started().pid

    def start(self) -> None:
        """Start the process, its output appended to the log file."""
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=REPO_ROOT,
                env=self.env,
            )

    def wait_synced(
        self,
        *,
        within: float = SYNC_TIMEOUT_SECONDS,
        records: int | None = None,
        deleted: int | None = None,
        poll: float = POLL_SECONDS,
    ) -> dict[str, Any]:
        """
        Wait until the collector answers and has listed; return its stats.

        With ``records`` or ``deleted`` it must also hold exactly that many
        records, or deleted ones. An exit fails at once, not at the deadline.
        """
        wanted = {"synced": True, "records": records, "deleted": deleted}
        wanted = {key: value for key, value in wanted.items() if value is not None}
        deadline = time.monotonic() + within
        stats: dict[str, Any] = {}
        while time.monotonic() < deadline:
            self.assert_running()
            try:
                stats = self.stats()
            except client.CollectorError:
                stats = {}
            if all(stats.get(key) == value for key, value in wanted.items()):
                return stats
            time.sleep(poll)
        raise AssertionError(
            f"the collector did not sync within {within:.0f} s: {stats}\n{self.tail()}"
        )

    def assert_running(self) -> None:
        """Fail with the log's tail if the process has exited."""
        code = self._started().poll()
        assert code is None, f"the collector exited with {code}:\n{self.tail()}"

    def latest(self, limit: int = ALL_EVENTS, **filters: Any) -> client.EventList:
        """Ask the collector for its latest events through the real client."""
        return client.latest(
            limit, socket_path=self.socket_path, timeout=self.client_timeout, **filters
        )

    def stats(self) -> dict[str, Any]:
        """Return the collector's counters, over a fresh connection."""
        with client.Client(self.socket_path, timeout=self.client_timeout) as collector:
            return collector.stats()

    def pause(self) -> None:
        """Freeze the process (SIGSTOP): its watch falls behind the cluster."""
        os.kill(self.pid, signal.SIGSTOP)
        self._paused = True

    def resume(self) -> None:
        """Let a paused process run again (SIGCONT)."""
        os.kill(self.pid, signal.SIGCONT)
        self._paused = False

    def stop(
        self, signum: int = signal.SIGTERM, *, timeout: float = STOP_TIMEOUT_SECONDS
    ) -> int | None:
        """
        Send ``signum`` and return the exit code; None if it never started.

        A process that is still running after ``timeout`` is killed, and None
        returned: a hung collector fails the caller's check of the exit code.
        """
        if self._process is None:
            return None
        if self._paused:
            self.resume()
        if self._process.poll() is None:
            self._process.send_signal(signum)
        try:
            return self._process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def kill(self) -> None:
        """Kill the process if it still runs (SIGKILL), and reap it."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(STOP_TIMEOUT_SECONDS)

    def log(self) -> str:
        """Return the whole log."""
        return self.log_path.read_text(errors="replace")

    def tail(self, *, lines: int = LOG_TAIL_LINES) -> str:
        """Return the end of the log, for failure messages."""
        return "\n".join(self.log().splitlines()[-lines:])

    def _started(self) -> subprocess.Popen[bytes]:
        assert self._process is not None, "the collector was not started"
        return self._process


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
    api_thread: ApiThread,
    *,
    workdir: Path,
    socket_path: str,
    args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
) -> tuple[CollectorProcess, datetime.datetime]:
    """
    Serve the sample script and start a collector on it; wait until ready.

    ``env`` adds to the test's cleaned environment.
    """
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    api = api_thread.serve(sample_script(now))
    kubeconfig = api.write_kubeconfig(workdir / "kubeconfig")
    process = CollectorProcess(
        kubeconfig=kubeconfig,
        socket_path=socket_path,
        log_path=workdir / "collector.log",
        extra_args=args,
        env=clean_environment(**(env or {})),
    )
    process.start()
    try:
        process.wait_synced(records=len(SAMPLE_NEWEST_FIRST), deleted=1)
    except BaseException:
        process.kill()
        raise
    return process, now
