"""release_startup_memory pins glibc's malloc thresholds (kiosk/service/memory.py).

Each case runs in a fresh interpreter: the thresholds are process-wide, and the point is
what glibc does after a large buffer was freed. A chunk's size word has bit 1 (IS_MMAPPED)
set when glibc gave it its own mapping.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(
    sys.platform != "linux" or platform.libc_ver()[0] != "glibc", reason="glibc's malloc only"
)

PROBE = """
import ctypes, sys
from kiosk.service.memory import release_startup_memory

libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]

def own_mapping(n):
    p = libc.malloc(n)
    size_word = ctypes.c_size_t.from_address(p - ctypes.sizeof(ctypes.c_size_t)).value
    libc.free(p)
    return bool(size_word & 2)

def after_big_free():
    libc.free(libc.malloc(4 << 20))  # glibc raises its mmap threshold to ~4 MiB here
    return own_mapping(512 << 10)

before = after_big_free()
if sys.argv[1] == "release":
    release_startup_memory()
print(before, after_big_free())
"""


def probe(mode: str) -> list[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    env.pop("GLIBC_TUNABLES", None)
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode], env=env, capture_output=True, text=True, check=True
    )
    return out.stdout.split()


def test_glibc_raises_the_threshold_after_a_big_free() -> None:
    # What the fix is for: left alone, a 512 KiB buffer after a 4 MiB one comes from the heap.
    assert probe("alone") == ["False", "False"]


def test_release_pins_the_threshold() -> None:
    # After release_startup_memory the same buffer has its own mapping, even after a big free.
    assert probe("release") == ["False", "True"]
