"""
Errors the client raises.

A Django view needs one ``except CollectorError``; the leaves say what went wrong
when the caller wants to react differently (a 503 for an absent collector, a
retry for a timeout)::

    CollectorError
    ├── CollectorUnavailable   no socket, connection refused or closed
    ├── CollectorTimeout       no complete answer within the timeout
    ├── ProtocolError          the answer was not the protocol's JSON
    └── RequestError           the collector answered with an error code
"""

from __future__ import annotations


class CollectorError(Exception):
    """The base of every error the client raises."""


class CollectorUnavailable(CollectorError):
    """The collector's socket is missing, refuses connections or hung up."""


class CollectorTimeout(CollectorError):
    """The collector did not answer within the timeout."""


class ProtocolError(CollectorError):
    """The collector's answer could not be read as a protocol response."""


class RequestError(CollectorError):
    """
    The collector refused the request with a stable error code.

    ``code`` is one of ``client.protocol.ErrorCode``; ``message`` is for people.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
