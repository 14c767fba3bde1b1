"""
The wire protocol between the collector and its clients.

Newline-delimited JSON over a Unix stream socket, UTF-8: one request object per
line, one response object per line, answered in order. A person can drive it
with ``socat``::

    echo '{"op":"latest","limit":5}' | socat - UNIX-CONNECT:/run/event-collector/events.sock

Requests carry ``op`` and its arguments:

- ``{"op": "latest", "limit": 100, ...filters}``: the newest events first.
  Filters: ``namespace``, ``type``, ``reason``, ``kind`` and ``name`` (of the
  involved object, exact match) and ``since`` (RFC 3339; only events last seen
  at or after it). Answer: ``{"ok": true, "synced": bool, "events": [...]}``.
- ``{"op": "stats"}``: ``{"ok": true, "stats": {...}}``.
- ``{"op": "ping"}``: ``{"ok": true, "pong": true}``.

A failure is ``{"ok": false, "error": {"code": CODE, "message": TEXT}}`` with a
code from ``ErrorCode``. The collector imports this module too, so the limits and
codes below are the single source of truth for both sides.
"""

from __future__ import annotations

import datetime
import os
import re

DEFAULT_SOCKET_PATH = "/run/event-collector/events.sock"
SOCKET_PATH_ENV = "EVENT_COLLECTOR_SOCKET"

# The longest request line the collector reads; a request is a few dozen bytes,
# so anything near this is a mistake or an attack, not a query.
MAX_REQUEST_BYTES = 64 * 1024

DEFAULT_LIMIT = 100
MAX_LIMIT = 5000

OPS = ("latest", "stats", "ping")
LATEST_FILTERS = ("namespace", "type", "reason", "kind", "name", "since")


class ErrorCode:
    """The stable error codes of failed requests."""

    BAD_JSON = "bad_json"
    BAD_REQUEST = "bad_request"
    UNKNOWN_OP = "unknown_op"
    BAD_ARGUMENT = "bad_argument"
    LINE_TOO_LONG = "line_too_long"
    TOO_MANY_CONNECTIONS = "too_many_connections"


def default_socket_path() -> str:
    """Return the socket path from the environment, or the documented default."""
    return os.environ.get(SOCKET_PATH_ENV) or DEFAULT_SOCKET_PATH


# RFC 3339's date-time: a full date, "T" (or, as its section 5.6 allows, "t" or a
# space), a full time with an optional fraction, and "Z", "z" or a numeric offset.
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    r"(?:[Zz]|([+-])(\d{2}):(\d{2}))"
)


def parse_rfc3339(value: str) -> datetime.datetime:
    """
    Return the aware datetime of an RFC 3339 date-time, as ``since`` takes it.

    Stricter than ``datetime.fromisoformat``, which also takes dates alone,
    week dates and times without an offset, and bounded, since the collector
    parses what clients send: the fraction is at most nine digits (nanoseconds)
    and kept to six. A leap second (:60) counts as the last microsecond of its
    minute. Raises ``ValueError`` for anything else.
    """
    match = _RFC3339.fullmatch(value)
    if match is None:
        raise ValueError(f"not an RFC 3339 date-time: {value[:64]!r}")
    year, month, day, hour, minute, second = (int(part) for part in match.groups()[:6])
    fraction, sign, offset_hours, offset_minutes = match.groups()[6:]

    microsecond = int((fraction or "0").ljust(6, "0")[:6])
    if second == 60:
        second, microsecond = 59, 999_999
    offset = datetime.timedelta(
        hours=int(offset_hours or 0), minutes=int(offset_minutes or 0)
    )
    try:
        zone = datetime.timezone(-offset if sign == "-" else offset)
        return datetime.datetime(
            year, month, day, hour, minute, second, microsecond, zone
        )
    except ValueError as exc:
        raise ValueError(f"not an RFC 3339 date-time: {value!r} ({exc})") from None
