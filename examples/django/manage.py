#!/usr/bin/env python
"""Run the example site's Django commands, e.g. ``python manage.py runserver``."""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "eventsite.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
