"""Give start-up's garbage back to the kernel once the daemon is ready.

Start-up allocates much that it drops at once (module import temporaries, the parsed TOML,
rendered earcons' intermediates, the index's first pages); glibc keeps the freed heap pages
mapped, so they count in RSS for the daemon's whole life. One collection and a
``malloc_trim(0)`` after READY return them (~0.5-1 MB measured). Not ``gc.freeze()``: a
SIGHUP reload drops the old pipeline, and frozen cycles would never be collected.
"""

from __future__ import annotations

import ctypes
import gc
import logging

log = logging.getLogger(__name__)


def release_startup_memory() -> None:
    gc.collect()
    try:
        ctypes.CDLL(None).malloc_trim(0)  # glibc only; musl and others lack it
    except (OSError, AttributeError) as exc:
        log.debug("malloc_trim unavailable: %s", exc)
