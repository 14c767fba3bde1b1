"""
A scripted Kubernetes API server for tests: real HTTP, scripted answers.

It serves ``/api/v1/events`` and ``/api/v1/namespaces/{ns}/events`` to the real
kubernetes-asyncio client. Each LIST or WATCH request takes the next step of
the script that fits it, so a test says exactly what the API server does,
including what real ones do badly: cut a stream inside a frame, answer 410 as
an ERROR frame, close a watch at once, or stall.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

GONE_STATUS = {
    "kind": "Status",
    "apiVersion": "v1",
    "metadata": {},
    "status": "Failure",
    "message": "The resourceVersion for the provided watch is too old.",
    "reason": "Expired",
    "code": 410,
}


@dataclass
class ListStep:
    """Answer the next LIST with these items, paged by the request's limit."""

    resource_version: str
    items: list[dict[str, Any]]
    expire_on_page: int | None = None  # 410 for this 1-based page, once
    page_delay: float = 0.0
    status: int = 200  # anything else: answer with a Status of this code


@dataclass
class WatchStep:
    """Answer the next WATCH, which must ask for ``from_rv``, with these frames."""

    from_rv: str
    frames: list[dict[str, Any] | bytes] = field(default_factory=list)
    # idle | close | reset | gone-410 | reset-inside-last-frame | stall-then-close
    end: str = "idle"
    repeat: bool = False  # answer the same way while the watch asks from from_rv
    cut_after_bytes: int = 60
    split_inside: str | None = None  # write frames in two reads, split inside this
    hold: float = 0.0  # seconds to stay open after the frames, before the end
    status: int = 200


@dataclass
class Request:
    kind: str  # "list" | "watch"
    params: dict[str, str]
    at: float


class ScriptedApiServer:
    """An aiohttp app that plays a script; start() it inside a running loop."""

    def __init__(self, script: list[ListStep | WatchStep]) -> None:
        self.script = list(script)
        self.requests: list[Request] = []
        self.mismatches: list[str] = []
        self._runner: web.AppRunner | None = None
        self._idle = asyncio.Event()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def lists(self) -> list[Request]:
        return [
            r for r in self.requests if r.kind == "list" and "continue" not in r.params
        ]

    @property
    def watches(self) -> list[Request]:
        return [r for r in self.requests if r.kind == "watch"]

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/api/v1/events", self._handle)
        app.router.add_get("/api/v1/namespaces/{namespace}/events", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        self._idle.set()
        if self._runner is not None:
            await self._runner.cleanup()

    def write_kubeconfig(self, path: Path) -> Path:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "scripted", "cluster": {"server": self.url}}],
            "users": [{"name": "tester", "user": {"token": "scripted-token"}}],
            "contexts": [
                {
                    "name": "scripted",
                    "context": {"cluster": "scripted", "user": "tester"},
                }
            ],
            "current-context": "scripted",
        }
        path.write_text(json.dumps(config))
        return path

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        params = dict(request.query)
        is_watch = params.get("watch") in ("true", "1", "True")
        self.requests.append(
            Request("watch" if is_watch else "list", params, time.monotonic())
        )
        if is_watch:
            return await self._watch(request, params)
        return await self._list(params)

    def _next(self, kind: type, params: dict[str, str]) -> ListStep | WatchStep | None:
        # The script is played in order. A repeating watch step answers every
        # watch from its resourceVersion and is passed by any other request.
        while self.script:
            step = self.script[0]
            if isinstance(step, WatchStep) and step.repeat:
                if kind is WatchStep and params.get("resourceVersion") == step.from_rv:
                    return step
                self.script.pop(0)
                continue
            if not isinstance(step, kind):
                return None
            return self.script.pop(0)
        return None

    async def _list(self, params: dict[str, str]) -> web.Response:
        token = params.get("continue")
        if token:
            step, offset = self._current_list, int(token)
        else:
            found = self._next(ListStep, params)
            if found is None:
                self.mismatches.append(f"unscripted LIST {params}")
                return _status(500, "InternalError", "the script has no LIST here")
            assert isinstance(found, ListStep)
            step, offset = found, 0
            self._current_list = step
        if step.status != 200:
            return _status(step.status, "Forbidden", "scripted failure")

        limit = int(params.get("limit") or 0) or len(step.items) or 1
        page = offset // limit + 1
        if step.expire_on_page == page:
            # The token expired: the client must list again, and gets this step anew.
            step.expire_on_page = None
            self.script.insert(0, step)
            return _status(
                410,
                "Expired",
                "The provided continue parameter is too old to display a consistent "
                "list result. You can start a new list without the continue parameter.",
            )
        if step.page_delay:
            await asyncio.sleep(step.page_delay)

        items = step.items[offset : offset + limit]
        more = offset + limit < len(step.items)
        body = {
            "kind": "EventList",
            "apiVersion": "v1",
            "metadata": {
                "resourceVersion": step.resource_version,
                **({"continue": str(offset + limit)} if more else {}),
            },
            "items": items,
        }
        return web.Response(body=json.dumps(body), content_type="application/json")

    async def _watch(
        self, request: web.Request, params: dict[str, str]
    ) -> web.StreamResponse:
        found = self._next(WatchStep, params)
        if found is None:
            self.mismatches.append(f"unscripted WATCH {params}")
            return await self._idle_response(request)
        assert isinstance(found, WatchStep)
        step = found
        if params.get("resourceVersion") != step.from_rv:
            self.mismatches.append(
                f"WATCH from {params.get('resourceVersion')!r}, script expects {step.from_rv!r}"
            )
        if step.status != 200:
            return _status(step.status, "InternalError", "scripted failure")

        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        lines = [_line(frame) for frame in step.frames]

        if step.end == "reset-inside-last-frame":
            for line in lines[:-1]:
                await response.write(line)
            await response.write(lines[-1][: step.cut_after_bytes])
            await _abort(request)
            return response

        payload = b"".join(lines)
        if step.split_inside and payload:
            cut = payload.index(step.split_inside.encode()) + 1
            await response.write(payload[:cut])
            await asyncio.sleep(0.05)
            await response.write(payload[cut:])
        elif payload:
            await response.write(payload)

        if step.hold:
            await asyncio.sleep(step.hold)
        if step.end == "gone-410":
            await response.write(_line({"type": "ERROR", "object": GONE_STATUS}))
        elif step.end == "reset":
            await _abort(request)
            return response
        elif step.end == "idle":
            await self._idle.wait()
        await response.write_eof()
        return response

    async def _idle_response(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        await self._idle.wait()
        return response

    _current_list: ListStep


def _line(frame: dict[str, Any] | bytes) -> bytes:
    if isinstance(frame, bytes):
        return frame
    return json.dumps(frame, ensure_ascii=False).encode() + b"\n"


def _status(code: int, reason: str, message: str) -> web.Response:
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    return web.Response(
        status=code, body=json.dumps(body), content_type="application/json"
    )


async def _abort(request: web.Request) -> None:
    # Let the kernel send what was written, then drop the connection with no
    # end-of-stream marker: the client sees a payload cut short.
    await asyncio.sleep(0.05)
    transport = request.transport
    assert transport is not None
    transport.abort()
