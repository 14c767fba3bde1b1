"""
The Unix-socket server that answers the protocol of ``client.protocol``.

Each connection is its own task, so one slow or hostile client only ever stalls
itself: a line past the limit, a client that never reads its answers, or one
connection too many each get an error line (where one can be sent) and a
closed connection. A ``latest`` answer is joined from bytes the store prepared
at ingest; nothing is parsed or sorted per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import stat
import time
from collections.abc import Callable
from typing import Any

import orjson

from client.protocol import (
    DEFAULT_LIMIT,
    LATEST_FILTERS,
    MAX_LIMIT,
    MAX_REQUEST_BYTES,
    ErrorCode,
    parse_rfc3339,
)
from collector.errors import ConfigError
from collector.record import epoch_microseconds
from collector.store import EventStore

logger = logging.getLogger(__name__)

# A client that has not taken its answer within this time is not reading.
WRITE_TIMEOUT_SECONDS = 5.0
# Shutdown lets requests in flight finish for at most this long.
SHUTDOWN_GRACE_SECONDS = 2.0
# A connection that sends no complete request for this long is closed, so idle
# or half-sent connections cannot hold the --max-connections slots for ever.
# Clients that keep a connection reconnect on their next call.
IDLE_TIMEOUT_SECONDS = 300.0
# A burst of refused clients is one warning, not one a client.
REFUSAL_LOG_INTERVAL_SECONDS = 10.0

_PONG = b'{"ok":true,"pong":true}\n'


class BadRequest(Exception):
    """A request the server answers with an error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def error_line(code: str, message: str) -> bytes:
    """Return the protocol's error response as one line."""
    return (
        orjson.dumps({"ok": False, "error": {"code": code, "message": message}}) + b"\n"
    )


class EventServer:
    """Serve the store over a Unix socket until ``close``."""

    def __init__(
        self,
        *,
        store: EventStore,
        stats: Callable[[], dict[str, Any]],
        socket_path: str,
        max_connections: int,
    ) -> None:
        self.store = store
        self.stats = stats
        self.socket_path = socket_path
        self.max_connections = max_connections
        self.requests = 0
        self.rejected_connections = 0
        self._refusals_logged = 0
        self._refusal_logged_at = -REFUSAL_LOG_INTERVAL_SECONDS
        self._server: asyncio.Server | None = None
        # Each connection's task, with its reader and writer: shutdown ends an
        # idle read through the one and a client that does not read through the other.
        self._connections: dict[
            asyncio.Task[None], tuple[asyncio.StreamReader, asyncio.StreamWriter]
        ] = {}
        self._socket_inode = 0

    @property
    def connections(self) -> int:
        """The number of clients connected now."""
        return len(self._connections)

    async def start(self) -> None:
        """Bind the socket (replacing a stale one) and start accepting."""
        try:
            _prepare_socket_path(self.socket_path)

            # The umask makes the socket 0660 from its first instant, not after a
            # chmod.
            old_umask = os.umask(0o117)
            try:
                self._server = await asyncio.start_unix_server(
                    self._accept, path=self.socket_path, limit=MAX_REQUEST_BYTES
                )
            finally:
                os.umask(old_umask)
            os.chmod(self.socket_path, 0o660)
            self._socket_inode = os.stat(self.socket_path).st_ino
        except OSError as exc:
            where = (
                f" ({exc.filename})"
                if exc.filename not in (None, self.socket_path)
                else ""
            )
            raise ConfigError(
                f"cannot serve on {self.socket_path}: {exc.strerror or exc}{where}"
            ) from exc

    async def close(self) -> None:
        """Stop accepting, let requests in flight finish briefly, then cut the rest."""
        if self._server is not None:
            self._server.close()
        self._remove_socket()

        if self._connections:
            # An end of input lets every connection answer what it has already
            # received and then finish; only a client that will not take its
            # answers is still there when the grace period ends.
            for reader, _ in self._connections.values():
                reader.feed_eof()
            _, pending = await asyncio.wait(
                set(self._connections), timeout=SHUTDOWN_GRACE_SECONDS
            )
            # NB: cancelling a connection's task makes asyncio log the
            # CancelledError of its done-callback as an error. Aborting the
            # transport ends the task the way a client hanging up does.
            for task in pending:
                if task in self._connections:
                    self._connections[task][1].transport.abort()
            if pending:
                _, pending = await asyncio.wait(pending, timeout=SHUTDOWN_GRACE_SECONDS)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _accept(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        if len(self._connections) >= self.max_connections:
            self.rejected_connections += 1
            self._log_refusals()
            message = f"the collector serves at most {self.max_connections} clients"
            writer.write(error_line(ErrorCode.TOO_MANY_CONNECTIONS, message))
            await _close(writer)
            return

        self._connections[task] = (reader, writer)
        try:
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            logger.debug("A client went away: %r", exc)
        finally:
            self._connections.pop(task, None)
            await _close(writer)
            _drop_traceback(reader)

    def _log_refusals(self) -> None:
        now = time.monotonic()
        if now - self._refusal_logged_at < REFUSAL_LOG_INTERVAL_SECONDS:
            return
        logger.warning(
            "Refused %d client(s): %d connections already (logged at most every "
            "%.0f s; %d refused since start).",
            self.rejected_connections - self._refusals_logged,
            self.max_connections,
            REFUSAL_LOG_INTERVAL_SECONDS,
            self.rejected_connections,
        )
        self._refusals_logged = self.rejected_connections
        self._refusal_logged_at = now

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        while True:
            try:
                async with asyncio.timeout(IDLE_TIMEOUT_SECONDS):
                    line = await reader.readline()
            except TimeoutError:
                logger.debug("Closed a client idle for %.0f s.", IDLE_TIMEOUT_SECONDS)
                return
            except ValueError:
                # StreamReader's limit: the line is longer than any request can be.
                message = f"a request line is at most {MAX_REQUEST_BYTES} bytes"
                writer.write(error_line(ErrorCode.LINE_TOO_LONG, message))
                await self._drain(writer)
                return
            if not line:
                return

            self.requests += 1
            writer.write(self.answer(line))
            if not await self._drain(writer):
                return

    async def _drain(self, writer: asyncio.StreamWriter) -> bool:
        try:
            await asyncio.wait_for(writer.drain(), WRITE_TIMEOUT_SECONDS)
        except TimeoutError:
            logger.warning(
                "Closed a client that read nothing for %.0f s.", WRITE_TIMEOUT_SECONDS
            )
            # NB: close() would wait, with the socket open, for the unread answers
            # to flush; abort() drops them and frees the connection now.
            writer.transport.abort()
            return False
        return True

    def answer(self, line: bytes) -> bytes:
        """Return the response line for one request line."""
        try:
            request = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            return error_line(ErrorCode.BAD_JSON, f"the request is not JSON: {exc}")

        try:
            if not isinstance(request, dict):
                raise BadRequest(ErrorCode.BAD_REQUEST, "a request is a JSON object")
            op = request.get("op")
            if op == "latest":
                return self._latest(request)
            if op == "stats":
                return orjson.dumps({"ok": True, "stats": self.stats()}) + b"\n"
            if op == "ping":
                return _PONG
            if op is None:
                raise BadRequest(ErrorCode.BAD_REQUEST, 'a request needs an "op"')
            raise BadRequest(
                ErrorCode.UNKNOWN_OP, f"unknown op {op!r}; try latest, stats or ping"
            )
        except BadRequest as exc:
            return error_line(exc.code, exc.message)

    def _latest(self, request: dict[str, Any]) -> bytes:
        unknown = set(request) - {"op", "limit", *LATEST_FILTERS}
        if unknown:
            raise BadRequest(
                ErrorCode.BAD_ARGUMENT,
                f"unknown argument {sorted(unknown)[0]!r}; latest takes limit and "
                + ", ".join(LATEST_FILTERS),
            )

        limit = request.get("limit", DEFAULT_LIMIT)
        if (
            isinstance(limit, bool)
            or not isinstance(limit, int)
            or not 1 <= limit <= MAX_LIMIT
        ):
            raise BadRequest(
                ErrorCode.BAD_ARGUMENT,
                f"limit must be an integer from 1 to {MAX_LIMIT}",
            )
        filters: dict[str, Any] = {}
        for name in ("namespace", "type", "reason", "kind", "name"):
            value = request.get(name)
            if value is not None and not isinstance(value, str):
                raise BadRequest(ErrorCode.BAD_ARGUMENT, f"{name} must be a string")
            filters[name] = value or None
        since = request.get("since")
        if since is not None:
            filters["since_us"] = _parse_since(since)

        docs = self.store.latest(limit, **filters)
        synced = b"true" if self.store.synced else b"false"
        return (
            b'{"ok":true,"synced":'
            + synced
            + b',"events":['
            + b",".join(docs)
            + b"]}\n"
        )

    def _remove_socket(self) -> None:
        # Remove only our own socket: a newer collector may have replaced it.
        with contextlib.suppress(FileNotFoundError):
            if os.stat(self.socket_path).st_ino == self._socket_inode:
                os.unlink(self.socket_path)


def _parse_since(since: object) -> int:
    if not isinstance(since, str):
        raise BadRequest(ErrorCode.BAD_ARGUMENT, "since must be an RFC 3339 string")
    try:
        return epoch_microseconds(parse_rfc3339(since))
    except ValueError:
        shown = since if len(since) <= 64 else since[:64] + "..."
        raise BadRequest(
            ErrorCode.BAD_ARGUMENT,
            f"since is not an RFC 3339 time such as 2026-05-01T10:00:00Z: {shown!r}",
        ) from None


def _prepare_socket_path(path: str) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, mode=0o750, exist_ok=True)

    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise ConfigError(f"{path} exists and is not a socket; not replacing it")
    if _is_served(path):
        raise ConfigError(f"another process is serving on {path}")
    logger.info("Replacing a stale socket at %s.", path)
    os.unlink(path)


def _is_served(path: str) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(path)
    except OSError:
        return False
    finally:
        probe.close()
    return True


def _drop_traceback(reader: asyncio.StreamReader) -> None:
    # NB: a client that hangs up before reading its answer leaves the failed
    # write's exception in the reader, and that exception's traceback holds the
    # frames that hold the unsent answer (up to megabytes) and the reader itself.
    # Only the cyclic GC frees such a cycle, and large bytes never prompt a
    # collection: memory grew by the answer size for every such client.
    error = reader.exception()
    if error is not None:
        error.__traceback__ = None


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(ConnectionError, TimeoutError):
        await asyncio.wait_for(writer.wait_closed(), 1.0)
