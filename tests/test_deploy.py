"""
The deployment files: valid, consistent with each other, and least-privileged.

compose.yaml is checked by Debian's docker-compose (v1 validates the Compose
specification without a Docker engine), then the properties the sidecar relies
on are read from the YAML itself. No image is built: there is no engine here.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
COMPOSE = REPO / "compose.yaml"
DOCKERFILES = [REPO / "Dockerfile", REPO / "examples" / "django" / "Dockerfile"]
KUBECONFIG_TARGET = "/etc/event-collector/kubeconfig"
READ_EVENTS = [
    {"apiGroups": [""], "resources": ["events"], "verbs": ["get", "list", "watch"]}
]


def load_compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def service(name: str) -> dict[str, Any]:
    return load_compose()["services"][name]


def volume_mounts(spec: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Return target -> (source, options) for the service's short-syntax volumes."""
    mounts = {}
    for entry in spec.get("volumes", []):
        # ${VAR:-default} holds a colon of its own; compose would use the default.
        resolved = re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", entry)
        source, target, *options = resolved.split(":")
        mounts[target] = (source, ",".join(options))
    return mounts


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """Return (INSTRUCTION, arguments) pairs, continuation lines joined, ARGs expanded."""
    text = re.sub(r"\\\n", " ", path.read_text())
    instructions = []
    args: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        keyword, _, rest = line.strip().partition(" ")
        if keyword.upper() == "ARG" and "=" in rest:
            name, _, default = rest.partition("=")
            args[name] = default
        for name, value in args.items():
            rest = rest.replace(f'"${{{name}}}"', value).replace(f"${{{name}}}", value)
        instructions.append((keyword.upper(), " ".join(rest.split())))
    return instructions


def dockerfile_user(path: Path) -> str:
    users = [
        rest for keyword, rest in dockerfile_instructions(path) if keyword == "USER"
    ]
    return users[-1]


def collector_dockerfile_user() -> str:
    return dockerfile_user(REPO / "Dockerfile")


def dockerignored(path: str, patterns: list[str]) -> bool:
    """Apply .dockerignore's rules: the last matching pattern wins, `!` re-includes."""
    excluded = False
    parts = PurePosixPath(path).parts
    prefixes = ["/".join(parts[: end + 1]) for end in range(len(parts))]
    for pattern in patterns:
        negated = pattern.startswith("!")
        glob = pattern.removeprefix("!").rstrip("/")
        globs = [glob, glob.removeprefix("**/")] if glob.startswith("**/") else [glob]
        # A pattern that matches a directory covers everything under it.
        if any(fnmatch.fnmatchcase(prefix, g) for prefix in prefixes for g in globs):
            excluded = not negated
    return excluded


def dockerignore_patterns() -> list[str]:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def yaml_documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def by_kind(documents: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in documents if doc["kind"] == kind]


def run_compose(compose_file: Path) -> subprocess.CompletedProcess[str]:
    docker_compose = shutil.which("docker-compose")
    if docker_compose is None:
        pytest.fail(
            "docker-compose is missing: apt-get install docker-compose (Debian's "
            "v1.29 validates compose files without a Docker engine)",
            pytrace=False,
        )
    # A clean environment: no COMPOSE_* or EVENT_COLLECTOR_* from the caller.
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")}
    return subprocess.run(
        [docker_compose, "--file", str(compose_file), "config", "--quiet"],
        cwd=compose_file.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_compose_file_is_valid_for_docker_compose():
    result = run_compose(COMPOSE)

    assert result.returncode == 0, result.stderr


def test_docker_compose_rejects_an_invalid_file(tmp_path):
    # The validator must be able to say no, or the test above proves nothing.
    broken = load_compose()
    broken["services"]["event-collector"]["read_only"] = "sometimes"
    (tmp_path / "compose.yaml").write_text(yaml.safe_dump(broken))

    result = run_compose(tmp_path / "compose.yaml")

    assert result.returncode != 0
    assert "read_only" in result.stderr


def test_collector_runs_as_the_dockerfile_user_which_is_not_root():
    user = service("event-collector")["user"]

    uid, gid = (int(part) for part in user.split(":"))
    assert uid != 0 and gid != 0
    assert user == collector_dockerfile_user()


def test_collector_root_filesystem_is_read_only_with_a_tmpfs_for_tmp():
    collector = service("event-collector")

    assert collector["read_only"] is True
    assert [entry.split(":")[0] for entry in collector["tmpfs"]] == ["/tmp"]


def test_collector_memory_is_limited_and_it_restarts_unless_stopped():
    collector = service("event-collector")

    assert collector["mem_limit"] == "100m"
    assert collector["restart"] == "unless-stopped"


def test_collector_drops_every_capability():
    collector = service("event-collector")

    assert collector["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in collector["security_opt"]


def test_healthcheck_pings_the_collector_through_the_client():
    healthcheck = service("event-collector")["healthcheck"]

    assert healthcheck["test"] == ["CMD", "python", "-m", "client", "ping"]


def test_kubeconfig_is_mounted_read_only_where_the_collector_reads_it():
    collector = service("event-collector")
    mounts = volume_mounts(collector)

    assert collector["environment"]["EVENT_COLLECTOR_KUBECONFIG"] == KUBECONFIG_TARGET
    source, options = mounts[KUBECONFIG_TARGET]
    assert options == "ro"
    assert source == "./collector.kubeconfig"


def test_socket_volume_is_shared_by_both_services_at_the_socket_directory():
    compose = load_compose()
    socket_dirs = set()

    for name in ("event-collector", "web"):
        spec = compose["services"][name]
        socket_dir = os.path.dirname(spec["environment"]["EVENT_COLLECTOR_SOCKET"])
        assert volume_mounts(spec)[socket_dir][0] == "events-socket", name
        socket_dirs.add(socket_dir)
    assert socket_dirs == {"/run/event-collector"}
    assert "events-socket" in compose["volumes"]


def test_web_joins_the_collector_group_and_mounts_the_socket_read_only():
    web = service("web")
    collector_gid = service("event-collector")["user"].split(":")[1]

    assert web["group_add"] == [collector_gid]
    assert volume_mounts(web)["/run/event-collector"][1] == "ro"
    assert web["user"].split(":")[0] not in ("0", "root")
    assert web["depends_on"]["event-collector"]["condition"] == "service_healthy"


def test_web_runs_as_its_dockerfile_user_in_a_group_of_its_own():
    user = service("web")["user"]

    assert user == dockerfile_user(DOCKERFILES[1])
    assert user.split(":")[1] != collector_dockerfile_user().split(":")[1]


def test_dockerfile_makes_the_socket_directory_the_volume_copies():
    # A fresh named volume takes the owner and mode of the image's directory.
    runs = [
        rest
        for keyword, rest in dockerfile_instructions(REPO / "Dockerfile")
        if keyword == "RUN"
    ]
    uid, gid = collector_dockerfile_user().split(":")

    expected = f"install -d -o {uid} -g {gid} -m 0750 /run/event-collector"
    assert any(expected in run for run in runs), runs


@pytest.mark.parametrize(
    "dockerfile",
    [pytest.param(path, id=str(path.relative_to(REPO))) for path in DOCKERFILES],
)
def test_dockerfile_base_is_a_slim_python_of_at_least_3_11(dockerfile):
    bases = [
        rest
        for keyword, rest in dockerfile_instructions(dockerfile)
        if keyword == "FROM"
    ]

    match = re.fullmatch(r"python:3\.(\d+)-slim(-\w+)?", bases[0])
    assert match and int(match.group(1)) >= 11, bases


def test_dockerfile_installs_the_collector_extra_as_setup_does():
    runs = [
        rest
        for keyword, rest in dockerfile_instructions(REPO / "Dockerfile")
        if keyword == "RUN"
    ]
    pip_runs = [shlex.split(run) for run in runs if run.startswith("pip install")]
    setup = (REPO / "scripts" / "setup").read_text()

    assert len(pip_runs) == 1
    assert pip_runs[0][:3] == ["pip", "install", ".[collector]"]
    assert "-e '.[collector," in setup


def test_image_and_setup_compile_for_the_optimize_level_the_image_runs_at():
    instructions = dockerfile_instructions(REPO / "Dockerfile")
    env = " ".join(rest for keyword, rest in instructions if keyword == "ENV")
    runs = " ".join(rest for keyword, rest in instructions if keyword == "RUN")
    setup = (REPO / "scripts" / "setup").read_text()

    assert "PYTHONOPTIMIZE=2" in env.split()
    assert "-m compileall -o 2" in runs
    assert "-m compileall -o 2" in setup


def test_collector_image_starts_the_collector():
    entrypoints = [
        rest
        for keyword, rest in dockerfile_instructions(REPO / "Dockerfile")
        if keyword == "ENTRYPOINT"
    ]

    assert entrypoints == ['["python", "-m", "collector"]']


@pytest.mark.parametrize(
    "dockerfile",
    [pytest.param(path, id=str(path.relative_to(REPO))) for path in DOCKERFILES],
)
def test_every_copied_path_exists_and_reaches_the_build_context(dockerfile):
    patterns = dockerignore_patterns()
    copies = [
        rest.split()[:-1]
        for keyword, rest in dockerfile_instructions(dockerfile)
        if keyword == "COPY"
    ]
    sources = [source for sources in copies for source in sources]

    assert sources
    for source in sources:
        assert (REPO / source).exists(), source
        assert not dockerignored(source, patterns), source


@pytest.mark.parametrize(
    "path",
    [
        "collector.kubeconfig",
        "admin.conf",
        "examples/django/admin.conf",
        "client/ca.key",
        ".venv/bin/python",
        ".git/config",
        "tests/conftest.py",
        "collector/__pycache__/app.cpython-311.pyc",
    ],
)
def test_dockerignore_keeps_credentials_and_clutter_out_of_the_context(path):
    assert dockerignored(path, dockerignore_patterns())


def test_admin_conf_example_has_the_shape_of_kubeadms_admin_conf():
    config = yaml.safe_load((REPO / "admin.conf.example").read_text())

    assert (config["apiVersion"], config["kind"]) == ("v1", "Config")
    contexts = {entry["name"]: entry["context"] for entry in config["contexts"]}
    context = contexts[config["current-context"]]
    clusters = {entry["name"]: entry["cluster"] for entry in config["clusters"]}
    users = {entry["name"]: entry["user"] for entry in config["users"]}
    cluster, user = clusters[context["cluster"]], users[context["user"]]
    assert cluster["server"].startswith("https://")
    assert set(cluster) == {"server", "certificate-authority-data"}
    assert set(user) == {"client-certificate-data", "client-key-data"}


def test_admin_conf_example_holds_placeholders_not_credentials():
    config = yaml.safe_load((REPO / "admin.conf.example").read_text())
    values = [
        *(
            entry["cluster"]["certificate-authority-data"]
            for entry in config["clusters"]
        ),
        *(value for entry in config["users"] for value in entry["user"].values()),
    ]

    assert values and all(value.startswith("REPLACE-WITH-") for value in values)


def test_cluster_role_only_reads_core_events_for_the_collector_account():
    documents = yaml_documents(REPO / "deploy" / "rbac.yaml")
    (account,) = by_kind(documents, "ServiceAccount")
    (role,) = by_kind(documents, "ClusterRole")
    (binding,) = by_kind(documents, "ClusterRoleBinding")

    assert role["rules"] == READ_EVENTS
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": role["metadata"]["name"],
    }
    assert binding["subjects"] == [
        {
            "kind": "ServiceAccount",
            "name": account["metadata"]["name"],
            "namespace": account["metadata"]["namespace"],
        }
    ]
    assert [ns["metadata"]["name"] for ns in by_kind(documents, "Namespace")] == [
        account["metadata"]["namespace"]
    ]


def test_namespaced_variant_only_reads_events_in_its_namespace():
    documents = yaml_documents(REPO / "deploy" / "rbac-namespaced.yaml")
    (account,) = by_kind(documents, "ServiceAccount")
    (role,) = by_kind(documents, "Role")
    (binding,) = by_kind(documents, "RoleBinding")

    assert {doc["kind"] for doc in documents} == {
        "ServiceAccount",
        "Role",
        "RoleBinding",
    }
    assert {doc["metadata"]["namespace"] for doc in documents} == {"team-a"}
    assert role["rules"] == READ_EVENTS
    assert binding["roleRef"]["kind"] == "Role"
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [
        {
            "kind": "ServiceAccount",
            "name": account["metadata"]["name"],
            "namespace": "team-a",
        }
    ]


def test_make_kubeconfig_defaults_to_the_account_of_rbac_yaml():
    script = (REPO / "deploy" / "make-kubeconfig.sh").read_text()
    (account,) = by_kind(
        yaml_documents(REPO / "deploy" / "rbac.yaml"), "ServiceAccount"
    )

    assert f"\nnamespace={account['metadata']['namespace']}\n" in script
    assert f"\naccount={account['metadata']['name']}\n" in script


def test_make_kubeconfig_without_an_output_prints_usage_and_exits_2():
    script = REPO / "deploy" / "make-kubeconfig.sh"

    result = subprocess.run([str(script)], capture_output=True, text=True, timeout=30)

    assert os.access(script, os.X_OK)
    assert result.returncode == 2
    assert result.stderr.startswith("usage: deploy/make-kubeconfig.sh")
