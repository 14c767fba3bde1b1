"""A kubeconfig that cannot be used is a ConfigError that says what is wrong."""

from __future__ import annotations

import pytest

from collector import kube
from collector.errors import ConfigError

CLUSTER = """
clusters:
- name: c
  cluster: {server: "https://127.0.0.1:1"}
"""
USER = """
users:
- name: u
  user: {token: abc}
"""


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        pytest.param(None, "No such file or directory", id="missing"),
        pytest.param("", "holds no kubeconfig", id="empty"),
        pytest.param("{{{ not yaml", "the file is not YAML", id="not-yaml"),
        pytest.param("- a list\n- of things\n", "holds no kubeconfig", id="a-list"),
        pytest.param(
            "apiVersion: v1\nkind: Config\n" + CLUSTER,
            "Expected key current-context",
            id="no-current-context",
        ),
        pytest.param(
            CLUSTER
            + USER
            + "contexts:\n- name: x\n  context: {cluster: gone, user: u}\n"
            + "current-context: x\n",
            "Expected object with name gone",
            id="unknown-cluster",
        ),
        pytest.param(
            CLUSTER
            + "contexts:\n- name: x\n  context: {cluster: c}\ncurrent-context: x\n",
            "missing or misshapen",
            id="context-without-user",
        ),
    ],
)
async def test_an_unusable_kubeconfig_says_why(tmp_path, content, problem):
    path = tmp_path / "kubeconfig"
    if content is not None:
        path.write_text(content)

    with pytest.raises(ConfigError) as raised:
        await kube.connect(kubeconfig=str(path), context=None)

    assert str(raised.value).startswith(
        f"cannot load cluster credentials from {path}: "
    )
    assert problem in str(raised.value)
    assert "\n" not in str(raised.value)


async def test_a_directory_in_place_of_the_kubeconfig_is_named_as_such(tmp_path):
    with pytest.raises(ConfigError, match="it is a directory"):
        await kube.connect(kubeconfig=str(tmp_path), context=None)
