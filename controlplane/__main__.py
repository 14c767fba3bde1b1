"""
Command line for the dev control plane: `build` and `up`.

`up` runs in the foreground until SIGINT or SIGTERM, so a demo or a manual
debugging session gets the same cluster the integration tests use, and
stopping it never leaves etcd or kube-apiserver behind. The signal handlers
only set an event; all the stopping happens in the main flow.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from controlplane.launcher import (
    DEFAULT_READY_TIMEOUT_SECONDS,
    ControlPlane,
    ControlPlaneError,
    build_binaries,
)

logger = logging.getLogger(__name__)

# How often `up` checks that every component is still alive.
HEALTH_CHECK_INTERVAL_SECONDS = 1.0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return the process exit code."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        if args.command == "build":
            print(build_binaries())
            return 0
        return _up(args)
    except ControlPlaneError as exc:
        logger.error("%s", exc)
        return 1


def _up(args: argparse.Namespace) -> int:
    stopping = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    with _control_plane(args) as control_plane:
        print(f"kubeconfig: {control_plane.kubeconfig}", flush=True)
        print(f"server: {control_plane.server}", flush=True)
        print(f"export KUBECONFIG={control_plane.kubeconfig}", flush=True)
        while not stopping.wait(HEALTH_CHECK_INTERVAL_SECONDS):
            control_plane.check()
        logger.info("Signal received, stopping the control plane")
    return 0


def _control_plane(args: argparse.Namespace) -> ControlPlane:
    return ControlPlane(
        bin_dir=args.bin_dir,
        workdir=args.workdir,
        event_ttl=args.event_ttl,
        etcd_compaction_interval=args.etcd_compaction_interval,
        min_request_timeout=args.min_request_timeout,
        watch_cache_sizes=args.watch_cache_sizes,
        scheduler=args.scheduler,
        controller_manager=args.controller_manager,
        ready_timeout=args.ready_timeout,
    )


def _parse_watch_cache_sizes(text: str) -> dict[str, int]:
    sizes = {}
    for item in text.split(","):
        resource, sep, size = item.partition("#")
        if not sep or not resource or not size.isdigit():
            raise argparse.ArgumentTypeError(f"expected RESOURCE#SIZE, got {item!r}")
        sizes[resource] = int(size)
    return sizes


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m controlplane",
        description="A real Kubernetes control plane on 127.0.0.1 for dev and tests.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logs")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "build",
        help="build or reuse the binaries and print their directory",
        description="Run controlplane/build.sh (a no-op when cached).",
    )
    _add_up_arguments(
        commands.add_parser(
            "up",
            help="start a control plane and run until SIGINT/SIGTERM",
            description="Start etcd and kube-apiserver (and optionally the "
            "scheduler and controller-manager), print the admin kubeconfig "
            "path and server URL, and stop everything on SIGINT/SIGTERM.",
        )
    )
    return parser


def _add_up_arguments(up: argparse.ArgumentParser) -> None:
    up.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="directory for PKI, etcd data, kubeconfigs and logs (kept on exit); "
        "default: a temporary directory removed on exit",
    )
    up.add_argument(
        "--bin-dir",
        type=Path,
        default=None,
        help="directory with the built binaries; default: run build.sh",
    )
    up.add_argument(
        "--event-ttl",
        type=float,
        default=None,
        metavar="SECONDS",
        help="kube-apiserver --event-ttl; default: the server's (1h)",
    )
    up.add_argument(
        "--etcd-compaction-interval",
        type=float,
        default=None,
        metavar="SECONDS",
        help="kube-apiserver --etcd-compaction-interval; default: the server's (5m)",
    )
    up.add_argument(
        "--min-request-timeout",
        type=int,
        default=None,
        metavar="SECONDS",
        help="kube-apiserver --min-request-timeout (watches end after 1-2x this); "
        "default: the server's (1800)",
    )
    up.add_argument(
        "--watch-cache-sizes",
        type=_parse_watch_cache_sizes,
        default=None,
        metavar="RESOURCE#SIZE,...",
        help="kube-apiserver --watch-cache-sizes, e.g. events#1000; "
        "default: the server's (no cache for events)",
    )
    up.add_argument("--scheduler", action="store_true", help="also run kube-scheduler")
    up.add_argument(
        "--controller-manager",
        action="store_true",
        help="also run kube-controller-manager",
    )
    up.add_argument(
        "--ready-timeout",
        type=float,
        default=DEFAULT_READY_TIMEOUT_SECONDS,
        metavar="SECONDS",
        help="how long each component may take to become ready; default: %(default)s",
    )


if __name__ == "__main__":
    sys.exit(main())
