"""
``scripts/run``, the README's demo, run as a user runs it.

It must show events that real components wrote, and a Ctrl-C or a SIGTERM
must leave nothing behind: no collector, no etcd, no kube-apiserver, no
scheduler or controller-manager. Leftovers are looked for with ``ps``, by the
paths the demo printed (every component's command line names its work
directory, the collector's names its socket).
"""

from __future__ import annotations

import datetime
import os
import re
import signal
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from controlplane import ControlPlane
from tests.integration.helpers import REPO_ROOT, core_event, create_objects, eventually

pytestmark = pytest.mark.integration

# scripts/setup (pip, cached build) plus a control plane start on a busy machine.
DEMO_OUTPUT_SECONDS = 240.0
DEMO_STOP_SECONDS = 60.0


def start_demo(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], Path, Path]:
    """Start scripts/run in its own session, as a terminal's foreground job."""
    stdout, stderr = tmp_path / "demo.out", tmp_path / "demo.err"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        demo = subprocess.Popen(
            [str(REPO_ROOT / "scripts" / "run"), *args],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            env={**os.environ, "DEMO_INTERVAL": "2", **(env or {})},
            start_new_session=True,
        )
    return demo, stdout, stderr


def wait_for_output(
    demo: subprocess.Popen[bytes], stdout: Path, stderr: Path, pattern: str
) -> str:
    def shown() -> str:
        text = stdout.read_text(errors="replace")
        assert demo.poll() is None, f"the demo exited with {demo.returncode}:\n{text}"
        assert re.search(pattern, text), f"no {pattern!r} yet"
        return text

    try:
        return eventually(shown, within=DEMO_OUTPUT_SECONDS, what=pattern)
    except AssertionError:
        os.killpg(demo.pid, signal.SIGTERM)
        demo.wait(timeout=DEMO_STOP_SECONDS)
        print(stderr.read_text(errors="replace")[-5000:])
        raise


def stop_demo(
    demo: subprocess.Popen[bytes], send: Callable[[], None], stderr: Path
) -> None:
    send()
    try:
        code = demo.wait(timeout=DEMO_STOP_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(demo.pid, signal.SIGKILL)
        raise
    assert code == 0, stderr.read_text(errors="replace")[-5000:]


def processes_naming(*paths: str) -> list[str]:
    """Return the ``ps`` lines of running processes whose arguments name a path."""
    table = subprocess.run(
        ["ps", "-eo", "pid=,args="], capture_output=True, text=True, check=True
    ).stdout
    return [line for line in table.splitlines() if any(p in line for p in paths)]


def printed_value(text: str, label: str) -> str:
    match = re.search(rf"^{label}: (\S+)", text, re.MULTILINE)
    assert match, f"the demo did not print its {label}:\n{text}"
    return match.group(1)


def test_the_demo_shows_component_events_and_ctrl_c_stops_everything(
    tmp_path: Path,
) -> None:
    demo, stdout, stderr = start_demo(tmp_path)
    text = wait_for_output(demo, stdout, stderr, r"FailedScheduling")

    # A Ctrl-C at a terminal signals the whole foreground process group.
    stop_demo(demo, lambda: os.killpg(demo.pid, signal.SIGINT), stderr)

    text = stdout.read_text(errors="replace")
    assert "SuccessfulCreate" in text or "ScalingReplicaSet" in text
    workdir = re.search(r"\(workdir (\S+)\)", text)
    assert workdir, text
    socket_dir = os.path.dirname(printed_value(text, "collector socket"))
    assert processes_naming(workdir.group(1), socket_dir) == []
    assert not os.path.exists(socket_dir)


def test_the_demo_watches_a_given_cluster_and_stops_on_sigterm(
    control_plane: ControlPlane, tmp_path: Path
) -> None:
    reason = f"DemoProbe{uuid.uuid4().hex[:8]}"
    now = datetime.datetime.now(datetime.UTC)
    create_objects(
        control_plane,
        [core_event(namespace="default", name="demo-probe.1", at=now, reason=reason)],
    )
    demo, stdout, stderr = start_demo(
        tmp_path,
        "--kubeconfig",
        str(control_plane.kubeconfig),
        "--limit",
        "50",
        "--log-level",
        "debug",
    )
    text = wait_for_output(demo, stdout, stderr, reason)

    stop_demo(demo, lambda: demo.send_signal(signal.SIGTERM), stderr)

    socket_dir = os.path.dirname(printed_value(text, "collector socket"))
    assert processes_naming(socket_dir) == []
    # The extra flag reached the collector: only debug logs the watch requests.
    assert "Watching from resourceVersion" in stderr.read_text(errors="replace")
    # A given cluster is only watched: the demo's workload was not created there.
    namespaces = control_plane.kubectl("get", "namespaces", "-o", "name").stdout
    assert "namespace/demo" not in namespaces.split()
