"""Smoke tests: the built control plane runs the release we pinned and stores events."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from controlplane import ControlPlane

pytestmark = pytest.mark.integration

RELEASE = "v1.36.3"


def test_server_reports_the_pinned_release(control_plane: ControlPlane) -> None:
    result = control_plane.kubectl("version", "-o", "json")

    versions = json.loads(result.stdout)
    assert versions["serverVersion"]["gitVersion"] == RELEASE
    assert versions["clientVersion"]["gitVersion"] == RELEASE


def test_event_created_with_kubectl_is_listed(
    control_plane: ControlPlane, tmp_path: Path
) -> None:
    manifest = tmp_path / "event.json"
    manifest.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": "smoke.1", "namespace": "default"},
                "involvedObject": {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "name": "smoke",
                    "namespace": "default",
                },
                "reason": "SmokeTest",
                "message": "created by the control plane smoke test",
                "type": "Normal",
                "count": 1,
                "firstTimestamp": "2026-01-01T00:00:00Z",
                "lastTimestamp": "2026-01-01T00:00:00Z",
                "source": {"component": "smoke-test"},
            }
        )
    )

    control_plane.kubectl("create", "-f", str(manifest))
    result = control_plane.kubectl("get", "events", "-A", "-o", "json")

    events = json.loads(result.stdout)["items"]
    smoke = [e for e in events if e["metadata"]["name"] == "smoke.1"]
    assert len(smoke) == 1
    assert smoke[0]["reason"] == "SmokeTest"
    assert smoke[0]["involvedObject"]["name"] == "smoke"
