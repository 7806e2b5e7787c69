"""Turn one file's bytes into titled sections of plain text (.md, .txt, .html, .pdf).

Owns format detection and decoding. It does not chunk (``kiosk.rag.chunking``) or
touch the index. Every failure is an :class:`UnreadableFile` whose message is one line
naming the file, so ingest can warn and carry on with the rest.

HTML uses the stdlib parser (no dependency): headings start sections, navigation
blocks (``<nav>``, DocBook's ``navheader``/``navfooter``/``toc``) and scripts are
dropped, and so is text a browser would not show (``hidden``, ``aria-hidden="true"``,
inline ``display:none``/``visibility:hidden``): a page's invisible text must not reach
the model as if a visitor could read it. PDF uses ``pypdf`` (optional extra
``kiosk[pdf]``), one section per page.

Hostile files: every parser here is linear in the input (no backtracking regexes, no
re-scans; see :func:`_tame_html`), and each long loop checks a :class:`TimeBudget`, so
one crafted file costs at most its budget and becomes a one-line warning.
"""

from __future__ import annotations

import html.parser
import io
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

SUPPORTED_SUFFIXES = (".md", ".markdown", ".txt", ".html", ".htm", ".pdf")


class UnreadableFile(Exception):
    """This file cannot be ingested; ``str()`` is one line naming it."""


class TimeBudget:
    """A per-document time limit that long loops check cooperatively.

    ``check()`` raises :class:`UnreadableFile` once ``seconds`` have passed since the
    budget was made. Cheap enough to call every few hundred lines.
    """

    def __init__(
        self, name: str, seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.name = name
        self.seconds = seconds
        self._clock = clock
        self._deadline = clock() + seconds

    def check(self) -> None:
        if self._clock() > self._deadline:
            raise UnreadableFile(
                f"{self.name}: took longer than the {self.seconds:g} s budget "
                "for one document, skipped"
            )


_NO_BUDGET = TimeBudget("", float("inf"))


@dataclass(frozen=True, slots=True)
class Section:
    heading: str  # "" for text before the first heading
    text: str


@dataclass(frozen=True, slots=True)
class Document:
    title: str
    sections: tuple[Section, ...]


def decode_text(data: bytes, name: str) -> str:
    """UTF-8 (with or without BOM), UTF-16 with BOM, else Shift_JIS/CP932, which
    Japanese sites still produce. Anything else, or NUL bytes, is refused as binary."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            pass
    if b"\x00" in data[:8192]:
        raise UnreadableFile(f"{name}: looks binary (NUL bytes), skipped")
    for encoding in ("utf-8-sig", "cp932"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise UnreadableFile(f"{name}: not UTF-8 or Shift_JIS text, skipped")


# A heading is repeated in the title of each of its chunks: a megabyte "heading" would
# be stored once per chunk.
MAX_HEADING_CHARS = 200


# Control characters other than whitespace (ESC, BEL, ...): in a title or passage they
# would reach terminals (kiosk search, logs) and the model. Whitespace is normalised below.
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f]")


def short_line(text: str, limit: int = MAX_HEADING_CHARS) -> str:
    """``text`` on one line, runs of whitespace collapsed, at most ``limit`` characters."""
    return _CONTROL.sub("", " ".join(text.split()))[:limit]


def _clean(text: str) -> str:
    lines = [" ".join(line.split()) for line in _CONTROL.sub("", text).splitlines()]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip()


# --- markdown / plain text -------------------------------------------------------------

# The heading text is taken without a regex: "(.*?)\s*#*\s*$" backtracks cubically on
# "# a<many spaces>b" (3 KB took 18 s). Link text stops at "[" and the URL at "(", so
# each scan ends where the next candidate starts and the whole line is read once.
_MD_HEADING = re.compile(r"(#{1,6})\s")
_MD_MARKUP = re.compile(r"!?\[([^\[\]\n]*)\]\([^()\n]*\)|[*_`]{1,3}")


def _md_heading(line: str) -> tuple[int, str] | None:
    """``(level, text)`` of an ATX heading line (closing ``#``s removed), else None."""
    m = _MD_HEADING.match(line)
    if m is None:
        return None
    text = line[m.end() :].strip()
    unclosed = text.rstrip("#")
    if unclosed != text and (not unclosed or unclosed[-1] in " \t"):
        text = unclosed.rstrip()
    return len(m.group(1)), text


def parse_markdown(
    text: str, fallback_title: str, budget: TimeBudget = _NO_BUDGET
) -> Document:
    title = ""
    sections: list[Section] = []
    heading = ""
    buf: list[str] = []
    in_front_matter = text.startswith("---\n")
    for i, line in enumerate(text.splitlines()):
        if not i % 256:
            budget.check()
        if in_front_matter:
            if i > 0 and line.strip() == "---":
                in_front_matter = False
            continue
        found = _md_heading(line)
        if found:
            level, raw_heading = found
            if buf:
                sections.append(Section(heading, _clean("\n".join(buf))))
            heading = short_line(_MD_MARKUP.sub(r"\1", raw_heading))
            if not title and level == 1:
                title = heading
            buf = []
            continue
        buf.append(_MD_MARKUP.sub(r"\1", line))
    if buf:
        sections.append(Section(heading, _clean("\n".join(buf))))
    return Document(title or fallback_title, tuple(s for s in sections if s.text))


def parse_plain(text: str, fallback_title: str) -> Document:
    body = _clean(text)
    return Document(fallback_title, (Section("", body),) if body else ())


# --- HTML ------------------------------------------------------------------------------

_BLOCK_TAGS = frozenset(
    [
        "p",
        "div",
        "li",
        "dt",
        "dd",
        "br",
        "tr",
        "pre",
        "blockquote",
        "section",
        "article",
        "table",
        "ul",
        "ol",
        "dl",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "hr",
    ]
)
_SKIP_TAGS = frozenset(("script", "style", "nav", "head", "noscript", "template", "svg"))
_SKIP_CLASSES = frozenset(("navheader", "navfooter", "toc", "breadcrumb", "breadcrumbs"))
# Inline styles that hide an element and everything in it.
_HIDDEN_STYLE = re.compile(
    r"(?:^|;)\s*(?:display\s*:\s*none|visibility\s*:\s*(?:hidden|collapse))\b"
)
_VOID_TAGS = frozenset(
    [
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "link",
        "meta",
        "source",
        "track",
        "wbr",
    ]
)


def _is_hidden(tag: str, attrs: dict[str, str | None]) -> bool:
    """Navigation blocks and elements a browser would not show."""
    if set((attrs.get("class") or "").split()) & _SKIP_CLASSES:
        return True
    if tag == "dialog" and "open" not in attrs:
        return True
    if "hidden" in attrs or (attrs.get("aria-hidden") or "").strip().lower() == "true":
        return True
    style = (attrs.get("style") or "").lower()
    return bool(style) and _HIDDEN_STYLE.search(style) is not None


_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_DECLARATION = re.compile(r"<[!?][^<>]*>")
# A "<" that does not open a tag closed before the next "<". The look-ahead stops at the
# next "<", so each character is looked at a bounded number of times.
_STRAY_LT = re.compile(r"<(?![a-zA-Z/][^<>]*>)")
# Stands in for a stray "<" while the parser runs (a Unicode noncharacter, never text;
# "&lt;" would cost a Python call per occurrence in the parser's unescape).
_LT = "\uffff"


def _tame_html(text: str) -> str:
    """``text`` with the constructs that make ``html.parser`` slow or crash made inert.

    The stdlib parser re-scans to the end of the input for every "<" that does not
    close ("<a" * n is quadratic: 100 KB took seconds) and raises AssertionError on
    "<![x>". Here, in linear time: comments and ``<!...>``/``<?...>`` declarations are
    dropped (an unterminated comment hides the rest, as in a browser), and a "<" that
    does not start a complete tag becomes ``_LT`` (text, turned back into "<" by the
    parser). What is left is text and complete tags, which the parser reads in one pass.
    """
    text = text.replace(_LT, "")
    # Comments: only up to the last "-->", so every "<!--" the regex tries has an end
    # (a failed lazy scan to the end of the text per "<!--" would be quadratic).
    last = text.rfind("-->")
    head, rest = (text[: last + 3], text[last + 3 :]) if last >= 0 else ("", text)
    unterminated = rest.find("<!--")
    if unterminated >= 0:
        rest = rest[:unterminated]
    text = _COMMENT.sub("", head) + rest
    return _STRAY_LT.sub(_LT, _DECLARATION.sub("", text))


class _HtmlSections(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.title_parts: list[str] = []
        self.sections: list[Section] = []
        self._heading = ""
        self._buf: list[str] = []
        self._in_title = False
        self._heading_buf: list[str] | None = None
        self._stack: list[tuple[str, bool]] = []  # (tag, starts a skipped subtree)
        self._skip_depth = 0
        self._pre_depth = 0

    def _flush(self) -> None:
        text = _clean("".join(self._buf))
        if text:
            self.sections.append(Section(self._heading, text))
        self._buf = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        if tag in _VOID_TAGS:
            if tag in ("br", "hr") and not self._skip_depth:
                self._buf.append("\n")
            return
        skip = tag in _SKIP_TAGS or _is_hidden(tag, dict(attrs))
        self._stack.append((tag, skip))
        if skip:
            self._skip_depth += 1
        if self._skip_depth:
            return
        if tag == "pre":
            self._pre_depth += 1
        if tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
            self._flush()
            self._heading_buf = []
        elif tag in _BLOCK_TAGS:
            self._buf.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        if tag in _VOID_TAGS:
            return
        # Pop to the matching open tag; tolerates the unclosed <p>/<li> of real-world HTML.
        while self._stack:
            open_tag, skip = self._stack.pop()
            if skip:
                self._skip_depth -= 1
            if open_tag == "pre" and not self._skip_depth:
                self._pre_depth = max(0, self._pre_depth - 1)
            if open_tag == tag:
                break
        if self._skip_depth:
            return
        if tag in ("h1", "h2", "h3", "h4", "h5", "h6") and self._heading_buf is not None:
            self._heading = short_line("".join(self._heading_buf))
            if tag == "h1" and not self.title_parts:
                self.title_parts.append(self._heading)
            self._heading_buf = None
        elif tag in _BLOCK_TAGS:
            self._buf.append("\n")

    def handle_data(self, data: str) -> None:
        data = data.replace(_LT, "<")
        if self._in_title:
            self.title_parts.append(data)
            return
        if self._skip_depth:
            return
        if not self._pre_depth:
            # HTML collapses source line wraps into spaces; only <pre> keeps lines.
            lead = " " if data[:1].isspace() else ""
            trail = " " if data[-1:].isspace() else ""
            data = (lead + " ".join(data.split()) + trail) if data.strip() else (lead or trail)
        if self._heading_buf is not None:
            self._heading_buf.append(data)
        else:
            self._buf.append(data)

    def close(self) -> None:
        super().close()
        self._flush()


# Fed in slices (each ending after a ">") so the time budget is checked as it goes.
_HTML_SLICE_CHARS = 1 << 16


def parse_html(text: str, fallback_title: str, budget: TimeBudget = _NO_BUDGET) -> Document:
    text = _tame_html(text)
    parser = _HtmlSections()
    pos = 0
    while pos < len(text):
        budget.check()
        end = text.find(">", pos + _HTML_SLICE_CHARS)
        end = len(text) if end < 0 else end + 1
        parser.feed(text[pos:end])
        pos = end
    parser.close()
    title = short_line("".join(parser.title_parts)) or fallback_title
    return Document(title, tuple(parser.sections))


# --- PDF -------------------------------------------------------------------------------


def parse_pdf(
    data: bytes, name: str, fallback_title: str, budget: TimeBudget = _NO_BUDGET
) -> Document:
    try:
        import pypdf
    except ImportError:
        raise UnreadableFile(
            f"{name}: PDF support needs pypdf (pip install 'kiosk[pdf]'), skipped"
        ) from None
    # pypdf logs a WARNING per font it cannot fully decode; the text is still fine and
    # the ingest log would drown in them.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        meta_title = ""
        if reader.metadata is not None and reader.metadata.title:
            meta_title = str(reader.metadata.title).strip()
        sections = []
        for number, page in enumerate(reader.pages, start=1):
            budget.check()
            text = _clean(page.extract_text() or "")
            if text:
                sections.append(Section(f"p. {number}", text))
    except UnreadableFile:
        raise
    except Exception as exc:  # pypdf raises many types for damaged files
        raise UnreadableFile(f"{name}: unreadable PDF ({type(exc).__name__}), skipped") from None
    return Document(meta_title or fallback_title, tuple(sections))


# --- entry point -------------------------------------------------------------------------


def extract(path: Path, data: bytes, budget: TimeBudget = _NO_BUDGET) -> Document:
    """Sections of ``data`` read from ``path`` (the suffix picks the parser).

    Raises:
        UnreadableFile: unsupported suffix, binary content, undecodable text, damaged
            PDF, or ``budget`` spent.
    """
    name = str(path)
    suffix = path.suffix.lower()
    fallback_title = short_line(path.stem.replace("_", " ").replace("-", " ")) or path.name
    if suffix == ".pdf":
        return parse_pdf(data, name, fallback_title, budget)
    if suffix not in SUPPORTED_SUFFIXES:
        raise UnreadableFile(f"{name}: unsupported file type {suffix or '(none)'}, skipped")
    text = decode_text(data, name)
    if suffix in (".html", ".htm"):
        return parse_html(text, fallback_title, budget)
    if suffix in (".md", ".markdown"):
        return parse_markdown(text, fallback_title, budget)
    return parse_plain(text, fallback_title)
