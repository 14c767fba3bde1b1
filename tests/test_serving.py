"""
The socket protocol on a real Unix socket, hostile clients included.

The server under test is the real ``EventServer`` over a store filled directly,
so every answer can be checked against events whose order is known: event i is
last seen i seconds after 10:00 and lives in namespace ``NAMESPACES[i % 3]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import gc
import json
import logging
import os
import shlex
import shutil
import socket
import stat
import threading
import time
from typing import Any

import pytest

import collector.serving
from client import Client
from client.protocol import MAX_LIMIT, MAX_REQUEST_BYTES, parse_rfc3339
from collector.errors import ConfigError
from collector.serving import EventServer
from collector.store import EventStore
from tests.events import core_event
from tests.fakeapi import ListStep, WatchStep

EVENT_COUNT = 300
NAMESPACES = ("team-a", "team-b", "team-c")
ANSWER_TIMEOUT_SECONDS = 5.0
PING = b'{"op":"ping"}\n'
LATEST_ALL = b'{"op":"latest","limit":5000}\n'


def uid(index: int) -> str:
    return f"u{index:03d}"


def expected_uids(limit: int, namespace: str | None = None) -> list[str]:
    """Return the uids of the latest ``limit`` events, worked out from the data."""
    indexes = [
        i
        for i in reversed(range(EVENT_COUNT))
        if namespace is None or NAMESPACES[i % 3] == namespace
    ]
    return [uid(i) for i in indexes[:limit]]


def uids(answer: dict[str, Any]) -> list[str]:
    return [event["uid"] for event in answer["events"]]


@pytest.fixture
def store() -> EventStore:
    store = EventStore(max_records=10_000, retention_seconds=10 * 365 * 86400.0)
    store.begin_list()
    for i in range(EVENT_COUNT):
        minute, second = divmod(i, 60)
        store.apply(
            core_event(
                uid(i),
                namespace=NAMESPACES[i % 3],
                rv=str(1000 + i),
                last=f"2026-05-01T10:{minute:02d}:{second:02d}Z",
                type="Warning" if i % 5 == 0 else "Normal",
                # Long enough that an answer of every event overflows the
                # socket buffers, which the never-reading client relies on.
                message=f"event {i} " + "m" * 300,
            )
        )
    store.finish_list()
    return store


@pytest.fixture
async def serve(socket_dir, store):
    servers: list[EventServer] = []

    async def start(
        *, max_connections: int = 64, path: str | None = None
    ) -> EventServer:
        server = EventServer(
            store=store,
            stats=lambda: {
                "records": len(store),
                "connections": server.connections,
                "requests": server.requests,
                "rejected_connections": server.rejected_connections,
            },
            socket_path=path or str(socket_dir / "events.sock"),
            max_connections=max_connections,
        )
        await server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.close()


class Connection:
    """A raw protocol connection: lines out, lines in, nothing interpreted."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, path: str) -> Connection:
        reader, writer = await asyncio.open_unix_connection(path, limit=2**24)
        return cls(reader, writer)

    async def send(self, payload: bytes) -> None:
        self.writer.write(payload)
        await self.writer.drain()

    async def answer(self) -> dict[str, Any]:
        line = await asyncio.wait_for(self.reader.readline(), ANSWER_TIMEOUT_SECONDS)
        assert line.endswith(b"\n"), f"not a whole answer line: {line[:200]!r}"
        answer: dict[str, Any] = json.loads(line)
        return answer

    async def ask(self, request: dict[str, Any] | bytes) -> dict[str, Any]:
        if isinstance(request, dict):
            request = json.dumps(request).encode() + b"\n"
        await self.send(request)
        return await self.answer()

    async def closed_by_server(self) -> bool:
        """Read to the end: True when the server hung up (EOF or a reset)."""
        try:
            rest = await asyncio.wait_for(self.reader.read(), ANSWER_TIMEOUT_SECONDS)
        except ConnectionResetError:
            return True
        return rest == b""

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


@contextlib.asynccontextmanager
async def connected(path: str):
    connection = await Connection.open(path)
    try:
        yield connection
    finally:
        await connection.close()


def error_code(answer: dict[str, Any]) -> str:
    assert answer["ok"] is False, answer
    assert isinstance(answer["error"]["message"], str) and answer["error"]["message"]
    return str(answer["error"]["code"])


async def test_bad_json_is_answered_and_the_connection_keeps_working(serve):
    server = await serve()
    async with connected(server.socket_path) as conn:
        assert error_code(await conn.ask(b'{"op": "latest",\n')) == "bad_json"
        assert error_code(await conn.ask(b"\xff\xfe\n")) == "bad_json"

        assert await conn.ask(PING) == {"ok": True, "pong": True}
        assert uids(await conn.ask({"op": "latest", "limit": 2})) == expected_uids(2)


@pytest.mark.parametrize(
    "line",
    [
        pytest.param(b'[{"op": "ping"}]\n', id="array"),
        pytest.param(b'"ping"\n', id="string"),
        pytest.param(b"42\n", id="number"),
        pytest.param(b"null\n", id="null"),
    ],
)
async def test_a_request_that_is_not_an_object_is_a_bad_request(serve, line):
    server = await serve()
    async with connected(server.socket_path) as conn:
        assert error_code(await conn.ask(line)) == "bad_request"
        assert await conn.ask(PING) == {"ok": True, "pong": True}


@pytest.mark.parametrize(
    "request_",
    [
        pytest.param({}, id="empty"),
        pytest.param({"limit": 3}, id="arguments-only"),
        pytest.param({"op": None}, id="null-op"),
    ],
)
async def test_a_request_without_op_is_a_bad_request(serve, request_):
    server = await serve()
    async with connected(server.socket_path) as conn:
        assert error_code(await conn.ask(request_)) == "bad_request"


async def test_an_unknown_op_is_answered_with_unknown_op(serve):
    server = await serve()
    async with connected(server.socket_path) as conn:
        answer = await conn.ask({"op": "delete", "namespace": "team-a"})
        assert error_code(answer) == "unknown_op"
        assert "latest" in answer["error"]["message"]


async def test_an_unknown_argument_is_a_bad_argument(serve):
    server = await serve()
    async with connected(server.socket_path) as conn:
        answer = await conn.ask({"op": "latest", "limit": 3, "namepsace": "team-a"})
        assert error_code(answer) == "bad_argument"
        assert "namepsace" in answer["error"]["message"]


@pytest.mark.parametrize(
    "limit",
    [
        pytest.param(0, id="zero"),
        pytest.param(-1, id="negative"),
        pytest.param(MAX_LIMIT + 1, id="over-max"),
        pytest.param("10", id="string"),
        pytest.param(True, id="bool"),
        pytest.param(2.5, id="float"),
        pytest.param(None, id="null"),
    ],
)
async def test_a_limit_that_is_not_an_integer_from_1_to_5000_is_a_bad_argument(
    serve, limit
):
    server = await serve()
    async with connected(server.socket_path) as conn:
        answer = await conn.ask({"op": "latest", "limit": limit})
        assert error_code(answer) == "bad_argument"
        assert "limit" in answer["error"]["message"]


async def test_the_largest_limit_is_accepted(serve):
    server = await serve()
    async with connected(server.socket_path) as conn:
        answer = await conn.ask({"op": "latest", "limit": MAX_LIMIT})
        assert uids(answer) == expected_uids(MAX_LIMIT)


@pytest.mark.parametrize(
    "since",
    [
        pytest.param("yesterday", id="words"),
        pytest.param("2026-13-01T00:00:00Z", id="month-13"),
        pytest.param("", id="empty"),
        pytest.param(1777629600, id="epoch-number"),
        pytest.param("2026-05-01", id="date-only"),
        pytest.param("2026-W18-5", id="week-date"),
        pytest.param("2026-05-01T10:00:00", id="no-offset"),
        pytest.param("2026-05-01T10:00:00+01", id="offset-hours-only"),
        pytest.param("2026-05-01T10:00:00,5Z", id="comma-fraction"),
        pytest.param("20260501T100000Z", id="basic-format"),
        pytest.param("2026-05-01T10:00:00." + "1" * 60000 + "Z", id="huge-fraction"),
        pytest.param("2026-05-01T10:00:00+24:00", id="offset-24h"),
    ],
)
async def test_since_that_is_not_rfc3339_is_a_bad_argument(serve, since):
    server = await serve()
    async with connected(server.socket_path) as conn:
        answer = await conn.ask({"op": "latest", "since": since})
        assert error_code(answer) == "bad_argument"
        assert "since" in answer["error"]["message"]


@pytest.mark.parametrize(
    ("since", "instant"),
    [
        pytest.param("2026-05-01T10:00:00Z", "2026-05-01T10:00:00+00:00", id="utc"),
        pytest.param(
            "2026-05-01t10:00:00z", "2026-05-01T10:00:00+00:00", id="lower-case"
        ),
        pytest.param(
            "2026-05-01T12:00:00+02:00", "2026-05-01T10:00:00+00:00", id="offset"
        ),
        pytest.param(
            "2026-05-01T09:30:00-00:30", "2026-05-01T10:00:00+00:00", id="minus"
        ),
        pytest.param(
            "2026-05-01T10:00:00.123456789Z",
            "2026-05-01T10:00:00.123456+00:00",
            id="ns",
        ),
        pytest.param(
            "2026-05-01T10:00:00.5Z", "2026-05-01T10:00:00.5+00:00", id="tenths"
        ),
        pytest.param(
            "2016-12-31T23:59:60Z", "2016-12-31T23:59:59.999999+00:00", id="leap-second"
        ),
    ],
)
def test_since_takes_every_rfc3339_form(since, instant):
    assert parse_rfc3339(since) == datetime.datetime.fromisoformat(instant)


async def test_a_filter_that_is_not_a_string_is_a_bad_argument(serve):
    server = await serve()
    async with connected(server.socket_path) as conn:
        answer = await conn.ask({"op": "latest", "namespace": ["team-a"]})
        assert error_code(answer) == "bad_argument"


async def test_latest_filters_and_since_select_the_newest_matching_events(serve):
    server = await serve()
    async with connected(server.socket_path) as conn:
        answer = await conn.ask({"op": "latest", "limit": 4, "namespace": "team-b"})
        assert answer["ok"] is True and answer["synced"] is True
        assert uids(answer) == expected_uids(4, "team-b")

        # Event 295 is last seen at 10:04:55; since is inclusive.
        since = {"op": "latest", "since": "2026-05-01T10:04:55Z"}
        assert uids(await conn.ask(since)) == [uid(i) for i in range(299, 294, -1)]


@pytest.mark.parametrize(
    "newline", [pytest.param(b"\n", id="ended"), pytest.param(b"", id="endless")]
)
async def test_an_oversized_line_gets_line_too_long_and_a_closed_connection(
    serve, newline
):
    server = await serve()
    async with connected(server.socket_path) as bystander:
        async with connected(server.socket_path) as conn:
            await conn.send(
                b'{"op":"ping","pad":"' + b"x" * MAX_REQUEST_BYTES + newline
            )
            assert error_code(await conn.answer()) == "line_too_long"
            assert await conn.closed_by_server()

        assert await bystander.ask(PING) == {"ok": True, "pong": True}
    async with connected(server.socket_path) as newcomer:
        assert uids(await newcomer.ask({"op": "latest", "limit": 1})) == [uid(299)]


def flood_without_reading(path: str) -> BaseException | None:
    """
    Send requests for big answers, never read, and return the error that shows
    the server hung up (None if it kept the connection open).
    """
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(path)
        sock.settimeout(ANSWER_TIMEOUT_SECONDS)
        sock.sendall(LATEST_ALL * 50)

        # While the server holds this connection, pings go into its buffer
        # (then block); once it has let go, a write fails at once.
        deadline = time.monotonic() + 10 * ANSWER_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            try:
                sock.send(PING)
            except (BrokenPipeError, ConnectionResetError) as exc:
                return exc
            except TimeoutError:
                return None
            time.sleep(0.01)
    return None


async def test_a_client_that_never_reads_is_closed_while_others_are_served(
    serve, monkeypatch
):
    monkeypatch.setattr(collector.serving, "WRITE_TIMEOUT_SECONDS", 0.2)
    server = await serve()

    async with connected(server.socket_path) as bystander:
        flooding = asyncio.create_task(
            asyncio.to_thread(flood_without_reading, server.socket_path)
        )
        answered = 0
        while not flooding.done():
            assert await bystander.ask(PING) == {"ok": True, "pong": True}
            answered += 1
            await asyncio.sleep(0.01)

        assert isinstance(await flooding, BrokenPipeError | ConnectionResetError)
        assert answered > 0
        assert uids(await bystander.ask({"op": "latest", "limit": 3})) == (
            expected_uids(3)
        )
        assert server.connections == 1


async def test_one_connection_past_the_limit_gets_too_many_connections(serve):
    server = await serve(max_connections=3)
    async with contextlib.AsyncExitStack() as stack:
        admitted = [
            await stack.enter_async_context(connected(server.socket_path))
            for _ in range(3)
        ]
        for conn in admitted:
            assert await conn.ask(PING) == {"ok": True, "pong": True}

        async with connected(server.socket_path) as extra:
            assert error_code(await extra.answer()) == "too_many_connections"
            assert await extra.closed_by_server()

        for conn in admitted:
            assert uids(await conn.ask({"op": "latest", "limit": 1})) == [uid(299)]
        assert server.rejected_connections == 1

        # A place freed is a place offered again.
        await admitted[0].close()
        await wait_until(lambda: server.connections == 2)
        async with connected(server.socket_path) as late:
            assert await late.ask(PING) == {"ok": True, "pong": True}


async def wait_until(condition, *, within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {condition}"
        await asyncio.sleep(0.01)


def ask_from_many_threads(path: str, *, clients: int, requests: int) -> list[str]:
    """Run blocking clients at once in threads; return what went wrong."""
    problems: list[str] = []
    start_together = threading.Barrier(clients, timeout=10)

    def one_client(number: int) -> None:
        try:
            with Client(path, timeout=10, connect_timeout=5) as collector:
                start_together.wait()
                for request in range(requests):
                    limit = 1 + (number * requests + request) % 40
                    namespace = (None, *NAMESPACES)[request % 4]
                    events = collector.latest(limit, namespace=namespace)
                    got = [event["uid"] for event in events]
                    if got != expected_uids(limit, namespace):
                        problems.append(f"client {number} request {request}: {got}")
        except Exception as exc:
            problems.append(f"client {number}: {exc!r}")

    threads = [threading.Thread(target=one_client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return problems


async def test_a_burst_of_refused_clients_is_one_warning(serve, caplog):
    caplog.set_level(logging.WARNING, logger="collector.serving")
    server = await serve(max_connections=1)
    async with connected(server.socket_path) as admitted:
        assert await admitted.ask(PING) == {"ok": True, "pong": True}
        for _ in range(20):
            async with connected(server.socket_path) as extra:
                assert error_code(await extra.answer()) == "too_many_connections"

    assert server.rejected_connections == 20
    refusals = [r.getMessage() for r in caplog.records if "Refused" in r.getMessage()]
    assert refusals == [
        "Refused 1 client(s): 1 connections already (logged at most every 10 s; "
        "1 refused since start)."
    ]


async def test_fifty_clients_at_once_each_get_twenty_correct_answers(serve):
    server = await serve(max_connections=64)
    problems = await asyncio.to_thread(
        ask_from_many_threads, server.socket_path, clients=50, requests=20
    )
    assert problems == []
    assert server.requests == 50 * 20
    assert server.rejected_connections == 0


def hang_up_without_reading(path: str, request: bytes) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.connect(path)
        client.sendall(request * 3)


async def test_clients_that_hang_up_unread_leave_nothing_for_the_gc(serve):
    # Each such client used to leave its unsent answer in a reference cycle that
    # only the cyclic GC frees: with GC off, nothing of theirs may be left over.
    server = await serve()
    request = json.dumps({"op": "latest", "limit": EVENT_COUNT}).encode() + b"\n"
    gc.collect()
    gc.disable()
    try:
        for _ in range(5):
            await asyncio.to_thread(
                hang_up_without_reading, server.socket_path, request
            )
        async with connected(server.socket_path) as conn:
            assert (await conn.ask({"op": "ping"}))["pong"] is True
        await wait_until(lambda: server.connections == 0)

        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        left = [thing for thing in gc.garbage if isinstance(thing, BaseException)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert left == []


async def test_pipelined_requests_are_answered_in_order(serve):
    server = await serve()
    async with connected(server.socket_path) as conn:
        await conn.send(
            PING
            + b'{"op":"latest","limit":2}\n'
            + b"{broken\n"
            + b'{"op":"stats"}\n'
            + b'{"op":"latest","limit":1,"namespace":"team-b"}\n'
            + b'{"op":"dance"}\n'
        )
        answers = [await conn.answer() for _ in range(6)]

    assert answers[0] == {"ok": True, "pong": True}
    assert uids(answers[1]) == expected_uids(2)
    assert error_code(answers[2]) == "bad_json"
    assert answers[3]["stats"]["records"] == EVENT_COUNT
    assert uids(answers[4]) == expected_uids(1, "team-b")
    assert error_code(answers[5]) == "unknown_op"


async def test_hostile_clients_leave_the_store_and_its_answers_intact(
    serve, store, monkeypatch
):
    monkeypatch.setattr(collector.serving, "WRITE_TIMEOUT_SECONDS", 0.2)
    server = await serve(max_connections=4)
    records_before, latest_before = len(store), store.latest(MAX_LIMIT)

    async with connected(server.socket_path) as conn:
        await conn.ask(b"{nope\n")
        await conn.ask({"op": "latest", "limit": -1, "since": "soon"})
        await conn.send(b"y" * (MAX_REQUEST_BYTES + 100))
        await conn.answer()
    assert await asyncio.to_thread(flood_without_reading, server.socket_path)
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(5):
            await stack.enter_async_context(connected(server.socket_path))

    assert len(store) == records_before
    assert store.latest(MAX_LIMIT) == latest_before
    async with connected(server.socket_path) as conn:
        assert uids(await conn.ask(LATEST_ALL)) == expected_uids(MAX_LIMIT)


async def test_the_socket_is_mode_0660_in_a_new_0750_directory(serve, socket_dir):
    path = socket_dir / "run" / "event-collector" / "events.sock"
    await serve(path=str(path))

    assert stat.S_ISSOCK(path.stat().st_mode)
    assert stat.S_IMODE(path.stat().st_mode) == 0o660
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o750


async def test_a_stale_socket_file_is_replaced_at_start(serve, socket_dir, caplog):
    caplog.set_level(logging.INFO, logger="collector.serving")
    path = str(socket_dir / "events.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
        dead.bind(path)
    assert stat.S_ISSOCK(os.stat(path).st_mode)

    server = await serve(path=path)

    assert stat.S_IMODE(os.stat(path).st_mode) == 0o660
    assert "Replacing a stale socket" in caplog.text
    async with connected(server.socket_path) as conn:
        assert await conn.ask(PING) == {"ok": True, "pong": True}


async def test_a_live_socket_of_another_server_makes_start_fail(serve, store):
    first = await serve()
    inode = os.stat(first.socket_path).st_ino
    second = EventServer(
        store=store, stats=dict, socket_path=first.socket_path, max_connections=4
    )

    with pytest.raises(ConfigError, match="another process is serving"):
        await second.start()

    assert os.stat(first.socket_path).st_ino == inode
    async with connected(first.socket_path) as conn:
        assert await conn.ask(PING) == {"ok": True, "pong": True}


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        pytest.param("/proc/no-such-process/events.sock", "No such file", id="no-dir"),
        pytest.param("/dev/null/events.sock", "(/dev/null)", id="file-as-dir"),
    ],
)
async def test_a_socket_path_that_cannot_be_served_is_a_config_error(
    serve, path, problem
):
    with pytest.raises(ConfigError, match=f"cannot serve on {path}") as raised:
        await serve(path=path)
    assert problem in str(raised.value)


async def test_closing_with_a_client_that_does_not_read_logs_no_error(serve, caplog):
    server = await serve()
    request = json.dumps({"op": "latest", "limit": EVENT_COUNT}).encode() + b"\n"
    hog = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    hog.connect(server.socket_path)
    hog.setblocking(False)
    try:
        with contextlib.suppress(BlockingIOError):
            for _ in range(500):
                hog.send(request)
        await wait_until(lambda: server.connections == 1)

        with caplog.at_level(logging.DEBUG):
            await server.close()
            await asyncio.sleep(0.1)
    finally:
        hog.close()

    assert server.connections == 0
    errors = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert errors == [], [record.getMessage() for record in errors]


async def test_close_removes_the_socket(serve):
    server = await serve()
    assert stat.S_ISSOCK(os.stat(server.socket_path).st_mode)

    await server.close()

    with pytest.raises(FileNotFoundError):
        os.stat(server.socket_path)


async def test_a_regular_file_at_the_socket_path_is_not_replaced(serve, socket_dir):
    path = socket_dir / "events.sock"
    path.write_text("someone's notes\n")

    with pytest.raises(ConfigError, match="not a socket"):
        await serve(path=str(path))

    assert path.read_text() == "someone's notes\n"


async def test_ping_answers_exactly_pong(serve):
    server = await serve()
    async with connected(server.socket_path) as conn:
        await conn.send(PING)
        line = await asyncio.wait_for(conn.reader.readline(), ANSWER_TIMEOUT_SECONDS)
    assert line == b'{"ok":true,"pong":true}\n'


async def test_stats_answer_has_the_documented_counters(run_collector):
    objects = [core_event(uid(i), rv=str(10 + i)) for i in range(3)]
    script = [ListStep("100", objects), WatchStep("100")]
    async with run_collector(script) as harness:
        await harness.wait_for(lambda: harness.store.synced, what="the first sync")
        answer = json.loads(await harness.raw(b'{"op":"stats"}\n'))

    assert answer["ok"] is True and set(answer) == {"ok", "stats"}
    stats = answer["stats"]
    documented = {
        "records": 3,
        "deleted": 0,
        "synced": True,
        "resource_version": "100",
        "lists": 1,
        "relists": 0,
        "last_error": None,
        "connections": 1,
        "requests": 1,
        "rejected_connections": 0,
    }
    assert {key: stats.get(key) for key in documented} == documented
    assert isinstance(stats["uptime_seconds"], int | float)


async def test_the_socat_example_answers_one_json_line(serve):
    assert shutil.which("socat"), "socat is not installed; scripts/setup installs it"
    server = await serve()
    command = (
        """echo '{"op":"latest","limit":3}' | socat - UNIX-CONNECT:"""
        + shlex.quote(server.socket_path)
    )

    process = await asyncio.create_subprocess_shell(
        command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 10)

    assert process.returncode == 0, stderr
    assert stdout.count(b"\n") == 1 and stdout.endswith(b"\n")
    answer = json.loads(stdout)
    assert answer["ok"] is True and answer["synced"] is True
    assert uids(answer) == expected_uids(3)


async def test_a_kept_client_survives_a_collector_restart(socket_dir):
    path = str(socket_dir / "restart.sock")
    store = EventStore(max_records=10, retention_seconds=60)

    def serve() -> EventServer:
        return EventServer(store=store, stats=dict, socket_path=path, max_connections=4)

    first = serve()
    await first.start()
    kept = Client(path)
    try:
        await asyncio.to_thread(kept.ping)
        await first.close()
        second = serve()
        await second.start()
        try:
            # The kept connection is dead; the call must reconnect, not fail.
            await asyncio.to_thread(kept.ping)
        finally:
            await second.close()
    finally:
        kept.close()


async def test_an_idle_or_half_sent_connection_is_closed_after_the_idle_timeout(
    socket_dir, monkeypatch
):
    monkeypatch.setattr(collector.serving, "IDLE_TIMEOUT_SECONDS", 0.2)
    path = str(socket_dir / "idle.sock")
    store = EventStore(max_records=10, retention_seconds=60)
    server = EventServer(store=store, stats=dict, socket_path=path, max_connections=2)
    await server.start()
    try:
        idle_reader, idle_writer = await asyncio.open_unix_connection(path)
        half_reader, half_writer = await asyncio.open_unix_connection(path)
        half_writer.write(b'{"op": "pi')
        await half_writer.drain()

        async with asyncio.timeout(5):
            assert await idle_reader.read() == b""
            assert await half_reader.read() == b""

        # The slots are free again: a new client is served, not refused.
        def ping() -> dict:
            with Client(path) as fresh:
                return fresh.request({"op": "ping"})

        assert await asyncio.to_thread(ping) == {"ok": True, "pong": True}
        for writer in (idle_writer, half_writer):
            writer.close()
            await writer.wait_closed()
    finally:
        await server.close()
