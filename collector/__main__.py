"""
Run the collector: ``python -m collector --help``.

Exit codes: 0 after SIGTERM or SIGINT, 1 when a task crashed, 2 for settings
or cluster credentials that cannot be used.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from types import FrameType

import orjson

from collector.errors import ConfigError
from collector.settings import Settings, parse_settings

logger = logging.getLogger("collector")

EXIT_OK = 0
EXIT_CRASHED = 1
EXIT_BAD_SETTINGS = 2

# Standard attributes of every LogRecord; anything else came in through ``extra``.
_RECORD_FIELDS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the ``extra`` fields kept as fields."""

    def format(self, record: logging.LogRecord) -> str:
        fields = {
            "time": self.formatTime(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields.update(
            (key, value)
            for key, value in vars(record).items()
            if key not in _RECORD_FIELDS
        )
        if record.exc_info:
            fields["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(fields, default=str).decode()


def configure_logging(settings: Settings) -> None:
    """Log to stderr in the chosen format; quiet the libraries below INFO."""
    handler = logging.StreamHandler()
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
        )
    logging.basicConfig(level=settings.log_level, handlers=[handler], force=True)
    if settings.log_level == "DEBUG":
        # kubernetes-asyncio logs whole response bodies at debug.
        logging.getLogger("kubernetes_asyncio").setLevel(logging.INFO)


def main() -> int:
    """Parse the settings, run until a signal, and return the exit code."""
    # Until the event loop takes the signals over, a SIGTERM or SIGINT (docker
    # stop right after start) must still mean "stop", exit 0.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _stop_while_starting)
    settings = parse_settings()
    configure_logging(settings)
    try:
        # Imported here, after the handlers: kubernetes-asyncio takes a second.
        from collector.app import run

        asyncio.run(run(settings))
    except ConfigError as exc:
        logger.error("%s", exc)
        return EXIT_BAD_SETTINGS
    except Exception:
        logger.exception("The collector crashed.")
        return EXIT_CRASHED
    return EXIT_OK


def _stop_while_starting(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(EXIT_OK)


if __name__ == "__main__":
    sys.exit(main())
