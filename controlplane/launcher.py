"""
Run a real Kubernetes control plane on 127.0.0.1 for tests and the demo.

The collector's hard cases (watch reconnects, 410 Gone after compaction,
events expiring by TTL) only show up against a real kube-apiserver on a real
etcd, so this module starts the upstream binaries that build.sh compiles from
Go modules, rather than faking the API.

Each component runs as its own process in its own session: a Ctrl-C at the
terminal reaches only us, and we stop the components in reverse dependency
order (controller-manager, scheduler, apiserver, etcd). Every component logs
to a file in the work directory; when one dies during start-up the exception
names it and quotes the end of its log, because that is the first thing
anyone debugging a red CI run needs.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import http.client
import logging
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Self, TypeVar

from controlplane.kubeconfig import write_kubeconfig
from controlplane.pki import (
    CertificateAuthority,
    KeyPair,
    generate_service_account_key,
    write_secret_file,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")

BUILD_SCRIPT = Path(__file__).resolve().parent / "build.sh"
BINARIES = (
    "etcd",
    "kube-apiserver",
    "kube-scheduler",
    "kube-controller-manager",
    "kubectl",
)
LOOPBACK = "127.0.0.1"

# A loaded two-core CI machine needs far longer than envtest's 20 s default
# before RBAC bootstrap finishes and /readyz turns green.
DEFAULT_READY_TIMEOUT_SECONDS = 90.0

# kube-apiserver drains in a few seconds; past this we stop being polite.
DEFAULT_STOP_TIMEOUT_SECONDS = 10.0

# Enough lines to show a Go panic or a flag error, few enough to read.
LOG_TAIL_LINES = 40

POLL_INTERVAL_SECONDS = 0.2
PROBE_TIMEOUT_SECONDS = 2.0

ADMIN_USER = "kubernetes-admin"
ADMIN_GROUPS = ("system:masters",)
SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"


class ControlPlaneError(Exception):
    """A control plane could not be built, started or used."""


class BuildError(ControlPlaneError):
    """build.sh failed or did not name a bin directory."""


class ComponentError(ControlPlaneError):
    """A component exited, or did not become ready in time."""


class KubectlError(ControlPlaneError):
    """kubectl exited non-zero; `result` holds its output."""

    def __init__(self, result: subprocess.CompletedProcess[str]) -> None:
        command = " ".join(str(arg) for arg in result.args[2:])
        super().__init__(
            f"kubectl {command} exited with {result.returncode}: "
            f"{result.stderr.strip()}"
        )
        self.result = result


def build_binaries(*, build_script: Path = BUILD_SCRIPT) -> Path:
    """
    Run build.sh and return the bin directory it prints on its last line.

    It is a quick no-op when the binaries are cached; a cold build takes many
    minutes. Its progress passes through to our stderr as it happens, and the
    end of it is repeated in the BuildError, since that may be all a CI log
    shows.
    """
    logger.info("Building or reusing the control plane binaries: %s", build_script)
    try:
        process = subprocess.Popen(
            ["bash", str(build_script)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    except OSError as exc:
        raise BuildError(f"could not run {build_script}: {exc}") from exc
    # NB: stdout is one line, far below a pipe's buffer, so draining stderr
    # first cannot deadlock.
    stderr_tail: collections.deque[str] = collections.deque(maxlen=LOG_TAIL_LINES)
    with process:
        assert process.stdout is not None and process.stderr is not None
        for line in process.stderr:
            sys.stderr.write(line)
            stderr_tail.append(line.rstrip("\n"))
        lines = process.stdout.read().strip().splitlines()
        code = process.wait()
    if code != 0 or not lines:
        raise BuildError(
            f"{build_script} exited with {code}:\n" + "\n".join(stderr_tail)
        )
    return Path(lines[-1])


def find_free_port() -> int:
    """
    Return a TCP port on the loopback address that is free right now.

    NB: another process may take the port before our component binds it;
    the component then exits with "address already in use" and start() fails
    with that log line, which is rare enough to leave to a rerun.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        port: int = probe.getsockname()[1]
        return port


def format_duration(seconds: float) -> str:
    """Format seconds as a Go duration such as `10s` or `0.5s`."""
    return f"{seconds:g}s"


class _Component:
    """One control plane process, its command line and its log file."""

    def __init__(self, *, name: str, argv: Sequence[str], log_path: Path) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def start(self) -> None:
        logger.debug("Starting %s: %s", self.name, " ".join(self.argv))
        # Appending keeps the log of a killed apiserver next to its restart.
        self._log = self.log_path.open("ab")
        self._log.write(f"==> {time.strftime('%H:%M:%S')} starting\n".encode())
        self._log.flush()
        self._process = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def exit_code(self) -> int | None:
        """Return the exit code, or None while running (or never started)."""
        return None if self._process is None else self._process.poll()

    def raise_if_exited(self) -> None:
        code = self.exit_code()
        if code is not None:
            raise ComponentError(
                f"{self.name} exited with code {code}; "
                f"last lines of {self.log_path}:\n{self.tail()}"
            )

    def stop(self, *, timeout: float = DEFAULT_STOP_TIMEOUT_SECONDS) -> None:
        """Send SIGTERM, wait up to `timeout`, then SIGKILL."""
        if self._process is not None and self._process.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                logger.warning("%s ignored SIGTERM for %.0f s", self.name, timeout)
                self.kill()
        self._close_log()

    def kill(self) -> None:
        """Send SIGKILL and reap the process, as a crash would end it."""
        if self._process is not None and self._process.poll() is None:
            self._signal(signal.SIGKILL)
            self._process.wait()
        self._close_log()

    def tail(self, *, lines: int = LOG_TAIL_LINES) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError as exc:
            return f"(log unreadable: {exc})"
        return "\n".join(text.splitlines()[-lines:])

    def _signal(self, signum: signal.Signals) -> None:
        assert self._process is not None
        # The component leads its own session, so its group id is its pid;
        # signalling the group also reaches anything it spawned.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._process.pid, signum)

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


def _wait_until(
    ready: Callable[[], bool],
    *,
    component: _Component,
    what: str,
    timeout: float,
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        component.raise_if_exited()
        if ready():
            return
        if time.monotonic() > deadline:
            raise ComponentError(
                f"{component.name} did not report {what} within {timeout:.0f} s; "
                f"last lines of {component.log_path}:\n{component.tail()}"
            )
        time.sleep(POLL_INTERVAL_SECONDS)


def _probe(url: str, *, context: ssl.SSLContext | None = None) -> bool:
    try:
        with urllib.request.urlopen(
            url, timeout=PROBE_TIMEOUT_SECONDS, context=context
        ) as response:
            return bool(response.status == 200)
    except (OSError, http.client.HTTPException):
        # Refused, reset, or a 5xx while post-start hooks run: not ready yet.
        return False


def _unverified_context() -> ssl.SSLContext:
    # The scheduler and controller-manager serve /healthz with a certificate
    # they sign themselves at start-up; it is a loopback liveness probe only.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class ControlPlane:
    """
    etcd and kube-apiserver, optionally with kube-scheduler and
    kube-controller-manager, all on 127.0.0.1 with a fresh PKI.

    Use as a context manager, or call start() and stop(). The test knobs map
    to kube-apiserver flags: `event_ttl` to --event-ttl,
    `etcd_compaction_interval` to --etcd-compaction-interval,
    `min_request_timeout` to --min-request-timeout and `watch_cache_sizes`
    to --watch-cache-sizes (resource to size, e.g. {"events": 1000}).
    A None knob leaves the server's default.
    """

    def __init__(
        self,
        *,
        bin_dir: Path | None = None,
        workdir: Path | None = None,
        event_ttl: float | None = None,
        etcd_compaction_interval: float | None = None,
        min_request_timeout: int | None = None,
        watch_cache_sizes: Mapping[str, int] | None = None,
        scheduler: bool = False,
        controller_manager: bool = False,
        extra_apiserver_args: Sequence[str] = (),
        ready_timeout: float = DEFAULT_READY_TIMEOUT_SECONDS,
    ) -> None:
        self._requested_bin_dir = bin_dir
        self._requested_workdir = workdir
        self._event_ttl = event_ttl
        self._etcd_compaction_interval = etcd_compaction_interval
        self._min_request_timeout = min_request_timeout
        self._watch_cache_sizes = dict(watch_cache_sizes or {})
        self._with_scheduler = scheduler
        self._with_controller_manager = controller_manager
        self._extra_apiserver_args = list(extra_apiserver_args)
        self._ready_timeout = ready_timeout

        self._bin_dir: Path | None = None
        self._workdir: Path | None = None
        self._owns_workdir = False
        self._server: str | None = None
        self._etcd_url: str | None = None
        self._ca: CertificateAuthority | None = None
        self._components: dict[str, _Component] = {}
        self.startup_seconds: float | None = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def bin_dir(self) -> Path:
        """Return the directory holding the built binaries."""
        return self._require(self._bin_dir, "bin_dir")

    @property
    def workdir(self) -> Path:
        """Return the directory holding the PKI, etcd data, kubeconfigs and logs."""
        return self._require(self._workdir, "workdir")

    @property
    def server(self) -> str:
        """Return the API server URL, e.g. https://127.0.0.1:41234."""
        return self._require(self._server, "server")

    @property
    def kubeconfig(self) -> Path:
        """Return the admin kubeconfig (CN=kubernetes-admin, O=system:masters)."""
        return self.workdir / "admin.conf"

    @property
    def pids(self) -> dict[str, int]:
        """Return the process id of each running component, by name."""
        return {
            name: component.pid
            for name, component in self._components.items()
            if component.pid is not None and component.exit_code() is None
        }

    def start(self) -> None:
        """Start every component and wait until each one is ready."""
        if self._components:
            raise ControlPlaneError("the control plane is already started")
        started = time.monotonic()
        self._bin_dir = self._resolve_bin_dir()
        self._prepare_workdir()
        atexit.register(self.stop)
        try:
            self._start_components()
        except BaseException:
            # Keep the work directory: the exception points at its logs.
            self._owns_workdir = False
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started
        logger.info(
            "Control plane ready at %s in %.1f s (workdir %s)",
            self._server,
            self.startup_seconds,
            self._workdir,
        )

    def stop(self) -> None:
        """Stop the components in reverse dependency order; safe to call twice."""
        atexit.unregister(self.stop)
        for name in ("kube-controller-manager", "kube-scheduler", "kube-apiserver"):
            if name in self._components:
                self._components[name].stop()
        if "etcd" in self._components:
            self._components["etcd"].stop()
        self._components.clear()
        if self._owns_workdir and self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._owns_workdir = False

    def check(self) -> None:
        """Raise ComponentError if any component has exited."""
        for component in self._components.values():
            component.raise_if_exited()

    def stop_apiserver(self) -> None:
        """Kill kube-apiserver with SIGKILL, leaving etcd and the others running."""
        self._component("kube-apiserver").kill()
        logger.info("Killed kube-apiserver")

    def start_apiserver(self) -> None:
        """Start kube-apiserver again on the same port, etcd and PKI."""
        apiserver = self._component("kube-apiserver")
        if apiserver.exit_code() is None:
            raise ControlPlaneError("kube-apiserver is still running")
        apiserver.start()
        self._wait_apiserver_ready(apiserver)
        logger.info("Restarted kube-apiserver at %s", self._server)

    def kubectl(
        self,
        *args: str,
        check: bool = True,
        input: str | None = None,
        timeout: float = 60.0,
    ) -> subprocess.CompletedProcess[str]:
        """Run the built kubectl as the admin user and capture its output."""
        result = subprocess.run(
            [str(self.bin_dir / "kubectl"), f"--kubeconfig={self.kubeconfig}", *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise KubectlError(result)
        return result

    def user_kubeconfig(self, name: str, groups: Sequence[str] = ()) -> Path:
        """
        Issue a client certificate for another user and write its kubeconfig.

        The user has no permissions beyond what RBAC grants `name` and
        `groups` (plus system:authenticated), which is what a least-privilege
        test wants.
        """
        ca = self._require(self._ca, "PKI")
        pair = ca.issue_client(user=name, groups=groups)
        safe_name = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
        return self._write_kubeconfig(
            self.workdir / "users" / f"{safe_name}.conf", user=name, pair=pair
        )

    def _require(self, value: T | None, what: str) -> T:
        if value is None:
            raise ControlPlaneError(f"{what} is not known until start()")
        return value

    def _component(self, name: str) -> _Component:
        if name not in self._components:
            raise ControlPlaneError(f"{name} is not part of this control plane")
        return self._components[name]

    def _resolve_bin_dir(self) -> Path:
        bin_dir = self._requested_bin_dir
        if bin_dir is None:
            bin_dir = build_binaries()
        missing = [name for name in BINARIES if not (bin_dir / name).is_file()]
        if missing:
            raise BuildError(f"{bin_dir} lacks {', '.join(missing)}")
        return bin_dir

    def _prepare_workdir(self) -> None:
        if self._requested_workdir is None:
            self._workdir = Path(tempfile.mkdtemp(prefix="event-collector-cp-"))
            self._owns_workdir = True
        else:
            self._workdir = self._requested_workdir.resolve()
            self._workdir.mkdir(parents=True, exist_ok=True)
        # A fresh cluster each start: old etcd data would not match the new PKI.
        shutil.rmtree(self._workdir / "etcd", ignore_errors=True)
        (self._workdir / "etcd").mkdir(mode=0o700)
        for subdir in ("pki", "logs", "users"):
            (self._workdir / subdir).mkdir(mode=0o700, exist_ok=True)

    def _start_components(self) -> None:
        self._write_pki()
        self._start_etcd()
        self._start_apiserver()
        if self._with_scheduler:
            self._start_scheduler()
        if self._with_controller_manager:
            self._start_controller_manager()

    def _write_pki(self) -> None:
        pki = self.workdir / "pki"
        self._ca = CertificateAuthority.create()
        serving = self._ca.issue_serving()
        admin = self._ca.issue_client(user=ADMIN_USER, groups=ADMIN_GROUPS)
        service_account = generate_service_account_key()
        # Only the certificate is kept: nobody can sign front-proxy client
        # certificates, but the scheduler and controller-manager stop logging
        # "missing content for CA bundle" once the server publishes one.
        front_proxy_ca = CertificateAuthority.create(common_name="front-proxy-ca")
        files = {
            "ca.crt": self._ca.cert_pem,
            "ca.key": self._ca.key_pem,
            "apiserver.crt": serving.cert_pem,
            "apiserver.key": serving.key_pem,
            "admin.crt": admin.cert_pem,
            "admin.key": admin.key_pem,
            "sa.key": service_account.private_pem,
            "sa.pub": service_account.public_pem,
            "front-proxy-ca.crt": front_proxy_ca.cert_pem,
        }
        for name, data in files.items():
            write_secret_file(pki / name, data)

        self._server = f"https://{LOOPBACK}:{find_free_port()}"
        self._write_kubeconfig(self.kubeconfig, user=ADMIN_USER, pair=admin)

    def _write_kubeconfig(self, path: Path, *, user: str, pair: KeyPair) -> Path:
        return write_kubeconfig(
            path,
            server=self.server,
            ca_pem=self._require(self._ca, "PKI").cert_pem,
            cert_pem=pair.cert_pem,
            key_pem=pair.key_pem,
            user=user,
        )

    def _add(self, name: str, argv: Sequence[str]) -> _Component:
        component = _Component(
            name=name, argv=argv, log_path=self.workdir / "logs" / f"{name}.log"
        )
        self._components[name] = component
        component.start()
        return component

    def _start_etcd(self) -> None:
        client_url = f"http://{LOOPBACK}:{find_free_port()}"
        peer_url = f"http://{LOOPBACK}:{find_free_port()}"
        self._etcd_url = client_url
        etcd = self._add(
            "etcd",
            [
                str(self.bin_dir / "etcd"),
                "--name=control-plane",
                f"--data-dir={self.workdir / 'etcd'}",
                f"--listen-client-urls={client_url}",
                f"--advertise-client-urls={client_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=control-plane={peer_url}",
                # Durability is worthless for a throwaway cluster; fsync on a
                # busy CI disk is what makes etcd slow.
                "--unsafe-no-fsync=true",
                "--log-level=warn",
            ],
        )
        _wait_until(
            lambda: _probe(f"{client_url}/health"),
            component=etcd,
            what="/health",
            timeout=self._ready_timeout,
        )

    def _apiserver_argv(self) -> list[str]:
        pki = self.workdir / "pki"
        port = self.server.rsplit(":", 1)[1]
        argv = [
            str(self.bin_dir / "kube-apiserver"),
            f"--etcd-servers={self._require(self._etcd_url, 'etcd')}",
            f"--advertise-address={LOOPBACK}",
            f"--bind-address={LOOPBACK}",
            f"--secure-port={port}",
            f"--cert-dir={self.workdir / 'apiserver'}",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            f"--requestheader-client-ca-file={pki / 'front-proxy-ca.crt'}",
            "--requestheader-allowed-names=front-proxy-client",
            "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            "--authorization-mode=Node,RBAC",
            f"--service-account-issuer={self.server}",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            # No controller creates default service accounts unless the
            # controller-manager runs, and pods are not what we test.
            "--disable-admission-plugins=ServiceAccount",
            # Keep our loopback address out of the default/kubernetes
            # endpoints, and stop the reconciler racing a restart.
            "--endpoint-reconciler-type=none",
            "--allow-privileged=true",
            "--profiling=false",
        ]
        return argv + self._knob_args() + self._extra_apiserver_args

    def _knob_args(self) -> list[str]:
        args = []
        if self._event_ttl is not None:
            args.append(f"--event-ttl={format_duration(self._event_ttl)}")
        if self._etcd_compaction_interval is not None:
            interval = format_duration(self._etcd_compaction_interval)
            args.append(f"--etcd-compaction-interval={interval}")
        if self._min_request_timeout is not None:
            args.append(f"--min-request-timeout={self._min_request_timeout}")
        if self._watch_cache_sizes:
            sizes = ",".join(f"{r}#{n}" for r, n in self._watch_cache_sizes.items())
            args.append(f"--watch-cache-sizes={sizes}")
        return args

    def _start_apiserver(self) -> None:
        apiserver = self._add("kube-apiserver", self._apiserver_argv())
        self._wait_apiserver_ready(apiserver)

    def _wait_apiserver_ready(self, apiserver: _Component) -> None:
        pki = self.workdir / "pki"
        context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        context.load_cert_chain(pki / "admin.crt", pki / "admin.key")
        _wait_until(
            lambda: _probe(f"{self.server}/readyz", context=context),
            component=apiserver,
            what="/readyz",
            timeout=self._ready_timeout,
        )

    def _start_scheduler(self) -> None:
        kubeconfig = self._component_kubeconfig("system:kube-scheduler")
        self._start_with_healthz("kube-scheduler", kubeconfig=kubeconfig, extra=[])

    def _start_controller_manager(self) -> None:
        pki = self.workdir / "pki"
        kubeconfig = self._component_kubeconfig("system:kube-controller-manager")
        extra = [
            # Each controller acts as its own service account with its
            # system:controller:* role, as in kubeadm; with the manager's own
            # identity the deployment controller could not create pods.
            "--use-service-account-credentials=true",
            f"--service-account-private-key-file={pki / 'sa.key'}",
            f"--root-ca-file={pki / 'ca.crt'}",
            f"--cluster-signing-cert-file={pki / 'ca.crt'}",
            f"--cluster-signing-key-file={pki / 'ca.key'}",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
        ]
        self._start_with_healthz(
            "kube-controller-manager", kubeconfig=kubeconfig, extra=extra
        )

    def _component_kubeconfig(self, user: str) -> Path:
        pair = self._require(self._ca, "PKI").issue_client(user=user)
        name = user.removeprefix("system:")
        return self._write_kubeconfig(
            self.workdir / f"{name}.conf", user=user, pair=pair
        )

    def _start_with_healthz(
        self, name: str, *, kubeconfig: Path, extra: Sequence[str]
    ) -> None:
        port = find_free_port()
        component = self._add(
            name,
            [
                str(self.bin_dir / name),
                f"--kubeconfig={kubeconfig}",
                f"--authentication-kubeconfig={kubeconfig}",
                f"--authorization-kubeconfig={kubeconfig}",
                f"--bind-address={LOOPBACK}",
                f"--secure-port={port}",
                f"--cert-dir={self.workdir / name}",
                # One replica needs no lease, and with leader election on the
                # component exits when a test kills the apiserver for longer
                # than the renew deadline.
                "--leader-elect=false",
                *extra,
            ],
        )
        context = _unverified_context()
        _wait_until(
            lambda: _probe(f"https://{LOOPBACK}:{port}/healthz", context=context),
            component=component,
            what="/healthz",
            timeout=self._ready_timeout,
        )
