"""
Write kubeconfig files for the throwaway control plane.

The files look like kubeadm's admin.conf: one cluster, one user, one context,
with every certificate and key inlined as base64 `*-data` fields. Inlining
keeps each file self-contained, so a test can hand one path to kubectl or to
kubernetes_asyncio and nothing else. The files hold private keys, so they are
created with mode 0600.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import yaml

from controlplane.pki import write_secret_file

DEFAULT_CLUSTER_NAME = "event-collector"


def build_kubeconfig(
    *,
    server: str,
    ca_pem: bytes,
    cert_pem: bytes,
    key_pem: bytes,
    user: str,
    cluster_name: str = DEFAULT_CLUSTER_NAME,
    context: str | None = None,
) -> dict[str, Any]:
    """Build a kubeconfig document for one user of one cluster."""
    context_name = context if context is not None else f"{user}@{cluster_name}"
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": cluster_name,
                "cluster": {
                    "server": server,
                    "certificate-authority-data": _b64(ca_pem),
                },
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate-data": _b64(cert_pem),
                    "client-key-data": _b64(key_pem),
                },
            }
        ],
        "contexts": [
            {
                "name": context_name,
                "context": {"cluster": cluster_name, "user": user},
            }
        ],
        "current-context": context_name,
        "preferences": {},
    }


def write_kubeconfig(
    path: Path,
    *,
    server: str,
    ca_pem: bytes,
    cert_pem: bytes,
    key_pem: bytes,
    user: str,
    cluster_name: str = DEFAULT_CLUSTER_NAME,
    context: str | None = None,
) -> Path:
    """
    Write a kubeconfig for one user to `path` with mode 0600 and return the path.

    Args:
        user: the kubeconfig's user entry name; the identity the API server
            sees comes from the certificate's CN and O, not from this name.
        context: defaults to `<user>@<cluster_name>`, as kubeadm names it.
    """
    document = build_kubeconfig(
        server=server,
        ca_pem=ca_pem,
        cert_pem=cert_pem,
        key_pem=key_pem,
        user=user,
        cluster_name=cluster_name,
        context=context,
    )
    text = yaml.safe_dump(document, default_flow_style=False, sort_keys=False)
    write_secret_file(path, text.encode())
    return path


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
