"""Text from outside, made safe to print or log: one line, no control characters, bounded.

Anything a server, a document or a file system hands us (error codes and messages,
transcripts, file names, titles) may carry newlines that forge log lines, terminal escapes
(ESC) that recolour or rewrite the screen, bidi overrides that reorder what is shown, lone
surrogates that make the journal writer raise, or megabytes of text. :func:`printable` is the
one function every printer and logger of such text goes through. Stdlib only: the pure core
may use it too.
"""

from __future__ import annotations

import re

# Tab, newline, carriage return and the Unicode line/paragraph separators become a space.
_BREAKS = re.compile(r"[\t\n\r\x0b\x0c\x85\u2028\u2029]")
# Dropped: C0/C1 controls and DEL (ESC starts terminal sequences), the soft hyphen and
# invisible format characters (zero-width, bidi marks, embeddings, overrides and isolates,
# BOM), and lone surrogates (not encodable: the journal or terminal writer would raise).
_INVISIBLE = re.compile(
    "[\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f\u00ad\u061c\u180e\u200b-\u200f"
    "\u202a-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb\ud800-\udfff]"
)
ELLIPSIS = "…"


def printable(text: str, max_chars: int | None = None) -> str:
    """``text`` as one printable line: breaks become spaces, control and invisible format
    characters are dropped; longer than ``max_chars``: cut, with ``…(+N chars)``.

    Linear in ``min(len(text), max_chars)``: a 200 KB error code costs no more than its cap.
    """
    cut = 0
    if max_chars is not None and len(text) > max_chars:
        cut = len(text) - max_chars
        text = text[:max_chars]
    out = _INVISIBLE.sub("", _BREAKS.sub(" ", text))
    return f"{out}{ELLIPSIS}(+{cut} chars)" if cut else out
