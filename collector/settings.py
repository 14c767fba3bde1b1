"""
The collector's settings: command-line flags with environment-variable twins.

Read once, at start. Every flag has a twin ``EVENT_COLLECTOR_<FLAG>`` (the
kubeconfig also honours ``KUBECONFIG``); a flag on the command line wins.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from client.protocol import DEFAULT_SOCKET_PATH

MIN_WATCH_TIMEOUT_SECONDS = 5
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("text", "json")
# sun_path holds 108 bytes on Linux, the terminating NUL included.
MAX_SOCKET_PATH_BYTES = 107

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything the collector is told at start."""

    kubeconfig: str | None
    """Kubeconfig path; None means the in-cluster service account."""

    context: str | None
    """Kubeconfig context; None means its current-context."""

    namespace: str
    """One namespace to watch, or "" for all (the RBAC a single namespace needs
    is a Role; all namespaces need a ClusterRole)."""

    socket_path: str
    """Where clients connect; the directory is created if missing."""

    retention_seconds: float
    """How long records stay after the cluster deleted them (its TTL is 1 h)."""

    max_events: int
    """Records kept at most; the oldest go first. Bounds memory."""

    max_connections: int
    """Clients served at once; one more gets an error line and is closed."""

    page_size: int
    """Events per list page."""

    watch_timeout: int
    """Seconds after which the API server ends each watch and we resume."""

    log_level: str
    log_format: str


def parse_settings(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Parse flags over their environment twins; exit 2 with usage on bad input."""
    env = os.environ if environ is None else environ
    parser = _parser(env)
    args = parser.parse_args(argv)
    if args.max_events < 1 or args.max_connections < 1 or args.page_size < 1:
        parser.error("--max-events, --max-connections and --page-size must be positive")
    # argparse checks choices on the command line only, not on the defaults
    # that come from the environment twins.
    if args.log_level not in LOG_LEVELS:
        parser.error(f"--log-level must be one of {', '.join(LOG_LEVELS)}")
    if args.log_format not in LOG_FORMATS:
        parser.error(f"--log-format must be one of {', '.join(LOG_FORMATS)}")
    if not args.socket:
        parser.error("--socket must not be empty")
    if len(os.fsencode(args.socket)) > MAX_SOCKET_PATH_BYTES:
        parser.error(
            f"--socket is {len(os.fsencode(args.socket))} bytes long; a Unix socket "
            f"path holds at most {MAX_SOCKET_PATH_BYTES}"
        )
    if args.watch_timeout < MIN_WATCH_TIMEOUT_SECONDS:
        # Shorter watches end before the stale-close detection can tell a normal
        # end from a refusal, and every one would count as a refusal.
        parser.error(
            f"--watch-timeout must be at least {MIN_WATCH_TIMEOUT_SECONDS} seconds"
        )

    kubeconfig = args.kubeconfig or None
    if kubeconfig is None and not env.get("KUBERNETES_SERVICE_HOST"):
        # Outside a pod there is no service account: fall back to kubectl's default.
        default = os.path.expanduser("~/.kube/config")
        if os.path.exists(default):
            kubeconfig = default

    return Settings(
        kubeconfig=kubeconfig,
        context=args.context or None,
        namespace=args.namespace,
        socket_path=args.socket,
        retention_seconds=args.retention,
        max_events=args.max_events,
        max_connections=args.max_connections,
        page_size=args.page_size,
        watch_timeout=args.watch_timeout,
        log_level=args.log_level.upper(),
        log_format=args.log_format,
    )


def parse_duration(value: str) -> float:
    """Parse "90", "90s", "30m", "6h" or "2d" into seconds."""
    match = _DURATION.match(value)
    if not match:
        raise argparse.ArgumentTypeError(
            f"not a duration: {value!r} (try 90s, 30m, 6h)"
        )
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Show defaults, except where the help already says what "unset" means."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.help and "(default:" in action.help:
            return action.help
        return super()._get_help_string(action)


def _parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    def twin(flag: str, default: str) -> str:
        return env.get("EVENT_COLLECTOR_" + flag.upper().replace("-", "_"), default)

    parser = argparse.ArgumentParser(
        prog="python -m collector",
        description=(
            "List-watch the cluster's Kubernetes Events, keep one record per event, "
            "and serve the latest N, newest first, over a Unix socket "
            '(newline-delimited JSON; try: echo \'{"op":"latest","limit":5}\' '
            "| socat - UNIX-CONNECT:SOCKET)."
        ),
        epilog=(
            "Every flag can be set by its environment twin EVENT_COLLECTOR_<FLAG>, "
            "e.g. EVENT_COLLECTOR_MAX_EVENTS=20000. Exit codes: 0 stopped by a "
            "signal, 1 crashed, 2 bad settings or credentials."
        ),
        formatter_class=_HelpFormatter,
    )
    parser.add_argument(
        "--kubeconfig",
        default=twin("kubeconfig", env.get("KUBECONFIG", "")),
        help="kubeconfig file, e.g. kubeadm's admin.conf (default: $KUBECONFIG, "
        "else the in-cluster service account, else ~/.kube/config)",
    )
    parser.add_argument(
        "--context",
        default=twin("context", ""),
        help="kubeconfig context to use (default: its current-context)",
    )
    parser.add_argument(
        "--namespace",
        default=twin("namespace", ""),
        help="watch one namespace only (needs just a Role) (default: all namespaces)",
    )
    parser.add_argument(
        "--socket",
        default=twin("socket", DEFAULT_SOCKET_PATH),
        help="Unix socket to serve on; created mode 0660, its directory 0750",
    )
    parser.add_argument(
        "--retention",
        type=parse_duration,
        default=twin("retention", "24h"),
        help="keep events the cluster has deleted (its --event-ttl is 1h by "
        "default) for this long after they were last seen",
    )
    parser.add_argument(
        "--max-events",
        type=int,
        default=twin("max-events", "50000"),
        help="records kept at most, the oldest dropped first; each costs about "
        "0.9 KiB of memory on top of the ~63 MiB the process starts with",
    )
    parser.add_argument(
        "--max-connections",
        type=int,
        default=twin("max-connections", "64"),
        help="clients served at once; more are told so and closed",
    )
    parser.add_argument(
        "--page-size",
        type=int,
        default=twin("page-size", "500"),
        help="events per list request, as kubectl's --chunk-size",
    )
    parser.add_argument(
        "--watch-timeout",
        type=int,
        default=twin("watch-timeout", "300"),
        help="seconds the API server keeps each watch open before we resume it",
    )
    parser.add_argument(
        "--log-level",
        default=twin("log-level", "info"),
        type=str.lower,
        choices=LOG_LEVELS,
        help="debug shows every watch reconnect; never one line per event above it",
    )
    parser.add_argument(
        "--log-format",
        default=twin("log-format", "text"),
        type=str.lower,
        choices=LOG_FORMATS,
        help="json writes one object per line for log shippers",
    )
    return parser
