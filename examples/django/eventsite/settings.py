"""
Settings of the example site: one page, the latest Kubernetes events.

Everything that differs between compose and the tests comes from the
environment. There is no database and no installed app: the page reads the
collector and nothing else. The client finds the socket in
``$EVENT_COLLECTOR_SOCKET`` by itself.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent

# An example's placeholder: a real site takes its key from a secret store.
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-only-not-a-secret")
DEBUG = os.environ.get("DJANGO_DEBUG") == "1"
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1").split(",")

ROOT_URLCONF = "eventsite.urls"
INSTALLED_APPS: list[str] = []
MIDDLEWARE = ["django.middleware.security.SecurityMiddleware"]
DATABASES: dict[str, Any] = {}
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": False,
        "OPTIONS": {},
    }
]
USE_TZ = True
TIME_ZONE = "UTC"

EVENTS_ON_PAGE = 100
# A page that waits on a stuck collector ties up a worker; give up and say so.
EVENT_COLLECTOR_TIMEOUT = float(os.environ.get("EVENT_COLLECTOR_TIMEOUT", "2.0"))
