"""
The page of latest events, in the columns of ``kubectl get events``.

The collector is a separate process the page depends on, so its absence is a
state to expect, not a bug: every ``client.CollectorError`` (no socket, no
answer in time, a refused request) becomes a 503 that says so, never a 500.
"""

from __future__ import annotations

import datetime
import logging
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

import client

logger = logging.getLogger(__name__)

# Seconds a browser or a load balancer should wait before asking again.
RETRY_AFTER_SECONDS = 5


def latest_events(request: HttpRequest) -> HttpResponse:
    """Render the newest events first, or a 503 if the collector cannot answer."""
    try:
        events = client.latest(
            settings.EVENTS_ON_PAGE, timeout=settings.EVENT_COLLECTOR_TIMEOUT
        )
    except client.CollectorError as exc:
        logger.warning("The event collector did not answer: %s", exc)
        response = render(request, "events.html", {"error": str(exc)}, status=503)
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response

    now = datetime.datetime.now(datetime.UTC)
    rows = [table_row(event, now=now) for event in events]
    return render(request, "events.html", {"rows": rows, "synced": events.synced})


def table_row(event: client.EventRecord, *, now: datetime.datetime) -> dict[str, Any]:
    """Return the cells of one event, with kubectl's ``kind/name`` object."""
    involved = event["object"]
    target = involved["kind"].lower()
    if involved["name"]:
        target += "/" + involved["name"]
    return {
        "namespace": event["namespace"],
        "last_seen": age(event["last_seen"], now=now),
        "last_seen_at": event["last_seen"],
        "type": event["type"],
        "reason": event["reason"],
        "object": target,
        "message": event["message"],
        "count": event["count"],
        "deleted": event["deleted"],
    }


def age(moment: str, *, now: datetime.datetime) -> str:
    """Return how long ago an RFC 3339 time was, coarsely, as kubectl prints it."""
    try:
        then = datetime.datetime.fromisoformat(moment)
    except ValueError:
        return "<unknown>"
    seconds = max(0, int((now - then).total_seconds()))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 180 * 60:
        return f"{seconds // 60}m"
    if seconds < 48 * 3600:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"
