"""What one doctor check found, and how ``kiosk check`` prints it (✓/✗, one line each)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TextIO


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    ok: bool
    detail: str
    hint: str = ""
    skipped: bool = False


def ok(name: str, detail: str) -> CheckResult:
    return CheckResult(name, True, detail)


def fail(name: str, detail: str, hint: str = "") -> CheckResult:
    return CheckResult(name, False, detail, hint)


def not_run(name: str, why: str) -> CheckResult:
    return CheckResult(name, True, f"skipped ({why})", skipped=True)


def one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


class Printer:
    """Writes result lines; falls back to ASCII marks on a terminal that cannot show ✓."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        try:
            "✓✗→".encode(getattr(out, "encoding", None) or "utf-8")
            self._marks = ("✓", "✗", "-", "→")
        except (UnicodeEncodeError, LookupError):
            self._marks = ("OK  ", "FAIL", "-   ", "->")

    def result(self, r: CheckResult) -> None:
        ok, bad, skip, arrow = self._marks
        mark = skip if r.skipped else ok if r.ok else bad
        line = f"{mark} {r.name}: {r.detail}"
        if r.hint and not r.ok:
            line += f"  {arrow} fix: {r.hint}"
        self._out.write(line + "\n")
        self._out.flush()

    def note(self, text: str) -> None:
        self._out.write(f"    {text}\n")
