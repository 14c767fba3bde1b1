"""
Give memory the collector no longer uses back to the operating system.

Listing 100k events parses and frees hundreds of MiB of small objects. glibc
keeps the freed pages in its arenas, so without a trim the RSS stays at the
list's peak for the life of the process, and the container's memory limit is
measured against RSS.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging

logger = logging.getLogger(__name__)


def release_free_memory() -> None:
    """Ask the C allocator to return free pages; a no-op where that is not glibc."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        return ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        logger.debug("No malloc_trim in %s; freed memory stays with the process.", name)
        return None
