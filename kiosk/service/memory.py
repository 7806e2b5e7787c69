"""Give start-up's garbage back to the kernel once the daemon is ready, and keep it given back.

Start-up allocates much that it drops at once (module import temporaries, the parsed TOML,
rendered earcons' intermediates, the index's first pages); glibc keeps the freed heap pages
mapped, so they count in RSS for the daemon's whole life. One collection and a
``malloc_trim(0)`` after READY return them (~0.5-1 MB measured). Not ``gc.freeze()``: a
SIGHUP reload drops the old pipeline, and frozen cycles would never be collected.

Before that trim, glibc's malloc thresholds are pinned (``mallopt``). glibc starts by
giving a buffer of 128 KiB or more its own mapping, unmapped when freed, but each free of
such a buffer larger than the current threshold raises the threshold to that size (up to
32 MiB) and the trim threshold to twice that. The embedder's first query frees a 6.25 MiB
buffer: in a settled ``kiosk run`` the thresholds were 6.25 and 12.5 MiB (gdb on glibc's
``mp_``), so buffers up to 6.25 MiB came from the heaps and up to 12.5 MiB of a heap's
freed top stayed mapped. The soak's single steps of exactly 0.5 MB of anonymous memory were
the main [heap] growing by 512 KiB around such buffers (the WAV microphone's 512 KiB decode
blocks, asyncio's 256 KiB socket reads: ``bench/soak_malloc.py``), and a thread arena's
heap held 28.0 MB of anonymous memory against 14.7 MB with the thresholds pinned. Pinned at
glibc's starting value, such buffers come and go as their own mappings.

Libraries that import importlib.metadata only to never use it are imported through
:func:`import_without_metadata` (gpiozero, websockets).
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import importlib
import logging
import sys
import types
from typing import Any

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


def trim_heap() -> None:
    """Return freed C heap to the system after a big transient allocation (a model or the
    index's vectors loaded, or unloaded): glibc keeps it otherwise, and another thread's
    arena cannot reuse it."""
    # Not glibc: the memory is reused by the process, just not returned.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def release_startup_memory() -> None:
    gc.collect()
    try:
        libc = ctypes.CDLL(None)
        pin_malloc_thresholds(libc)  # glibc only; musl and others lack mallopt/malloc_trim
        libc.malloc_trim(0)
    except (OSError, AttributeError) as exc:
        log.debug("mallopt/malloc_trim unavailable: %s", exc)


def import_without_metadata(
    module: str,
    stand_in_name: str,
    attrs: dict[str, Any] | None = None,
    *,
    empty_stand_ins: tuple[str, ...] = (),
    retry_package: str | None = None,
) -> types.ModuleType:
    """Import ``module`` while ``sys.modules[stand_in_name]`` is a stand-in for importlib.metadata.

    Libraries that bind importlib.metadata (or the ``importlib_metadata`` backport) at import
    time but never use it in a release keep it, with email, zipfile and csv, resident for the
    daemon's whole life (~0.9 MB each for gpiozero and websockets, ad hoc lean3/lean4). The
    stand-in is a module holding ``attrs`` and is removed again afterwards, so a later real
    import gets the real module. It is not put in when importlib.metadata (or
    ``stand_in_name``) is already imported; nothing is when ``module`` already is.

    ``empty_stand_ins``: other modules ``module`` imports but kiosk's use of it never touches
    (each stood in by an empty module, unless already imported).

    With ``retry_package``, an import that fails with the stand-ins (a build that does use
    them) drops that package's modules and is imported again as it is; without it the
    failure is the caller's (a pin factory whose driver is missing must not pull the real
    importlib.metadata in on its way out).
    """
    if module in sys.modules:
        return importlib.import_module(module)
    stand_ins: dict[str, types.ModuleType] = {}
    if stand_in_name not in sys.modules and "importlib.metadata" not in sys.modules:
        stand_ins[stand_in_name] = types.ModuleType(stand_in_name, "kiosk: not imported")
        for name, value in (attrs or {}).items():
            setattr(stand_ins[stand_in_name], name, value)
    for name in empty_stand_ins:
        if name not in sys.modules:
            stand_ins[name] = types.ModuleType(name, "kiosk: not imported")
    sys.modules.update(stand_ins)
    try:
        return importlib.import_module(module)
    except Exception:
        if retry_package is None or not stand_ins:
            raise
        prefix = retry_package + "."
        for name in [m for m in sys.modules if m == retry_package or m.startswith(prefix)]:
            del sys.modules[name]
        _remove(stand_ins)
        return importlib.import_module(module)
    finally:
        _remove(stand_ins)


def _remove(stand_ins: dict[str, types.ModuleType]) -> None:
    for name, stand_in in stand_ins.items():
        if sys.modules.get(name) is stand_in:
            del sys.modules[name]


def import_asyncio_without_openssl() -> None:
    """Import asyncio and hashlib without OpenSSL: for ``kiosk run`` only, before anything else.

    asyncio imports ``ssl`` (libssl, libcrypto) and hashlib ``_hashlib`` (libcrypto) at import
    time: ~4 MB resident in the daemon from its start (ad hoc, idle5: 46.5 -> 42.5 MB before the
    first question). The daemon holds no TLS itself: its Realtime websocket lives in a child
    process (:mod:`kiosk.net.link_process`), and hashlib's SHA-1/SHA-256 come from CPython's
    own modules. Blocked only while the two import, so a later ``import ssl`` (urllib for
    Azure AI Search, websockets for the local engine) gets the real module; asyncio's own TLS
    (``create_connection(ssl=...)``) stays unavailable in this process.
    """
    if "asyncio" in sys.modules or "hashlib" in sys.modules:
        return
    blocked = [name for name in ("ssl", "_hashlib") if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment]  # "import x" raises ImportError
    try:
        importlib.import_module("asyncio")
        importlib.import_module("hashlib")
    finally:
        for name in blocked:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]
