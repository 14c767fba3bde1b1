"""
The demo behind ``scripts/run``: a collector on a cluster, and its latest
events printed every few seconds through the client.

With ``--kubeconfig`` it watches that cluster and changes nothing in it.
Without, it starts the local control plane with kube-scheduler and
kube-controller-manager and creates a namespace with a Deployment that can
never be scheduled (the cluster has no nodes), so that real components write
real events: ScalingReplicaSet, SuccessfulCreate, FailedScheduling. ``$KUBECONFIG``
is deliberately not read: the local cluster is the default, and pointing the
demo at a real cluster takes an explicit flag.

Every process it starts runs in its own session, so a Ctrl-C at the terminal
reaches only this driver, which then stops them in order: the collector with
SIGTERM (it must exit 0), then the control plane. The signal handlers only set
an Event; all the stopping happens in the main flow.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from client import Client, CollectorError
from controlplane.launcher import ControlPlane, ControlPlaneError

logger = logging.getLogger(__name__)

DEMO_NAMESPACE = "demo"
DEMO_DEPLOYMENT = "web"
DEMO_REPLICAS = 3
COLLECTOR_START_TIMEOUT_SECONDS = 60.0
COLLECTOR_STOP_TIMEOUT_SECONDS = 20.0
POLL_INTERVAL_SECONDS = 0.2

EXIT_OK = 0
EXIT_FAILED = 1


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo until a signal (or the set iterations); return the exit code."""
    parser = _parser()
    args, collector_args = parser.parse_known_args(argv)
    if "--" in collector_args:
        # "scripts/run -- --namespace x" reads well, but the collector takes no "--".
        collector_args.remove("--")
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    stopping = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        logger.info("%s received; stopping.", signal.Signals(signum).name)
        stopping.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        return _run(args, collector_args, stopping=stopping)
    except ControlPlaneError as exc:
        if stopping.is_set():
            # A Ctrl-C at the terminal also reaches a kubectl call in flight.
            logger.info("Stopped while setting up: %s", exc)
            return EXIT_OK
        logger.error("%s", exc)
        return EXIT_FAILED


def _run(
    args: argparse.Namespace, collector_args: list[str], *, stopping: threading.Event
) -> int:
    if args.kubeconfig is not None:
        return _watch(args, collector_args, kubeconfig=args.kubeconfig, stop=stopping)

    plane = ControlPlane(bin_dir=args.bin_dir, scheduler=True, controller_manager=True)
    with plane:
        print(f"control plane: {plane.server} (workdir {plane.workdir})", flush=True)
        print(f"kubeconfig: {plane.kubeconfig}", flush=True)
        if stopping.is_set():
            return EXIT_OK
        _create_workload(plane)
        return _watch(args, collector_args, kubeconfig=plane.kubeconfig, stop=stopping)


def _create_workload(plane: ControlPlane) -> None:
    """Create a Deployment that never schedules, so components write events."""
    plane.kubectl("create", "namespace", DEMO_NAMESPACE)
    plane.kubectl(
        "create", "deployment", DEMO_DEPLOYMENT, "-n", DEMO_NAMESPACE,
        "--image=busybox", f"--replicas={DEMO_REPLICAS}", "--", "sleep", "3600",
    )  # fmt: skip
    print(
        f"created deployment {DEMO_NAMESPACE}/{DEMO_DEPLOYMENT} with {DEMO_REPLICAS} "
        "replicas; with no nodes its pods stay Pending",
        flush=True,
    )


def _watch(
    args: argparse.Namespace,
    collector_args: list[str],
    *,
    kubeconfig: Path,
    stop: threading.Event,
) -> int:
    socket_dir = None
    socket_path = args.socket or os.environ.get("EVENT_COLLECTOR_SOCKET")
    if not socket_path:
        # Unix socket paths are limited to about 100 bytes: keep it short.
        socket_dir = tempfile.mkdtemp(prefix="ec-demo-")
        socket_path = os.path.join(socket_dir, "run", "events.sock")
    print(f"collector socket: {socket_path}", flush=True)

    argv = [sys.executable, "-m", "collector", "--kubeconfig", str(kubeconfig)]
    argv += ["--socket", socket_path, *collector_args]
    collector = subprocess.Popen(argv, stdin=subprocess.DEVNULL, start_new_session=True)
    print(f"collector pid: {collector.pid}", flush=True)
    try:
        if not _wait_ready(collector, socket_path=socket_path, stop=stop):
            return EXIT_OK if stop.is_set() else EXIT_FAILED
        _print_periodically(args, socket_path=socket_path, stop=stop)
    finally:
        code = _stop_collector(collector)
        if socket_dir is not None:
            shutil.rmtree(socket_dir, ignore_errors=True)
    return EXIT_OK if code == 0 else EXIT_FAILED


def _wait_ready(
    collector: subprocess.Popen[bytes], *, socket_path: str, stop: threading.Event
) -> bool:
    """Wait until the collector has listed the cluster; False if it never will."""
    deadline = time.monotonic() + COLLECTOR_START_TIMEOUT_SECONDS
    while not stop.is_set():
        if collector.poll() is not None:
            logger.error("The collector exited with %d.", collector.returncode)
            return False
        try:
            with Client(socket_path) as probe:
                if probe.stats()["synced"]:
                    return True
        except CollectorError:
            pass  # not listening yet
        if time.monotonic() > deadline:
            logger.error(
                "The collector did not sync within %.0f s.",
                COLLECTOR_START_TIMEOUT_SECONDS,
            )
            return False
        stop.wait(POLL_INTERVAL_SECONDS)
    return False


def _print_periodically(
    args: argparse.Namespace, *, socket_path: str, stop: threading.Event
) -> None:
    # The client's own command line prints the table, as a user would run it.
    command = [sys.executable, "-m", "client", "latest", str(args.limit)]
    command += ["--socket", socket_path]
    printed = 0
    while not stop.is_set():
        print(f"\n--- latest {args.limit} events, {time.strftime('%H:%M:%S')}")
        sys.stdout.flush()
        # Its own session: a Ctrl-C meant for the demo must not cut a table short.
        subprocess.run(
            command, stdin=subprocess.DEVNULL, check=False, start_new_session=True
        )
        printed += 1
        if args.iterations and printed >= args.iterations:
            return
        stop.wait(args.interval)


def _stop_collector(collector: subprocess.Popen[bytes]) -> int | None:
    if collector.poll() is None:
        collector.send_signal(signal.SIGTERM)
    try:
        code = collector.wait(timeout=COLLECTOR_STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        logger.error("The collector ignored SIGTERM; killing it.")
        collector.kill()
        collector.wait()
        return None
    if code != 0:
        logger.error("The collector exited with %d.", code)
    return code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scripts/run",
        description="Run the collector and print its latest events every few "
        "seconds. Without --kubeconfig, on a local control plane with a "
        "Deployment that cannot schedule, so real components write events. "
        "Arguments not listed here go to the collector (python -m collector "
        "--help).",
        # NB: no abbreviations, or a collector flag could be taken for ours.
        allow_abbrev=False,
    )
    parser.add_argument(
        "--kubeconfig",
        type=Path,
        default=None,
        help="watch this cluster (read only); $KUBECONFIG is not read. "
        "Default: start a local control plane",
    )
    parser.add_argument(
        "--socket",
        default=None,
        help="the collector's socket; default: $EVENT_COLLECTOR_SOCKET, else "
        "run/events.sock in a temporary directory",
    )
    parser.add_argument(
        "--bin-dir",
        type=Path,
        default=None,
        help="the control plane binaries; default: run controlplane/build.sh",
    )
    parser.add_argument(
        "--interval",
        type=float,
        default=float(os.environ.get("DEMO_INTERVAL", "5")),
        help="seconds between prints (env DEMO_INTERVAL; default 5)",
    )
    parser.add_argument(
        "--iterations",
        type=int,
        default=int(os.environ.get("DEMO_ITERATIONS", "0")),
        help="stop after this many prints; 0 runs until Ctrl-C "
        "(env DEMO_ITERATIONS; default 0)",
    )
    parser.add_argument(
        "--limit", type=int, default=20, help="events per print (default 20)"
    )
    return parser


if __name__ == "__main__":
    sys.exit(main())
