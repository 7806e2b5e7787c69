"""kiosk/core stays pure: no I/O, clocks, randomness or adapter imports.

Two checks: every ``import`` statement in ``kiosk/core/*.py`` (found with ``ast``, including
imports inside functions and relative ones), and what importing the whole core actually
loads in a fresh interpreter (catches a forbidden module pulled in through a helper).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[2] / "kiosk" / "core"
CORE_FILES = sorted(CORE.glob("*.py"))

FORBIDDEN_STDLIB = ("asyncio", "socket", "threading", "time", "random", "os")
FORBIDDEN_THIRD_PARTY = ("websockets", "pyaudio", "gpiozero")
FORBIDDEN_KIOSK = tuple(
    f"kiosk.{name}" for name in ("audio", "net", "rag", "hardware", "service", "app", "testing")
)
FORBIDDEN = FORBIDDEN_STDLIB + FORBIDDEN_THIRD_PARTY + FORBIDDEN_KIOSK


def imported_modules(path: Path) -> list[str]:
    """Every module ``path`` imports, as absolute dotted names (``from x import y`` gives
    both ``x`` and ``x.y``, since ``y`` may be a module)."""
    package = "kiosk.core"
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            names.append(module)
            names += [f"{module}.{alias.name}" for alias in node.names]
    return names


def is_forbidden(module: str) -> bool:
    return any(module == bad or module.startswith(bad + ".") for bad in FORBIDDEN)


def test_core_has_modules_to_check() -> None:
    assert {p.name for p in CORE_FILES} >= {
        "turns.py",
        "realtime.py",
        "endpointing.py",
        "events.py",
    }


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: p.name)
def test_core_module_imports_nothing_forbidden(path: Path) -> None:
    bad = [m for m in imported_modules(path) if is_forbidden(m)]
    assert bad == [], f"{path.name} imports {bad}: kiosk/core must stay sans-I/O"


@pytest.mark.parametrize(
    ("source", "found"),
    [
        ("import time", True),
        ("import os.path", True),
        ("from asyncio import sleep", True),
        ("def f():\n    import random\n", True),
        ("from kiosk.net import policy", True),
        ("from kiosk import app", True),
        ("from .. import testing", True),
        ("from kiosk.core import events", False),
        ("import timeit", False),
        ("from kiosk.config import VadSettings", False),
    ],
)
def test_import_check_sees_forbidden_imports(tmp_path: Path, source: str, found: bool) -> None:
    path = tmp_path / "probe.py"
    path.write_text(source + "\n")
    assert any(is_forbidden(m) for m in imported_modules(path)) is found


def test_importing_core_loads_no_adapter_or_network_module() -> None:
    modules = [f"kiosk.core.{p.stem}" for p in CORE_FILES if p.stem != "__init__"]
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in modules)
        + "print('\\n'.join(sorted(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    ).stdout.split()
    # os, time, threading (and random, via numpy on some versions) may be loaded by others.
    loaded_only_by_choice = ("asyncio", "socket", *FORBIDDEN_THIRD_PARTY, *FORBIDDEN_KIOSK)
    bad = [m for m in out if any(m == b or m.startswith(b + ".") for b in loaded_only_by_choice)]
    assert bad == []
