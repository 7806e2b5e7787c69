"""The rule for an API key's value and the forms of it that output must mask."""

from __future__ import annotations

import io

import pytest

from kiosk.api_keys import clean_api_key, redaction_forms, secrets_to_redact
from kiosk.config import load_config
from kiosk.errors import ConfigError
from kiosk.service.logs import RedactingStream, SecretRedactingFilter

KEY = "sk-proj-Abc123_def-456"


@pytest.mark.parametrize("raw", [KEY, f"{KEY}\r", f"  {KEY}\r\n", f"\ufeff{KEY}\n", f"\t{KEY}"])
def test_surrounding_whitespace_and_a_bom_are_trimmed(raw: str) -> None:
    assert clean_api_key("OPENAI_API_KEY", raw) == KEY
    cfg = load_config("", {"OPENAI_API_KEY": raw})
    assert cfg.api_key.reveal() == KEY


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (f"\u201c{KEY}\u201d", "typographic quote (U+201C"),
        (f"\u2018{KEY}", "typographic quote (U+2018"),
        (f'"{KEY}"', "wrapped in quotes"),
        (f"{KEY}'", "ends with a quote mark"),
        (KEY[:5] + " " + KEY[5:], "whitespace at character 6"),
        (KEY[:5] + "\u00a0" + KEY[5:], "non-ASCII character (U+00A0"),
        (KEY[:5] + "\x00" + KEY[5:], "control character (0x00)"),
        (KEY + "é", "non-ASCII character (U+00E9"),
    ],
)
def test_a_bad_key_is_one_line_naming_the_variable_never_the_value(raw: str, problem: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config("", {"AZURE_OPENAI_API_KEY": raw}, require_key=False)
    text = str(err.value)
    assert text.startswith("config: AZURE_OPENAI_API_KEY: ") and problem in text, text
    assert "(value not shown)" in text and "\n" not in text
    assert KEY[:8] not in text and KEY[-8:] not in text


def test_an_all_whitespace_key_counts_as_missing() -> None:
    with pytest.raises(ConfigError, match="missing for provider 'openai'"):
        load_config("", {"OPENAI_API_KEY": " \r\n"})


def test_redaction_forms_cover_the_key_inside_quotes_and_around_a_stray_cr() -> None:
    forms = redaction_forms(f"\u201c{KEY}\r\u201d")
    redactor = SecretRedactingFilter(forms)
    for shown in (f"Bearer {KEY}\r", f"Bearer \u201c{KEY}\u201d", repr(f"{KEY}\r"), KEY):
        assert KEY not in redactor.redact(shown)


def test_secrets_to_redact_reads_env_and_credential_files(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "azure_search_api_key").write_text("search-key-123456\r\n")
    found = secrets_to_redact(
        {"OPENAI_API_KEY": KEY, "CREDENTIALS_DIRECTORY": str(tmp_path)}, directories=()
    )
    assert KEY in found and "search-key-123456" in found


def test_redacting_stream_masks_every_write() -> None:
    out = io.StringIO()
    stream = RedactingStream(out, SecretRedactingFilter([KEY]))
    print(f"error: {KEY}!", file=stream)  # type: ignore[arg-type]
    stream.writelines([f"{KEY}\n"])
    assert out.getvalue() == "error: ***!\n***\n"
