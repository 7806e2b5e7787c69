"""kiosk.textsafe.printable: outside text made one bounded, printable line."""

from __future__ import annotations

import pytest

from kiosk.textsafe import printable


@pytest.mark.parametrize(
    ("raw", "safe"),
    [
        ("plain text, 日本語", "plain text, 日本語"),
        ("a\nb\r\nc\td", "a b  c d"),
        ("\x1b[2J\x1b[31mred", "[2J[31mred"),  # ESC gone: no terminal sequence survives
        ("x\x00y\x07z\x7f\x9b", "xyz"),
        ("evil\u202egnp.exe", "evilgnp.exe"),  # bidi override
        ("line\u2028sep\x85nel", "line sep nel"),
        ("lone \ud800 surrogate", "lone  surrogate"),
        ("zero\u200bwidth\ufeff", "zerowidth"),
    ],
)
def test_control_and_invisible_characters_are_removed(raw: str, safe: str) -> None:
    assert printable(raw) == safe


def test_long_text_is_cut_and_says_how_much_was_cut() -> None:
    out = printable("E\n" * 100_000, 10)
    assert out == "E E E E E " + "…(+199990 chars)"
    assert printable("short", 10) == "short"


def test_a_forged_log_line_stays_on_one_line() -> None:
    forged = "quota\n2026-12-02 12:00:00 INFO kiosk.app: visitor authenticated\r"
    assert "\n" not in printable(forged) and "\r" not in printable(forged)
