"""Module structure the refactors promised: no import circle between the CLI and the daemon,
and the connection's life kept out of the turn pipeline."""

from __future__ import annotations

from pathlib import Path

from .test_core_imports import imported_modules

KIOSK = Path(__file__).resolve().parents[2] / "kiosk"


def kiosk_imports(relative: str) -> set[str]:
    return {m for m in imported_modules(KIOSK / relative) if m.startswith("kiosk.")}


def test_daemon_does_not_import_the_cli() -> None:
    # The CLI starts the daemon; both load settings through kiosk.settings.
    assert not {m for m in kiosk_imports("daemon.py") if m.split(".")[:2] == ["kiosk", "cli"]}
    assert "kiosk.settings" in kiosk_imports("daemon.py")
    assert "kiosk.settings" in kiosk_imports("cli.py")


def test_pipeline_leaves_the_websocket_and_the_policy_to_the_link() -> None:
    imports = kiosk_imports("app.py")
    assert "kiosk.net.link" in imports
    # app.py may name the types (seam, reload hand-over) but never calls into them itself.
    source = (KIOSK / "app.py").read_text(encoding="utf-8")
    for name in ("WebsocketLink", "record_attempt(", "record_closed(", "should_rollover("):
        assert name not in source, name


def test_pipeline_and_link_stay_near_500_lines() -> None:
    for relative in ("app.py", "net/link.py", "tool_calls.py", "settings.py"):
        lines = (KIOSK / relative).read_text(encoding="utf-8").count("\n")
        assert lines <= 550, f"{relative}: {lines} lines"  # ~500, with headroom for small edits
