"""
Fixtures that run a real control plane for the integration tests.

One control plane serves the whole session, because starting one costs
seconds and building one costs minutes. Tests that need other server flags
(event TTL, compaction interval) start their own ControlPlane.

A build or start failure fails the tests rather than skipping them: a skipped
integration suite looks green in CI while testing nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from controlplane import ControlPlane, ControlPlaneError, build_binaries


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
