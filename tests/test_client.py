"""
The client library against a real collector process, and the collector
process itself: its flags, its signals, its socket file and its log.

Peers that misbehave (a socket nobody serves, a server that never answers or
answers garbage) are plain sockets made here, because the real collector
cannot be made to misbehave that way.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import client
from client import (
    Client,
    CollectorError,
    CollectorTimeout,
    CollectorUnavailable,
    ProtocolError,
    RequestError,
)
from collector.serving import SHUTDOWN_GRACE_SECONDS
from tests.collector_process import (
    REPO_ROOT,
    SAMPLE_LISTED,
    SAMPLE_NEWEST_FIRST,
    ApiThread,
    clean_environment,
    start_collector,
)


def uids(events) -> list[str]:
    return [event["uid"] for event in events]


@pytest.fixture(scope="module")
def api_thread():
    thread = ApiThread()
    yield thread
    thread.close()


@pytest.fixture
def short_dir():
    # Unix socket paths are limited to about 100 bytes; pytest's tmp_path is long.
    path = tempfile.mkdtemp(prefix="ec-")
    yield Path(path)
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def collector(api_thread, tmp_path_factory):
    socket_dir = tempfile.mkdtemp(prefix="ec-")
    # Without docstrings (python -OO), as the image runs the collector.
    process, _ = start_collector(
        api_thread,
        workdir=tmp_path_factory.mktemp("collector"),
        socket_path=os.path.join(socket_dir, "events.sock"),
        env={"PYTHONOPTIMIZE": "2"},
    )
    yield process
    process.kill()
    shutil.rmtree(socket_dir, ignore_errors=True)


def test_latest_returns_the_newest_first(collector):
    events = client.latest(10, socket_path=collector.socket_path)

    assert events.synced is True
    assert uids(events) == SAMPLE_NEWEST_FIRST
    assert uids(client.latest(2, socket_path=collector.socket_path)) == [
        "created",
        "killing",
    ]
    assert [event["deleted"] for event in events].count(True) == 1
    assert events[SAMPLE_NEWEST_FIRST.index("pulled")]["deleted"] is True


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        pytest.param(
            {"namespace": "shop"},
            ["created", "killing", "backoff", "pulled", "failed-mount"],
            id="namespace",
        ),
        pytest.param({"type": "Warning"}, ["backoff", "failed-mount"], id="type"),
        pytest.param({"reason": "Scheduled"}, ["scheduled"], id="reason"),
        pytest.param({"kind": "Node"}, ["node-ready"], id="kind"),
        pytest.param({"name": "web-1"}, ["created", "killing", "pulled"], id="name"),
        pytest.param(
            {"namespace": "shop", "type": "Warning", "name": "db-0"},
            ["failed-mount"],
            id="combined",
        ),
        pytest.param({"namespace": "nowhere"}, [], id="no-match"),
    ],
)
def test_latest_filters_keep_the_newest_first_order(collector, filters, expected):
    with Client(collector.socket_path) as collector_client:
        assert uids(collector_client.latest(100, **filters)) == expected


def test_latest_since_keeps_events_last_seen_at_or_after_it(collector):
    with Client(collector.socket_path) as collector_client:
        newest = collector_client.latest(3)
        since = newest[2]["last_seen"]

        assert uids(collector_client.latest(100, since=since)) == uids(newest)


def ask_raw(sock: socket.socket, request: dict[str, Any]) -> dict[str, Any]:
    sock.sendall(json.dumps(request).encode() + b"\n")
    answer = b""
    while not answer.endswith(b"\n"):
        chunk = sock.recv(65536)
        assert chunk, "the collector hung up"
        answer += chunk
    response: dict[str, Any] = json.loads(answer)
    return response


def wait_for_connections(observer: socket.socket, count: int) -> dict[str, Any]:
    deadline = time.monotonic() + 5
    while True:
        stats: dict[str, Any] = ask_raw(observer, {"op": "stats"})["stats"]
        if stats["connections"] == count or time.monotonic() > deadline:
            return stats
        time.sleep(0.02)


def test_a_client_keeps_one_connection_for_many_calls(collector):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as observer:
        observer.settimeout(5)
        observer.connect(collector.socket_path)
        assert wait_for_connections(observer, 1)["connections"] == 1

        with Client(collector.socket_path) as reused:
            reused.ping()
            reused.latest(1)
            time.sleep(0.2)
            # Between calls the collector still holds the client's connection.
            before = wait_for_connections(observer, 2)
            assert before["connections"] == 2
            for _ in range(5):
                reused.ping()
            assert reused.stats()["connections"] == 2
            after = ask_raw(observer, {"op": "stats"})["stats"]

        assert after["connections"] == 2
        assert after["requests"] - before["requests"] == 7
        assert wait_for_connections(observer, 1)["connections"] == 1


def test_latest_finds_the_socket_in_the_environment(collector, monkeypatch):
    monkeypatch.setenv("EVENT_COLLECTOR_SOCKET", collector.socket_path)

    assert uids(client.latest(1)) == ["created"]
    with Client() as collector_client:
        assert collector_client.socket_path == collector.socket_path


def test_a_missing_socket_raises_collector_unavailable(short_dir):
    path = str(short_dir / "absent.sock")

    with pytest.raises(CollectorUnavailable, match=path):
        client.latest(5, socket_path=path)


def test_a_socket_nobody_serves_raises_collector_unavailable(short_dir):
    path = str(short_dir / "dead.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
        dead.bind(path)

    with pytest.raises(CollectorUnavailable, match=path):
        client.latest(5, socket_path=path)


def test_a_server_that_never_answers_raises_collector_timeout(short_dir):
    path = str(short_dir / "mute.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as mute:
        mute.bind(path)
        mute.listen(1)  # the kernel accepts the connection; nobody ever reads

        started = time.monotonic()
        with pytest.raises(CollectorTimeout, match=path):
            client.latest(5, socket_path=path, timeout=0.3)
        waited = time.monotonic() - started

    assert 0.25 <= waited < 3.0


@contextlib.contextmanager
def answering(path: str, reply: bytes):
    """Serve one connection that answers its first line with ``reply``."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(path)
        listener.listen(1)

        def serve() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.recv(65536)
                conn.sendall(reply)
                conn.recv(65536)  # until the client hangs up

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        yield
        thread.join(5)


@pytest.mark.parametrize(
    ("reply", "call"),
    [
        pytest.param(b"hello there\n", "stats", id="not-json"),
        pytest.param(b"[1, 2]\n", "stats", id="array"),
        pytest.param(b'{"pong": true}\n', "stats", id="no-ok"),
        pytest.param(b'{"ok": true, "stats": [1]}\n', "stats", id="wrong-shape"),
        pytest.param(
            b'{"ok": false, "error": "boom"}\n', "latest", id="error-a-string"
        ),
        pytest.param(b'{"ok": false}\n', "latest", id="error-missing"),
        pytest.param(
            b'{"ok": false, "error": {"code": 7}}\n', "latest", id="code-not-a-string"
        ),
        pytest.param(b'{"ok": "false", "events": []}\n', "latest", id="ok-a-string"),
        pytest.param(
            b'{"ok": true, "synced": true, "events": [1, "x"]}\n',
            "latest",
            id="not-records",
        ),
        pytest.param(b'{"ok": true, "events": []}\n', "latest", id="no-synced-flag"),
    ],
)
def test_an_answer_that_is_not_the_protocol_raises_protocol_error(
    short_dir, reply, call
):
    path = str(short_dir / "garbage.sock")
    with answering(path, reply), Client(path, timeout=2) as collector_client:
        with pytest.raises(ProtocolError):
            getattr(collector_client, call)()


@pytest.mark.parametrize(
    "timeout",
    [
        pytest.param(0, id="zero"),
        pytest.param(-1, id="negative"),
        pytest.param(1e12, id="past-what-sockets-take"),
        pytest.param(float("nan"), id="nan"),
        pytest.param(None, id="none"),
        pytest.param(True, id="bool"),
    ],
)
def test_a_timeout_that_is_not_a_sane_number_of_seconds_is_refused_at_once(timeout):
    with pytest.raises(ValueError, match="timeout must be a number of seconds"):
        Client("/nonexistent.sock", timeout=timeout)


@pytest.mark.parametrize("since", [1700000000, b"2026-05-01T10:00:00Z", object()])
def test_since_of_another_type_is_a_type_error(short_dir, since):
    with pytest.raises(TypeError, match="since must be"):
        client.latest(5, socket_path=str(short_dir / "none.sock"), since=since)


def test_a_refused_request_raises_request_error_with_its_code(collector):
    with Client(collector.socket_path) as collector_client:
        with pytest.raises(RequestError) as refused:
            collector_client.latest(0)
        assert refused.value.code == "bad_argument"
        assert "limit" in refused.value.message
        assert isinstance(refused.value, CollectorError)

        # A refused request leaves the connection usable.
        assert uids(collector_client.latest(1)) == ["created"]


def test_close_twice_is_safe_and_a_call_after_close_raises(collector):
    collector_client = Client(collector.socket_path)
    collector_client.ping()

    collector_client.close()
    collector_client.close()

    with pytest.raises(CollectorError, match="closed"):
        collector_client.ping()


def test_the_collector_logs_serving_on_and_synced_with(collector):
    log = collector.log()

    assert f"Serving on {collector.socket_path}" in log
    assert f"Synced with {SAMPLE_LISTED} events" in log


@pytest.mark.parametrize(
    "signum",
    [
        pytest.param(signal.SIGTERM, id="SIGTERM"),
        pytest.param(signal.SIGINT, id="SIGINT"),
    ],
)
def test_a_signal_stops_the_collector_cleanly(api_thread, tmp_path, short_dir, signum):
    path = str(short_dir / "events.sock")
    process, _ = start_collector(api_thread, workdir=tmp_path, socket_path=path)
    try:
        exit_code = process.stop(signum)
    finally:
        process.kill()

    log = process.log()
    assert exit_code == 0, log
    assert not os.path.exists(path)
    assert f"Received {signal.Signals(signum).name}; stopping." in log
    assert "Stopped." in log
    assert "Traceback" not in log


def test_stopping_with_an_idle_client_connected_is_prompt_and_clean(
    api_thread, tmp_path, short_dir
):
    path = str(short_dir / "events.sock")
    process, _ = start_collector(api_thread, workdir=tmp_path, socket_path=path)
    idle = Client(path)
    try:
        idle.ping()
        started = time.monotonic()
        exit_code = process.stop(signal.SIGTERM)
        took = time.monotonic() - started
    finally:
        idle.close()
        process.kill()

    assert exit_code == 0, process.log()
    # The idle connection is ended, not waited out for the whole grace period.
    assert took < SHUTDOWN_GRACE_SECONDS, took
    assert "Traceback" not in process.log()
    assert "Exception in callback" not in process.log()


def run_collector_command(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "collector", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
        env=clean_environment(),
    )


def test_a_missing_kubeconfig_exits_2_with_a_clear_message(short_dir):
    kubeconfig = str(short_dir / "no-such-kubeconfig")
    path = str(short_dir / "events.sock")

    result = run_collector_command("--kubeconfig", kubeconfig, "--socket", path)

    assert result.returncode == 2, result.stderr
    assert f"cannot load cluster credentials from {kubeconfig}" in result.stderr
    assert "Traceback" not in result.stderr
    assert not os.path.exists(path)


def test_the_collector_help_mentions_every_flag():
    result = run_collector_command("--help")

    assert result.returncode == 0
    flags = [
        "--kubeconfig",
        "--context",
        "--namespace",
        "--socket",
        "--retention",
        "--max-events",
        "--max-connections",
        "--page-size",
        "--watch-timeout",
        "--log-level",
        "--log-format",
    ]
    assert [flag for flag in flags if flag not in result.stdout] == []
    assert "EVENT_COLLECTOR_" in result.stdout


# Runs in a bare interpreter in which the collector's dependencies cannot be
# imported: the client and its command line must work without them.
IMPORT_CONTRACT = """
import sys

FORBIDDEN = ("kubernetes_asyncio", "aiohttp", "orjson", "collector")
for name in FORBIDDEN:
    sys.modules[name] = None

import client
import client.__main__
import client.errors
import client.protocol

try:
    client.latest(3, socket_path=sys.argv[1])
except client.CollectorUnavailable:
    pass
else:
    sys.exit("client.latest found a collector at a missing socket")
assert client.__main__.main(["ping", "--socket", sys.argv[1]]) == 1

loaded = sorted(
    name for name in sys.modules
    if name.split(".")[0] in FORBIDDEN and sys.modules[name] is not None
)
assert not loaded, loaded
print("client works alone")
"""


def test_the_client_imports_nothing_of_the_collector_or_its_dependencies(short_dir):
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_CONTRACT, str(short_dir / "absent.sock")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
        env=clean_environment(),
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout == "client works alone\n"
