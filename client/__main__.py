"""
The client's command line: ``python -m client latest|stats|ping``.

It is for a person at a terminal, so ``latest`` prints the table of ``kubectl
get events -A`` (and of ``-o wide``), with ages worked out the way kubectl does,
and every failure is one line on stderr with an exit code, never a traceback.
Like the rest of ``client`` it needs only the standard library of Python 3.10.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import sys
from collections.abc import Sequence

from client import DEFAULT_TIMEOUT, MAX_TIMEOUT, Client, EventRecord
from client.errors import CollectorError, ProtocolError
from client.protocol import (
    DEFAULT_LIMIT,
    DEFAULT_SOCKET_PATH,
    LATEST_FILTERS,
    MAX_LIMIT,
    SOCKET_PATH_ENV,
    parse_rfc3339,
)

EXIT_OK = 0
EXIT_FAILED = 1  # usage errors exit 2, from argparse

DELETED_MARK = " (deleted)"
NOT_SYNCED_NOTE = "note: collector not yet synced; list may be incomplete"

COLUMNS = ["NAMESPACE", "LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
# kubectl's -o wide puts the extra columns around MESSAGE, not after it.
WIDE_COLUMNS = [
    *COLUMNS[:5],
    *("SUBOBJECT", "SOURCE", "MESSAGE", "FIRST SEEN", "COUNT", "NAME"),
]
_COLUMN_GAP = "   "  # kubectl's tabwriter pads columns with three spaces

_LINE_BREAKS = re.compile(r"\s*[\r\n]+\s*")

_EPILOG = f"""\
socket: --socket, else ${SOCKET_PATH_ENV}, else {DEFAULT_SOCKET_PATH}.

latest prints the columns of `kubectl get events -A`, newest first; --wide adds
those of `-o wide`. LAST SEEN and FIRST SEEN are ages as kubectl shows them
(5s, 3m2s, 4h, 2d). An event the cluster has already deleted (its TTL ran out)
is still listed, with "(deleted)" after its LAST SEEN. Messages are trimmed and
their line breaks joined, so each event is one line. --json prints one JSON
array of the collector's records instead (stats --json: one object). A note on
stderr says when the collector has not finished listing the cluster yet.

exit codes: 0 ok, 1 collector unavailable, timed out or refused the request,
2 usage."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command and return the process exit code."""
    args = _parser().parse_args(argv)
    collector = Client(args.socket, timeout=args.timeout, connect_timeout=args.timeout)
    try:
        with collector:
            return int(args.command(collector, args))
    except CollectorError as exc:
        message = str(exc)
        if collector.socket_path not in message:
            message = f"{message} (collector at {collector.socket_path})"
        print(f"error: {message}", file=sys.stderr)
        return EXIT_FAILED
    except BrokenPipeError:
        # The reader (head, less) left early; say nothing more to a closed pipe.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


def run_latest(collector: Client, args: argparse.Namespace) -> int:
    """Print the latest events as a table or as JSON."""
    filters = {name: getattr(args, name) for name in LATEST_FILTERS}
    events = collector.latest(args.limit, **filters)
    if not events.synced:
        print(NOT_SYNCED_NOTE, file=sys.stderr)

    if args.json:
        print(json.dumps(events, indent=2, ensure_ascii=False))
    elif events:
        now = datetime.datetime.now(datetime.timezone.utc)
        try:
            lines = render_table(events, wide=args.wide, now=now)
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise ProtocolError(f"a record the table cannot show: {exc!r}") from exc
        print("\n".join(lines))
    else:
        print("No events found.", file=sys.stderr)
    return EXIT_OK


def run_stats(collector: Client, args: argparse.Namespace) -> int:
    """Print the collector's counters, one ``key: value`` per line."""
    stats = collector.stats()
    if args.json:
        print(json.dumps(stats, indent=2))
    else:
        for key, value in stats.items():
            print(f"{key}: {value if isinstance(value, str) else json.dumps(value)}")
    return EXIT_OK


def run_ping(collector: Client, args: argparse.Namespace) -> int:
    """Print "ok" when the collector answers."""
    collector.ping()
    print("ok")
    return EXIT_OK


def render_table(
    events: Sequence[EventRecord], *, wide: bool, now: datetime.datetime
) -> list[str]:
    """Return the lines of an aligned table: the header, then one per event."""
    rows = [WIDE_COLUMNS if wide else COLUMNS]
    rows += [_row(event, wide=wide, now=now) for event in events]
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        lines.append(_COLUMN_GAP.join(cells).rstrip())
    return lines


def human_age(since: str, *, now: datetime.datetime) -> str:
    """Return the age of an RFC 3339 time the way kubectl shows it."""
    try:
        moment = parse_rfc3339(since)
    except ValueError:
        return "<unknown>"
    seconds = int((now - moment).total_seconds())
    if seconds < -1:
        return "<invalid>"
    return human_duration(max(seconds, 0))


def human_duration(seconds: int) -> str:
    """Return a duration as kubectl does: exact when short, coarser as it grows."""
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if seconds < 120:
        return f"{seconds}s"
    if minutes < 10:
        return _pair(minutes, "m", seconds % 60, "s")
    if minutes < 180:
        return f"{minutes}m"
    if hours < 8:
        return _pair(hours, "h", minutes % 60, "m")
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return _pair(days, "d", hours % 24, "h")
    if hours < 24 * 365 * 2:
        return f"{days}d"
    if hours < 24 * 365 * 8:
        return _pair(days // 365, "y", days % 365, "d")
    return f"{days // 365}y"


def _row(event: EventRecord, *, wide: bool, now: datetime.datetime) -> list[str]:
    involved = event["object"]
    target = involved["kind"].lower()
    if involved["name"]:
        target += "/" + involved["name"]
    last_seen = human_age(event["last_seen"], now=now)
    if event["deleted"]:
        last_seen += DELETED_MARK
    message = _LINE_BREAKS.sub(" ", event["message"].strip())

    row = [event["namespace"], last_seen, event["type"], event["reason"], target]
    if not wide:
        return [*row, message]
    source = event["source"]
    origin = ", ".join(part for part in (source["component"], source["host"]) if part)
    first_seen = human_age(event["first_seen"], now=now)
    extra = [str(event["count"]), event["name"]]
    return [*row, involved["field_path"], origin, message, first_seen, *extra]


def _pair(big: int, big_unit: str, small: int, small_unit: str) -> str:
    return f"{big}{big_unit}{small}{small_unit}" if small else f"{big}{big_unit}"


def _limit(value: str) -> int:
    number = int(value) if value.isdigit() else 0
    if not 1 <= number <= MAX_LIMIT:
        raise argparse.ArgumentTypeError(f"must be from 1 to {MAX_LIMIT}")
    return number


def _seconds(value: str) -> float:
    number = float(value) if value.replace(".", "", 1).isdigit() else 0.0
    if not 0 < number <= MAX_TIMEOUT:
        raise argparse.ArgumentTypeError(
            f"must be more than 0 seconds and at most {MAX_TIMEOUT:.0f}"
        )
    return number


def _since(value: str) -> datetime.datetime:
    try:
        return parse_rfc3339(value.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            "not an RFC 3339 time like 2026-05-01T10:00:00Z"
        ) from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m client",
        description="Ask a running event-collector for the latest Kubernetes events.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(title="commands", required=True, metavar="CMD")
    for command, what in (
        (run_latest, "the latest events, newest first"),
        (run_stats, "the collector's counters"),
        (run_ping, 'print "ok" if the collector answers'),
    ):
        sub = commands.add_parser(
            command.__name__.removeprefix("run_"),
            help=what,
            epilog=_EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        sub.set_defaults(command=command)
        sub.add_argument("--socket", help="the collector's Unix socket (see below)")
        sub.add_argument(
            "--timeout",
            type=_seconds,
            default=DEFAULT_TIMEOUT,
            help=f"seconds to wait for an answer (default {DEFAULT_TIMEOUT})",
        )
        if command is not run_ping:
            sub.add_argument("--json", action="store_true", help="print JSON instead")
    _add_latest_arguments(commands.choices["latest"])
    return parser


def _add_latest_arguments(latest: argparse.ArgumentParser) -> None:
    latest.add_argument(
        "limit",
        nargs="?",
        type=_limit,
        default=DEFAULT_LIMIT,
        metavar="N",
        help=f"how many events, 1 to {MAX_LIMIT} (default {DEFAULT_LIMIT})",
    )
    for flag, what in (
        ("--namespace", "events in this namespace"),
        ("--type", "events of this type: Normal or Warning"),
        ("--reason", "events with this reason, e.g. BackOff"),
        ("--kind", "events about objects of this kind, e.g. Pod"),
        ("--name", "events about objects of this name"),
    ):
        latest.add_argument(flag, metavar=flag[2:].upper(), help=f"only {what}")
    latest.add_argument(
        "--since", type=_since, help="only events last seen at or after this time"
    )
    latest.add_argument("--wide", action="store_true", help="the -o wide columns too")


if __name__ == "__main__":
    sys.exit(main())
