"""
The collector's only contact with the Kubernetes API.

kubernetes-asyncio loads the kubeconfig (or the in-cluster service account) and
makes the requests; the bodies are read raw and parsed with orjson. The
generated models are skipped on purpose: they reject real events (a null
``eventTime`` fails validation) and would parse every frame twice.

With ``_preload_content=False`` kubernetes-asyncio hands back the aiohttp
response without checking its status, so the status is checked here, and every
aiohttp or socket error becomes an ``ApiUnavailable``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from typing import Any, cast

import aiohttp
import orjson
import yaml
from kubernetes_asyncio import client as k8s_client
from kubernetes_asyncio import config as k8s_config
from kubernetes_asyncio.config.config_exception import ConfigException

from collector.errors import ApiError, ApiUnavailable, ConfigError, ResourceGone

logger = logging.getLogger(__name__)

# A list page is one etcd range read; a minute covers a slow server with a big
# page, and no page should take longer.
LIST_TIMEOUT_SECONDS = 60.0
CONNECT_TIMEOUT_SECONDS = 10.0

_NETWORK_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError, OSError)


async def connect(
    *, kubeconfig: str | None, context: str | None
) -> k8s_client.ApiClient:
    """
    Return an API client for the kubeconfig, or for the in-cluster account.

    Embedded certificates (kubeadm's admin.conf) are written to temporary files
    by kubernetes-asyncio; the caller closes the client.
    """
    where = kubeconfig or "the in-cluster service account"
    try:
        if kubeconfig:
            return await k8s_config.new_client_from_config(
                config_file=kubeconfig, context=context, persist_config=False
            )
        configuration = k8s_client.Configuration()
        k8s_config.load_incluster_config(  # type: ignore[no-untyped-call]
            client_configuration=configuration
        )
        return k8s_client.ApiClient(configuration)
    except (ConfigException, yaml.YAMLError, OSError, ValueError, KeyError) as exc:
        error: Exception = exc
        problem = _kubeconfig_file_problem(kubeconfig) or str(exc)
    except (TypeError, AttributeError) as exc:
        # kubernetes-asyncio indexes into whatever the YAML held; a missing or
        # misshapen section surfaces as a bare TypeError.
        error = exc
        problem = _kubeconfig_file_problem(kubeconfig) or (
            "a cluster, user or context is missing or misshapen "
            f"({type(exc).__name__}: {exc})"
        )
    raise ConfigError(
        f"cannot load cluster credentials from {where}: {problem}"
    ) from error


def _kubeconfig_file_problem(path: str | None) -> str | None:
    """
    Say what is wrong with a kubeconfig file that could not be loaded, if it is
    the file itself: kubernetes-asyncio reads a missing file as an empty config
    and reports "Expected key current-context", which misleads.
    """
    if not path:
        return None
    if os.path.isdir(path):
        return (
            "it is a directory (a container runtime mounts an empty directory "
            "where the file to mount does not exist)"
        )
    try:
        with open(path, "rb") as file:
            content = yaml.safe_load(file)
    except OSError as exc:
        return exc.strerror or str(exc)
    except yaml.YAMLError as exc:
        return "the file is not YAML: " + " ".join(str(exc).split())
    if not isinstance(content, dict):
        return "the file holds no kubeconfig (no YAML mapping)"
    return None


class EventsApi:
    """List and watch core/v1 Events, in one namespace or in all of them."""

    def __init__(self, api_client: k8s_client.ApiClient, *, namespace: str) -> None:
        self.namespace = namespace
        self._core = k8s_client.CoreV1Api(api_client)

    async def list_events(
        self, *, limit: int, continue_token: str | None
    ) -> dict[str, Any]:
        """Return one page of the event list as a dict."""
        kwargs: dict[str, Any] = {"limit": limit}
        if continue_token:
            kwargs["_continue"] = continue_token
        timeout = aiohttp.ClientTimeout(
            total=LIST_TIMEOUT_SECONDS, sock_connect=CONNECT_TIMEOUT_SECONDS
        )
        async with self._request(kwargs, client_timeout=timeout) as response:
            try:
                body = await response.read()
            except _NETWORK_ERRORS as exc:
                raise ApiUnavailable(f"the event list broke off: {exc!r}") from exc
        try:
            page = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise ApiUnavailable(f"the event list is not JSON: {exc}") from exc
        if not isinstance(page, dict) or not isinstance(page.get("items"), list):
            raise ApiUnavailable("the event list has no items")
        return page

    @contextlib.asynccontextmanager
    async def watch_events(
        self, *, resource_version: str, timeout_seconds: int, idle_timeout: float
    ) -> AsyncIterator[AsyncIterator[bytes]]:
        """
        Open a watch from ``resource_version`` and yield its stream of chunks.

        ``timeout_seconds`` asks the server to end the stream cleanly; the
        ``idle_timeout`` notices a connection that went quiet without closing.
        """
        kwargs: dict[str, Any] = {
            "watch": True,
            "allow_watch_bookmarks": True,
            "resource_version": resource_version,
            "timeout_seconds": timeout_seconds,
        }
        timeout = aiohttp.ClientTimeout(
            sock_connect=CONNECT_TIMEOUT_SECONDS, sock_read=idle_timeout
        )
        async with self._request(kwargs, client_timeout=timeout) as response:
            yield _chunks(response)

    @contextlib.asynccontextmanager
    async def _request(
        self, kwargs: dict[str, Any], *, client_timeout: aiohttp.ClientTimeout
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        kwargs.update(_preload_content=False, _request_timeout=client_timeout)
        try:
            if self.namespace:
                result = await self._core.list_namespaced_event(
                    self.namespace, **kwargs
                )
            else:
                result = await self._core.list_event_for_all_namespaces(**kwargs)
        except _NETWORK_ERRORS as exc:
            raise ApiUnavailable(f"cannot reach the API server: {exc!r}") from exc

        # Without preloading, the generated method returns the raw response.
        response = cast(aiohttp.ClientResponse, result)
        try:
            if response.status != 200:
                raise await _status_error(response)
            yield response
        finally:
            response.release()


async def _chunks(response: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    try:
        async for chunk in response.content.iter_any():
            yield chunk
    except _NETWORK_ERRORS as exc:
        raise ApiUnavailable(f"the watch stream broke off: {exc!r}") from exc


async def _status_error(response: aiohttp.ClientResponse) -> ApiError:
    try:
        body = await response.read()
    except _NETWORK_ERRORS:
        body = b""
    return status_error(_parse_status(body), default_code=response.status)


def status_error(status: dict[str, Any], *, default_code: int) -> ApiError:
    """Turn a metav1.Status (from a response body or an ERROR frame) into an error."""
    code = status.get("code")
    if not isinstance(code, int):
        code = default_code
    reason = str(status.get("reason") or "")
    message = str(status.get("message") or "")
    error_type = ResourceGone if code == 410 else ApiError
    return error_type(code, reason, message)


def _parse_status(body: bytes) -> dict[str, Any]:
    try:
        status = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {"message": body[:200].decode(errors="replace")}
    return status if isinstance(status, dict) else {}
