"""
Dev tooling: a real Kubernetes control plane on 127.0.0.1 for tests and demos.

Not shipped with the product. build.sh compiles kube-apiserver, etcd and
friends from Go modules; ControlPlane runs them with a fresh PKI. See
`python -m controlplane --help`.
"""

from controlplane.launcher import (
    BuildError,
    ComponentError,
    ControlPlane,
    ControlPlaneError,
    KubectlError,
    build_binaries,
)

__all__ = [
    "BuildError",
    "ComponentError",
    "ControlPlane",
    "ControlPlaneError",
    "KubectlError",
    "build_binaries",
]
