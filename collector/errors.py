"""
Errors of the collector.

Foreign errors (aiohttp, kubernetes-asyncio, the kubeconfig loader) are turned
into these at the boundary in ``collector.kube``, so the watch loop decides what
to do from our own types alone::

    CollectorError
    ├── ConfigError          no usable kubeconfig or in-cluster config
    ├── ApiUnavailable       the API server could not be reached or hung up
    └── ApiError             the API server answered with an error status
        └── ResourceGone     410: a resourceVersion or continue token expired
"""

from __future__ import annotations


class CollectorError(Exception):
    """The base of the collector's own errors."""


class ConfigError(CollectorError):
    """The settings or the cluster credentials cannot be used."""


class ApiUnavailable(CollectorError):
    """The API server could not be reached, or a stream broke off."""


class ApiError(CollectorError):
    """The API server answered with an error status (HTTP or an ERROR frame)."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message


class ResourceGone(ApiError):
    """410 Gone: the resourceVersion or continue token is too old; relist."""
