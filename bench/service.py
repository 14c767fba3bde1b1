"""
Run the real collector as a subprocess and watch it from outside.

The benchmark measures the collector the way it is deployed: ``python -m
collector`` in its own process, read through its socket with the stdlib client,
its memory taken from ``/proc/<pid>/status`` (RSS, never an estimate of what the
store holds). Each cluster size gets a fresh process, so the time to sync and
the memory after it are the figures of a collector starting on that cluster.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

from client import Client, CollectorError

REPO_ROOT = Path(__file__).resolve().parent.parent
SYNC_POLL_SECONDS = 0.01
STOP_TIMEOUT_SECONDS = 15.0


class CollectorProcess:
    """One ``python -m collector`` on the benchmark's cluster."""

    def __init__(
        self, *, kubeconfig: Path, socket_path: str, max_events: int, log_path: Path
    ) -> None:
        self.kubeconfig = kubeconfig
        self.socket_path = socket_path
        self.max_events = max_events
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int:
        """Return the collector's process id."""
        if self._process is None:
            raise RuntimeError("the collector is not running")
        return self._process.pid

    def start_and_sync(self, *, timeout: float) -> float:
        """Start the collector; return the seconds from start until it is synced."""
        self._log = self.log_path.open("ab")
        started = time.perf_counter()
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "collector",
                f"--kubeconfig={self.kubeconfig}",
                f"--socket={self.socket_path}",
                f"--max-events={self.max_events}",
                "--log-level=info",
            ],
            cwd=REPO_ROOT,
            stdout=self._log,
            stderr=self._log,
        )
        self._wait_synced(deadline=started + timeout)
        return time.perf_counter() - started

    def stats(self) -> dict[str, Any]:
        """Return the collector's stats over a fresh connection."""
        with Client(self.socket_path, timeout=10.0) as client:
            return client.stats()

    def memory_kib(self) -> dict[str, int]:
        """Return the process's resident set now (VmRSS) and at its peak (VmHWM)."""
        fields = {}
        status = Path(f"/proc/{self.pid}/status").read_text()
        for line in status.splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0])
        return fields

    def stop(self) -> int | None:
        """Stop the collector with SIGTERM, as an orchestrator would; return its code."""
        code = None
        if self._process is not None:
            if self._process.poll() is None:
                os.kill(self._process.pid, signal.SIGTERM)
            try:
                code = self._process.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self._process.kill()
                code = self._process.wait()
            self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None
        return code

    def _wait_synced(self, *, deadline: float) -> None:
        # A fresh connection per poll: the socket does not exist until the
        # collector has imported its libraries and bound it.
        while time.perf_counter() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"the collector exited with {self._process.returncode}; "
                    f"see {self.log_path}"
                )
            try:
                if self.stats().get("synced"):
                    return
            except CollectorError:
                pass
            time.sleep(SYNC_POLL_SECONDS)
        raise RuntimeError(f"the collector did not sync in time; see {self.log_path}")
