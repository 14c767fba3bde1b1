"""
Helpers for the integration tests: the collector as a real process, Event
manifests in both API shapes, and kubectl's view of the same events.

The collector runs exactly as an operator would run it (``python -m collector``
in its own process, talking to a real kube-apiserver), so a test can pause it,
signal it and read its log. Every wait here polls against a deadline: the
machine has two cores shared with other work, and a fixed sleep that passes on
a quiet machine fails on a busy one.
"""

from __future__ import annotations

import datetime
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import client
from controlplane import ControlPlane

T = TypeVar("T")

REPO_ROOT = Path(__file__).resolve().parents[2]
POLL_INTERVAL_SECONDS = 0.2
SYNC_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 30.0
LOG_TAIL_LINES = 60

# latest() is capped at the protocol's maximum; the test clusters hold far fewer.
ALL_EVENTS = 5000


def eventually(check: Callable[[], T], *, within: float, what: str) -> T:
    """
    Call ``check`` until it returns without an AssertionError; return its value.

    After the deadline the last AssertionError is raised again, so the failure
    shows what was still wrong rather than only that time ran out.
    """
    deadline = time.monotonic() + within
    while True:
        try:
            return check()
        except (AssertionError, client.CollectorError) as exc:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"still not true after {within:.0f} s: {what}: {exc}"
                ) from exc
        time.sleep(POLL_INTERVAL_SECONDS)


class CollectorProcess:
    """``python -m collector`` against one cluster, on a socket in ``directory``."""

    def __init__(
        self, *, kubeconfig: Path, directory: Path, extra_args: Sequence[str] = ()
    ) -> None:
        self.socket_path = str(directory / "events.sock")
        self.log_path = directory / "collector.log"
        self.argv = [
            sys.executable,
            "-m",
            "collector",
            "--kubeconfig",
            str(kubeconfig),
            "--socket",
            self.socket_path,
            "--log-level",
            "debug",
            *extra_args,
        ]
        self._process: subprocess.Popen[bytes] | None = None
        self._paused = False

    @property
    def pid(self) -> int:
        """Return the process id."""
        assert self._process is not None, "the collector was not started"
        return self._process.pid

    def start(self) -> None:
        """Start the process, its output going to the log file."""
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=REPO_ROOT,
            )

    def wait_synced(self, *, within: float = SYNC_TIMEOUT_SECONDS) -> None:
        """Wait until the collector answers a ping and has listed the cluster."""

        def synced() -> None:
            self.assert_running()
            with client.Client(self.socket_path) as collector:
                collector.ping()
                assert collector.stats()["synced"], "not synced yet"

        eventually(synced, within=within, what=f"the collector synced\n{self.tail()}")

    def assert_running(self) -> None:
        """Fail with the log's tail if the process has exited."""
        assert self._process is not None, "the collector was not started"
        code = self._process.poll()
        assert code is None, f"the collector exited with {code}:\n{self.tail()}"

    def latest(self, limit: int = ALL_EVENTS, **filters: Any) -> client.EventList:
        """Ask the collector for its latest events through the real client."""
        return client.latest(limit, socket_path=self.socket_path, **filters)

    def stats(self) -> dict[str, Any]:
        """Return the collector's counters."""
        with client.Client(self.socket_path) as collector:
            return collector.stats()

    def pause(self) -> None:
        """Freeze the process (SIGSTOP): its watch falls behind the cluster."""
        os.kill(self.pid, signal.SIGSTOP)
        self._paused = True

    def resume(self) -> None:
        """Let a paused process run again (SIGCONT)."""
        os.kill(self.pid, signal.SIGCONT)
        self._paused = False

    def stop(self) -> int | None:
        """Send SIGTERM and return the exit code; kill it if it hangs (None)."""
        if self._process is None:
            return None
        if self._paused:
            self.resume()
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
        try:
            return self._process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
            return None

    def log(self) -> str:
        """Return the whole log."""
        return self.log_path.read_text(errors="replace")

    def tail(self, *, lines: int = LOG_TAIL_LINES) -> str:
        """Return the end of the log, for failure messages."""
        return "\n".join(self.log().splitlines()[-lines:])


def iso_time(moment: datetime.datetime) -> str:
    """Format a metav1.Time: UTC, to the second."""
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_micro_time(moment: datetime.datetime) -> str:
    """Format a metav1.MicroTime: UTC, six decimals."""
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def core_event(
    *, namespace: str, name: str, at: datetime.datetime, count: int = 1, **fields: Any
) -> dict[str, Any]:
    """An Event as client-go's old recorder writes it through core/v1."""
    event: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"namespace": namespace, "name": name},
        "involvedObject": {
            "apiVersion": "v1",
            "kind": "Pod",
            "namespace": namespace,
            "name": name.split(".")[0],
        },
        "reason": "LiveTest",
        "message": f"{name} from the integration tests",
        "type": "Normal",
        "source": {"component": "live-test", "host": "test-host"},
        "firstTimestamp": iso_time(at),
        "lastTimestamp": iso_time(at),
        "count": count,
    }
    event.update(fields)
    return event


def events_v1_event(
    *, namespace: str, name: str, at: datetime.datetime, **fields: Any
) -> dict[str, Any]:
    """An Event as client-go's new broadcaster writes it through events.k8s.io/v1."""
    event: dict[str, Any] = {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"namespace": namespace, "name": name},
        "regarding": {
            "apiVersion": "v1",
            "kind": "Pod",
            "namespace": namespace,
            "name": name.split(".")[0],
        },
        "eventTime": iso_micro_time(at),
        "reportingController": "example.com/live-test",
        "reportingInstance": "live-test-instance",
        "action": "Testing",
        "reason": "LiveTest",
        "note": f"{name} from the integration tests",
        "type": "Warning",
    }
    event.update(fields)
    return event


def create_objects(plane: ControlPlane, objects: Sequence[dict[str, Any]]) -> None:
    """Create objects with one kubectl call (a List), as real writers would."""
    manifest = {"apiVersion": "v1", "kind": "List", "items": list(objects)}
    plane.kubectl("create", "-f", "-", input=json.dumps(manifest))


def create_namespace(plane: ControlPlane, name: str) -> str:
    """Create a namespace and return its name."""
    plane.kubectl("create", "namespace", name)
    return name


def cluster_events(plane: ControlPlane) -> list[dict[str, Any]]:
    """Return every event in the cluster as ``kubectl get events -A -o json`` does."""
    result = plane.kubectl("get", "events", "-A", "-o", "json")
    items: list[dict[str, Any]] = json.loads(result.stdout)["items"]
    return items


def event_key(event: dict[str, Any]) -> tuple[str, str]:
    """(namespace, name) of an API Event."""
    return (event["metadata"].get("namespace", ""), event["metadata"]["name"])


def record_key(record: dict[str, Any]) -> tuple[str, str]:
    """(namespace, name) of a collector record."""
    return (record["namespace"], record["name"])


def kubectl_count(event: dict[str, Any]) -> int:
    """The COUNT kubectl shows: series.count, else count, else 1."""
    series = event.get("series")
    if series:
        return int(series["count"])
    return int(event.get("count") or 1)


def kubectl_sort_time(event: dict[str, Any]) -> str:
    """
    The time ``kubectl events`` sorts by, or "" where it uses the zero time.

    series.lastObservedTime if there is a series, else lastTimestamp if set,
    else eventTime: kubectl/pkg/cmd/events's eventTime().
    """
    series = event.get("series")
    if series:
        return str(series.get("lastObservedTime") or "")
    return str(event.get("lastTimestamp") or event.get("eventTime") or "")


def parse_time(value: str) -> datetime.datetime:
    """Parse an API time (Time or MicroTime)."""
    return datetime.datetime.fromisoformat(value)
