"""
Least privilege on a real API server with RBAC on, done the way the README says.

deploy/rbac.yaml and deploy/rbac-namespaced.yaml are applied with the admin
kubeconfig, deploy/make-kubeconfig.sh writes a token kubeconfig for each
service account, and the real collector (``python -m collector``) runs on it.
The accounts read events and nothing else; the namespaced one reads its own
namespace, and asked for more it stops the collector with a message.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from client import Client, CollectorError
from controlplane import ControlPlane

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
# A hang guard, not a speed assertion: a collector that works answers in seconds.
WAIT_SECONDS = 30.0


@pytest.fixture(scope="module")
def plane(control_plane_bin_dir: Path) -> Iterator[ControlPlane]:
    """Run a control plane of its own, with both RBAC files applied."""
    # Cluster-wide RBAC and the events made here stay out of other tests' cluster.
    with ControlPlane(bin_dir=control_plane_bin_dir) as plane:
        plane.kubectl("apply", "-f", str(DEPLOY / "rbac.yaml"))
        plane.kubectl("create", "namespace", "team-a")
        plane.kubectl("apply", "-f", str(DEPLOY / "rbac-namespaced.yaml"))
        yield plane


@pytest.fixture(scope="module")
def cluster_reader(plane: ControlPlane, tmp_path_factory) -> Path:
    """Return the kubeconfig of rbac.yaml's account, made by the script."""
    return make_kubeconfig(plane, tmp_path_factory.mktemp("sa") / "collector.conf")


@pytest.fixture(scope="module")
def team_reader(plane: ControlPlane, tmp_path_factory) -> Path:
    """Return the kubeconfig of rbac-namespaced.yaml's account, made by the script."""
    output = tmp_path_factory.mktemp("team") / "collector.conf"
    return make_kubeconfig(plane, output, "-n", "team-a")


def make_kubeconfig(plane: ControlPlane, output: Path, *options: str) -> Path:
    env = {
        **os.environ,
        "KUBECTL": str(plane.bin_dir / "kubectl"),
        "KUBECONFIG": str(plane.kubeconfig),
    }
    subprocess.run(
        [str(DEPLOY / "make-kubeconfig.sh"), "-d", "1h", *options, str(output)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return output


def kubectl_as(
    plane: ControlPlane, kubeconfig: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(plane.bin_dir / "kubectl"), f"--kubeconfig={kubeconfig}", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def create_event(plane: ControlPlane, *, namespace: str, name: str) -> None:
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": namespace},
        "involvedObject": {"kind": "Pod", "namespace": namespace, "name": "web-1"},
        "reason": "RbacTest",
        "message": f"made by test_rbac in {namespace}",
        "type": "Normal",
        "count": 1,
        "firstTimestamp": "2026-05-01T10:00:00Z",
        "lastTimestamp": "2026-05-01T10:00:00Z",
        "source": {"component": "test-rbac"},
    }
    plane.kubectl("create", "-f", "-", input=json.dumps(event))


def collector_env() -> dict[str, str]:
    return {
        key: value
        for key, value in os.environ.items()
        if key != "KUBECONFIG" and not key.startswith("EVENT_COLLECTOR_")
    }


@contextlib.contextmanager
def running_collector(
    kubeconfig: Path, socket_path: Path, log_path: Path, *options: str
) -> Iterator[subprocess.Popen[bytes]]:
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "collector",
                f"--kubeconfig={kubeconfig}",
                f"--socket={socket_path}",
                *options,
            ],
            cwd=REPO,
            env=collector_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            yield process
        finally:
            process.terminate()
            process.wait(timeout=WAIT_SECONDS)


def wait_for_events(
    socket_path: Path, names: set[str], *, log_path: Path
) -> list[dict[str, object]]:
    """Poll the collector until every named event is served; return them all."""
    deadline = time.monotonic() + WAIT_SECONDS
    served: list[dict[str, object]] = []
    while time.monotonic() < deadline:
        with contextlib.suppress(CollectorError), Client(str(socket_path)) as client:
            served = [dict(event) for event in client.latest(1000)]
            if names <= {event["name"] for event in served}:
                return served
        time.sleep(0.1)
    raise AssertionError(
        f"{sorted(names)} not served; served {[e['name'] for e in served]}; "
        f"log:\n{log_path.read_text()}"
    )


def test_made_kubeconfig_is_private_and_holds_only_a_token(cluster_reader):
    config = yaml.safe_load(cluster_reader.read_text())

    assert stat.S_IMODE(cluster_reader.stat().st_mode) == 0o600
    (user,) = config["users"]
    assert user["name"] == "system:serviceaccount:event-collector:event-collector"
    assert set(user["user"]) == {"token"}


def test_service_account_collector_lists_and_watches_every_namespace(
    plane, cluster_reader, socket_dir, tmp_path
):
    socket_path, log_path = socket_dir / "events.sock", tmp_path / "collector.log"
    create_event(plane, namespace="default", name="listed.1")

    with running_collector(cluster_reader, socket_path, log_path):
        wait_for_events(socket_path, {"listed.1"}, log_path=log_path)
        create_event(plane, namespace="team-a", name="watched.1")
        served = wait_for_events(
            socket_path, {"listed.1", "watched.1"}, log_path=log_path
        )

    assert {event["namespace"] for event in served} >= {"default", "team-a"}


@pytest.mark.parametrize(
    ("question", "answer"),
    [
        pytest.param(("list", "events", "-A"), "yes", id="list-events"),
        pytest.param(("watch", "events", "-A"), "yes", id="watch-events"),
        pytest.param(("list", "secrets", "-A"), "no", id="list-secrets"),
        pytest.param(("get", "secrets", "-n", "default"), "no", id="get-secret"),
        pytest.param(("create", "events", "-n", "default"), "no", id="create-events"),
        pytest.param(("list", "pods", "-A"), "no", id="list-pods"),
    ],
)
def test_service_account_may_read_events_and_nothing_else(
    plane, cluster_reader, question, answer
):
    result = kubectl_as(plane, cluster_reader, "auth", "can-i", *question)

    assert result.stdout.strip() == answer, result.stderr


def test_service_account_is_forbidden_to_get_secrets(plane, cluster_reader):
    result = kubectl_as(plane, cluster_reader, "get", "secrets", "-A")

    assert result.returncode != 0
    assert "Forbidden" in result.stderr
    assert 'cannot list resource "secrets"' in result.stderr


def test_namespaced_account_serves_its_own_namespace(
    plane, team_reader, socket_dir, tmp_path
):
    socket_path, log_path = socket_dir / "events.sock", tmp_path / "collector.log"
    create_event(plane, namespace="team-a", name="team.1")
    create_event(plane, namespace="default", name="elsewhere.1")

    with running_collector(
        team_reader, socket_path, log_path, "--namespace=team-a"
    ) as process:
        served = wait_for_events(socket_path, {"team.1"}, log_path=log_path)
        assert process.poll() is None

    assert {event["namespace"] for event in served} == {"team-a"}


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        pytest.param(
            (),
            "forbidden: cannot list events in all namespaces; grant a ClusterRole "
            "with get, list and watch on events (deploy/rbac.yaml) or pass "
            "--namespace",
            id="all-namespaces",
        ),
        pytest.param(
            ("--namespace=default",),
            "forbidden: cannot list events in namespace 'default'; grant a Role",
            id="another-namespace",
        ),
    ],
)
def test_namespaced_account_beyond_its_namespace_exits_2_with_a_message(
    team_reader, socket_dir, options, expected
):
    # A collector that backed off forever would hit the timeout here, not exit.
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "collector",
            f"--kubeconfig={team_reader}",
            f"--socket={socket_dir / 'events.sock'}",
            *options,
        ],
        cwd=REPO,
        env=collector_env(),
        capture_output=True,
        text=True,
        timeout=WAIT_SECONDS,
    )

    assert result.returncode == 2, result.stderr
    assert expected in result.stderr
    assert 'User "system:serviceaccount:team-a:event-collector"' in result.stderr
    assert "Traceback" not in result.stderr
