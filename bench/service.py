"""
Run the real collector as a subprocess and watch it from outside.

The benchmark measures the collector the way it is deployed: ``python -m
collector`` in its own process, read through its socket with the stdlib client,
its memory taken from ``/proc/<pid>/status`` (RSS, never an estimate of what the
store holds). Each cluster size gets a fresh process, so the time to sync and
the memory after it are the figures of a collector starting on that cluster.
The process is the tests' ``CollectorProcess``; this adds what only the
benchmark measures.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from tests import collector_process

SYNC_POLL_SECONDS = 0.01
# Stats while a storm of patches lands can take longer than the client's default.
CLIENT_TIMEOUT_SECONDS = 10.0


class CollectorProcess(collector_process.CollectorProcess):
    """One ``python -m collector`` on the benchmark's cluster."""

    def __init__(
        self, *, kubeconfig: Path, socket_path: str, max_events: int, log_path: Path
    ) -> None:
        # Info logging and no docstrings (python -OO), as the image runs it:
        # debug logging would slow down what is measured, and the docstrings of
        # kubernetes-asyncio's models cost 13 MiB of RSS.
        super().__init__(
            kubeconfig=kubeconfig,
            socket_path=socket_path,
            log_path=log_path,
            extra_args=[f"--max-events={max_events}", "--log-level=info"],
            env={**os.environ, "PYTHONOPTIMIZE": "2"},
            client_timeout=CLIENT_TIMEOUT_SECONDS,
        )

    def start_and_sync(self, *, timeout: float) -> float:
        """Start the collector; return the seconds from start until it is synced."""
        started = time.perf_counter()
        self.start()
        self.wait_synced(within=timeout, poll=SYNC_POLL_SECONDS)
        return time.perf_counter() - started

    def memory_kib(self) -> dict[str, int]:
        """Return the process's resident set now (VmRSS) and at its peak (VmHWM)."""
        fields = {}
        status = Path(f"/proc/{self.pid}/status").read_text()
        for line in status.splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0])
        return fields
