"""
Read the latest Kubernetes events from a running event-collector.

The one-liner, for a Django view::

    import client

    events = client.latest(100)            # newest first
    events = client.latest(20, namespace="shop", type="Warning")

A ``Client`` keeps one connection for repeated calls and is a context manager.
Everything here is the standard library: importing it never pulls in the
collector's Kubernetes dependencies. Every call has a timeout, and every failure
is a ``CollectorError`` (see ``client.errors``).
"""

from __future__ import annotations

import datetime
import enum
import json
import socket
import time
from typing import Any, TypedDict

from client.errors import (
    CollectorError,
    CollectorTimeout,
    CollectorUnavailable,
    ProtocolError,
    RequestError,
)
from client.protocol import DEFAULT_LIMIT, ErrorCode, default_socket_path

__all__ = [
    "Client",
    "CollectorError",
    "CollectorTimeout",
    "CollectorUnavailable",
    "EventList",
    "EventRecord",
    "ProtocolError",
    "RequestError",
    "latest",
]

DEFAULT_CONNECT_TIMEOUT = 0.5
DEFAULT_TIMEOUT = 3.0
# The socket layer cannot wait longer than this; no call should come near it.
MAX_TIMEOUT = 86400.0

# A reply of MAX_LIMIT events with long messages fits easily; a reply past this
# is a runaway, and buffering it would hurt the web process more than failing.
DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024

_READ_CHUNK_BYTES = 256 * 1024

# After these the collector hangs up, so the connection is of no further use.
_CLOSING_CODES = frozenset({ErrorCode.LINE_TOO_LONG, ErrorCode.TOO_MANY_CONNECTIONS})


class InvolvedObject(TypedDict):
    """The object an event is about."""

    kind: str
    namespace: str
    name: str
    uid: str
    api_version: str
    field_path: str


class EventSource(TypedDict):
    """Who reported the event: a component and its host or instance."""

    component: str
    host: str


class EventRecord(TypedDict):
    """One event as the collector keeps it: one record per event object."""

    namespace: str
    name: str
    uid: str
    type: str
    reason: str
    message: str
    action: str
    object: InvolvedObject
    source: EventSource
    first_seen: str
    last_seen: str
    count: int
    resource_version: str
    deleted: bool


class EventList(list[EventRecord]):
    """
    The events of one ``latest`` call, newest first.

    ``synced`` is false while the collector has not yet listed the cluster (or is
    listing it again), so an empty list can be told from "not ready yet".
    """

    synced: bool

    def __init__(self, events: list[EventRecord], *, synced: bool) -> None:
        super().__init__(events)
        self.synced = synced


class _State(enum.Enum):
    UNOPENED = "unopened"
    OPEN = "open"
    CLOSED = "closed"


class Client:
    """
    A connection to the collector, opened on first use and reused after.

    A call that fails mid-way drops the connection, and the next call opens a
    fresh one, so one timeout never leaves a half-read answer behind.
    """

    def __init__(
        self,
        socket_path: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        self.socket_path = socket_path or default_socket_path()
        self.timeout = _check_seconds("timeout", timeout)
        self.connect_timeout = _check_seconds("connect_timeout", connect_timeout)
        self.max_response_bytes = max_response_bytes
        self._state = _State.UNOPENED
        self._sock: socket.socket | None = None
        self._buffer = bytearray()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection; safe to call more than once."""
        self._drop()
        self._state = _State.CLOSED

    def latest(
        self,
        limit: int = DEFAULT_LIMIT,
        *,
        namespace: str | None = None,
        type: str | None = None,
        reason: str | None = None,
        kind: str | None = None,
        name: str | None = None,
        since: datetime.datetime | str | None = None,
    ) -> EventList:
        """
        Return up to ``limit`` events, newest first, one record per event.

        Filters match exactly; ``kind`` and ``name`` are the involved object's;
        ``since`` keeps events last seen at or after it (an aware datetime or an
        RFC 3339 string).
        """
        request: dict[str, Any] = {"op": "latest", "limit": limit}
        filters = {
            "namespace": namespace,
            "type": type,
            "reason": reason,
            "kind": kind,
            "name": name,
            "since": _format_since(since),
        }
        request.update((key, value) for key, value in filters.items() if value)

        response = self.request(request)
        events = response.get("events")
        if not isinstance(events, list) or not all(
            isinstance(event, dict) for event in events
        ):
            raise ProtocolError("a latest answer without a list of event records")
        synced = response.get("synced")
        if not isinstance(synced, bool):
            raise ProtocolError("a latest answer without its synced flag")
        return EventList(events, synced=synced)

    def stats(self) -> dict[str, Any]:
        """Return the collector's counters: records, sync state, relists, errors."""
        stats = self.request({"op": "stats"}).get("stats")
        if not isinstance(stats, dict):
            raise ProtocolError("a stats answer without stats")
        return stats

    def ping(self) -> None:
        """Check that the collector answers; raise a ``CollectorError`` if not."""
        self.request({"op": "ping"})

    def request(self, request: dict[str, Any]) -> dict[str, Any]:
        """Send one request and return its successful response object."""
        if self._state is _State.CLOSED:
            raise CollectorError("the client is closed")

        payload = json.dumps(request).encode() + b"\n"
        reused = self._sock is not None
        try:
            line = self._exchange(payload)
        except CollectorUnavailable:
            self._drop()
            if not reused:
                raise
            # A kept connection may have been closed by a collector restart since
            # the last call. Every request only reads, so asking again on a fresh
            # connection is safe; a second failure is the real answer.
            try:
                line = self._exchange(payload)
            except BaseException:
                self._drop()
                raise
        except BaseException:
            self._drop()
            raise

        try:
            response = json.loads(line)
        except ValueError as exc:
            self._drop()
            raise ProtocolError(f"the answer is not JSON: {exc}") from exc
        if not isinstance(response, dict) or not isinstance(response.get("ok"), bool):
            self._drop()
            raise ProtocolError("the answer is not a response object")
        if not response["ok"]:
            error = response.get("error")
            if not (
                isinstance(error, dict)
                and isinstance(error.get("code"), str)
                and isinstance(error.get("message"), str)
            ):
                self._drop()
                raise ProtocolError("an error answer without an error code and message")
            if error["code"] in _CLOSING_CODES:
                self._drop()
            raise RequestError(error["code"], error["message"])
        return response

    def _exchange(self, payload: bytes) -> bytes:
        sock = self._connect()
        try:
            sock.settimeout(self.timeout)
            sock.sendall(payload)
            return self._read_line(sock)
        except TimeoutError as exc:
            raise CollectorTimeout(
                f"no answer from {self.socket_path} within {self.timeout} s"
            ) from exc
        except OSError as exc:
            raise CollectorUnavailable(
                f"lost the connection to {self.socket_path}: {exc}"
            ) from exc

    def _connect(self) -> socket.socket:
        if self._sock is not None:
            return self._sock

        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.connect_timeout)
        try:
            sock.connect(self.socket_path)
        except TimeoutError as exc:
            sock.close()
            raise CollectorTimeout(
                f"could not connect to {self.socket_path} within "
                f"{self.connect_timeout} s"
            ) from exc
        except OSError as exc:
            sock.close()
            raise CollectorUnavailable(
                f"the collector is not reachable at {self.socket_path}: {exc}"
            ) from exc

        self._sock = sock
        self._state = _State.OPEN
        return sock

    def _read_line(self, sock: socket.socket) -> bytes:
        # The timeout bounds each recv; a peer trickling bytes could stretch a
        # call, so the running total is checked against a deadline as well.
        deadline = time.monotonic() + self.timeout
        start = 0
        while True:
            end = self._buffer.find(b"\n", start)
            if end >= 0:
                line = bytes(self._buffer[:end])
                del self._buffer[: end + 1]
                return line

            start = len(self._buffer)
            if start > self.max_response_bytes:
                raise ProtocolError(
                    f"the answer is longer than {self.max_response_bytes} bytes"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("deadline")
            sock.settimeout(remaining)
            chunk = sock.recv(_READ_CHUNK_BYTES)
            if not chunk:
                raise CollectorUnavailable(
                    f"the collector at {self.socket_path} closed the connection"
                )
            self._buffer += chunk

    def _drop(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self._buffer.clear()


def latest(
    limit: int = DEFAULT_LIMIT,
    *,
    socket_path: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    **filters: Any,
) -> EventList:
    """
    Return the latest ``limit`` events, newest first, over a one-off connection.

    Takes the filters of ``Client.latest``. The socket path comes from the
    argument, else ``$EVENT_COLLECTOR_SOCKET``, else the documented default.
    """
    with Client(socket_path, timeout=timeout) as collector:
        return collector.latest(limit, **filters)


def _check_seconds(name: str, value: float) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not 0 < value <= MAX_TIMEOUT
    ):
        raise ValueError(
            f"{name} must be a number of seconds, over 0 and at most {MAX_TIMEOUT:.0f}"
        )
    return float(value)


def _format_since(since: datetime.datetime | str | None) -> str | None:
    if since is None or isinstance(since, str):
        return since
    if not isinstance(since, datetime.datetime):
        raise TypeError("since must be an aware datetime or an RFC 3339 string")
    if since.tzinfo is None:
        raise ValueError("since must be an aware datetime (or an RFC 3339 string)")
    return since.astimezone(datetime.timezone.utc).isoformat().replace("+00:00", "Z")
