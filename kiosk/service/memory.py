"""Give start-up's garbage back to the kernel once the daemon is ready, and keep it given back.

Start-up allocates much that it drops at once (module import temporaries, the parsed TOML,
rendered earcons' intermediates, the index's first pages); glibc keeps the freed heap pages
mapped, so they count in RSS for the daemon's whole life. One collection and a
``malloc_trim(0)`` after READY return them (~0.5-1 MB measured). Not ``gc.freeze()``: a
SIGHUP reload drops the old pipeline, and frozen cycles would never be collected.

Before that trim, glibc's malloc thresholds are pinned (``mallopt``). glibc starts with
buffers of 128 KiB or more in their own mmap, returned to the kernel when freed, but each
free of such a buffer larger than the current threshold raises the threshold to its size
(up to 32 MiB) and the heap's trim threshold to twice that. In a settled ``kiosk run`` the
threshold had risen to 6.25 MiB (trim 12.5 MiB; gdb on glibc's ``mp_``), so every buffer
up to 6.25 MiB a turn needs came from the heap, and the heap kept its free top: the soak's
single steps of exactly 0.5 MB of anonymous memory between turns were [heap] growing by
0.5 MiB (``bench/soak_malloc.py``). With the thresholds pinned at glibc's starting value,
such buffers come and go as their own mappings and the heap stays where it was.
"""

from __future__ import annotations

import ctypes
import gc
import logging

log = logging.getLogger(__name__)

# <malloc.h>
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
# glibc's own starting value for both; setting them also turns the dynamic raise off.
MMAP_THRESHOLD_BYTES = 128 * 1024
TRIM_THRESHOLD_BYTES = 128 * 1024


def pin_malloc_thresholds(libc: ctypes.CDLL) -> bool:
    """Fix glibc's mmap and trim thresholds (True if glibc took both)."""
    ok = libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1
    return libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES) == 1 and ok


def release_startup_memory() -> None:
    gc.collect()
    try:
        libc = ctypes.CDLL(None)
        pin_malloc_thresholds(libc)  # glibc only; musl and others lack mallopt/malloc_trim
        libc.malloc_trim(0)
    except (OSError, AttributeError) as exc:
        log.debug("mallopt/malloc_trim unavailable: %s", exc)
