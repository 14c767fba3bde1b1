"""
Fixtures that run a real control plane for the integration tests.

One control plane serves the whole session, because starting one costs
seconds and building one costs minutes. Tests that need other server flags
(event TTL, compaction interval) start their own ControlPlane.

``start_collector`` runs the real collector as its own process against any of
them, and checks at the end of the test that SIGTERM stopped it with exit 0.

A build or start failure fails the tests rather than skipping them: a skipped
integration suite looks green in CI while testing nothing.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from controlplane import ControlPlane, ControlPlaneError, build_binaries
from tests.collector_process import CollectorProcess
from tests.integration.helpers import (
    POLL_INTERVAL_SECONDS,
    STOP_TIMEOUT_SECONDS,
    SYNC_TIMEOUT_SECONDS,
)


@pytest.fixture(scope="session")
def control_plane_bin_dir() -> Path:
    """Build the control plane binaries, or reuse the cached build."""
    try:
        return build_binaries()
    except ControlPlaneError as exc:
        failure = f"could not build the control plane: {exc}"
    pytest.fail(failure, pytrace=False)


@pytest.fixture(scope="session")
def control_plane(control_plane_bin_dir: Path) -> Iterator[ControlPlane]:
    """Run etcd and kube-apiserver with the server's default flags."""
    plane = ControlPlane(bin_dir=control_plane_bin_dir)
    failure = None
    try:
        plane.start()
    except ControlPlaneError as exc:
        failure = f"could not start the control plane: {exc}"
    if failure is not None:
        pytest.fail(failure, pytrace=False)
    try:
        yield plane
    finally:
        plane.stop()


@pytest.fixture
def start_control_plane(
    control_plane_bin_dir: Path,
) -> Iterator[Callable[..., ControlPlane]]:
    """
    Start a control plane of the test's own, with ControlPlane's keyword knobs.

    Ask for this fixture before ``start_collector``: fixtures are torn down in
    reverse, so the collectors stop while their API server still runs.
    """
    planes: list[ControlPlane] = []

    def start(**knobs: Any) -> ControlPlane:
        plane = ControlPlane(bin_dir=control_plane_bin_dir, **knobs)
        planes.append(plane)
        plane.start()
        return plane

    yield start

    for plane in planes:
        plane.stop()


@pytest.fixture
def start_collector() -> Iterator[Callable[..., CollectorProcess]]:
    """
    Start ``python -m collector`` against a kubeconfig and wait until it synced.

    Call it as ``start_collector(kubeconfig, *extra_flags)``. The socket lives
    in a short temporary directory (Unix socket paths are limited to about
    100 bytes). At teardown every collector gets SIGTERM and must exit with 0;
    the end of its log is printed, which pytest shows when the test failed.
    """
    started: list[tuple[CollectorProcess, Path]] = []

    def start(kubeconfig: Path, *extra_args: str) -> CollectorProcess:
        directory = Path(tempfile.mkdtemp(prefix="ec-"))
        collector = CollectorProcess(
            kubeconfig=kubeconfig,
            socket_path=str(directory / "events.sock"),
            log_path=directory / "collector.log",
            extra_args=extra_args,
        )
        collector.start()
        started.append((collector, directory))
        collector.wait_synced(within=SYNC_TIMEOUT_SECONDS, poll=POLL_INTERVAL_SECONDS)
        return collector

    yield start

    codes = {}
    for collector, directory in started:
        codes[collector.pid] = collector.stop(timeout=STOP_TIMEOUT_SECONDS)
        print(f"--- collector {collector.pid} log (end) ---\n{collector.tail()}")
        shutil.rmtree(directory, ignore_errors=True)
    assert all(code == 0 for code in codes.values()), f"exit codes by pid: {codes}"
