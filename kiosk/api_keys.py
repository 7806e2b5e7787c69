"""API keys: the rule for a key's value, and every form of a key that output must not show.

Owns: :func:`clean_api_key` (surrounding whitespace trimmed; then printable ASCII, nothing
inside that is whitespace, a control character or a quote mark; else a one-line
:class:`~kiosk.errors.ConfigError` that names the variable and never the value), and
:func:`secrets_to_redact` (each configured key as given and as cleaned, plus its printable
runs, so a message that shows a key next to a stray ``\\r`` or inside smart quotes is still
masked). The CLI installs that redaction before any command runs
(:func:`kiosk.service.logs.install_redaction`).

Why trim at all: a key file edited on Windows ends in ``\\r\\n``; systemd and shells keep
the ``\\r``, and the HTTP header built from it is refused by the websocket library, whose
error text then carries the key. Stdlib only.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Iterable, Mapping
from pathlib import Path

from kiosk.errors import ConfigError

SECRET_NAMES = ("OPENAI_API_KEY", "AZURE_OPENAI_API_KEY", "AZURE_SEARCH_API_KEY")
# Where install.sh writes the keys; the unit hands them over with LoadCredential=.
INSTALL_CREDENTIALS_DIR = Path("/etc/kiosk/credentials")

# Trimmed around a key: whitespace (str.strip) and a byte-order mark from Windows editors.
_TRIM = "\ufeff"
# Typographic quotes an office program or a chat window puts around pasted text.
SMART_QUOTES = frozenset("\u2018\u2019\u201a\u201b\u201c\u201d\u201e\u201f\u00ab\u00bb\u2039\u203a")
_PRINTABLE_RUN = re.compile(r"[!-~]+")  # printable ASCII without space


def key_problem(value: str) -> str | None:
    """What is wrong with an (already trimmed) key value, without quoting any of it."""
    for position, ch in enumerate(value, 1):
        if ch in SMART_QUOTES:
            name = unicodedata.name(ch, "quotation mark").lower()
            return (
                f"contains a typographic quote (U+{ord(ch):04X} {name}) at character "
                f"{position}: paste the key without quotes"
            )
        if not ch.isascii():
            name = unicodedata.name(ch, "unnamed").lower()
            return f"contains a non-ASCII character (U+{ord(ch):04X} {name}) at character {position}"
        if ch.isspace():
            return f"contains whitespace at character {position}"
        if not ch.isprintable():
            return f"contains a control character (0x{ord(ch):02X}) at character {position}"
        if ch in "\"'" and 1 < position < len(value):
            return f"contains a quote mark at character {position}"
    if len(value) >= 2 and value[0] in "\"'" and value[-1] == value[0]:
        return "is wrapped in quotes: remove them"
    if value[:1] in ("\"", "'") or value[-1:] in ("\"", "'"):
        return "starts or ends with a quote mark: remove it"
    return None


def clean_api_key(variable: str, raw: str) -> str:
    """``raw`` without surrounding whitespace; raises ConfigError naming ``variable``.

    Returns "" for an empty or all-whitespace value (the caller decides if it is needed).
    """
    value = raw.strip().strip(_TRIM).strip()
    problem = key_problem(value)
    if problem is not None:
        raise ConfigError(variable, f"{problem} (value not shown)")
    return value


def redaction_forms(raw: str) -> set[str]:
    """Strings to mask for a key given as ``raw``: as given, trimmed, and its printable runs
    (``sk-abc`` from ``“sk-abc”``); runs shorter than 8 characters are left out."""
    forms = {raw, raw.strip(), raw.strip().strip(_TRIM).strip()}
    for run in _PRINTABLE_RUN.findall(raw):
        forms.add(run)
        forms.add(run.strip("\"'"))
    return {f for f in forms if len(f) >= 8}


def _read_key_file(path: Path) -> str | None:
    try:
        return path.read_bytes().decode("utf-8", "replace")
    except OSError:
        return None


def secrets_to_redact(
    env: Mapping[str, str] | None = None,
    directories: Iterable[Path] = (INSTALL_CREDENTIALS_DIR,),
) -> set[str]:
    """Every form of every key this process may use: ``env`` (default ``os.environ``), the
    files in ``$CREDENTIALS_DIRECTORY`` and in ``directories`` (``kiosk check`` reads
    install.sh's directory when run by hand). Unreadable files are skipped."""
    env = os.environ if env is None else env
    values = [env.get(name, "") for name in SECRET_NAMES]
    dirs = [Path(env["CREDENTIALS_DIRECTORY"])] if env.get("CREDENTIALS_DIRECTORY") else []
    for directory in [*dirs, *directories]:
        for name in SECRET_NAMES:
            for candidate in (name, name.lower()):
                text = _read_key_file(directory / candidate)
                if text is not None:
                    values.append(text)
    out: set[str] = set()
    for value in values:
        if value:
            out |= redaction_forms(value)
    return out
