"""Turn one file's bytes into titled sections of plain text (.md, .txt, .html, .pdf).

Owns format detection and decoding. It does not chunk (``kiosk.rag.chunking``) or
touch the index. Every failure is an :class:`UnreadableFile` whose message is one line
naming the file, so ingest can warn and carry on with the rest.

HTML uses the stdlib parser (no dependency): headings start sections, navigation
blocks (``<nav>``, DocBook's ``navheader``/``navfooter``/``toc``) and scripts are
dropped. PDF uses ``pypdf`` (optional extra ``kiosk[pdf]``), one section per page.
"""

from __future__ import annotations

import html.parser
import io
import logging
import re
from dataclasses import dataclass
from pathlib import Path

SUPPORTED_SUFFIXES = (".md", ".markdown", ".txt", ".html", ".htm", ".pdf")


class UnreadableFile(Exception):
    """This file cannot be ingested; ``str()`` is one line naming it."""


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


def _clean(text: str) -> str:
    lines = [" ".join(line.split()) for line in text.splitlines()]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip()


# --- markdown / plain text -------------------------------------------------------------

_MD_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_MD_MARKUP = re.compile(r"!?\[([^\]]*)\]\([^)]*\)|[*_`]{1,3}")


def parse_markdown(text: str, fallback_title: str) -> Document:
    title = ""
    sections: list[Section] = []
    heading = ""
    buf: list[str] = []
    in_front_matter = text.startswith("---\n")
    for i, line in enumerate(text.splitlines()):
        if in_front_matter:
            if i > 0 and line.strip() == "---":
                in_front_matter = False
            continue
        m = _MD_HEADING.match(line)
        if m:
            if buf:
                sections.append(Section(heading, _clean("\n".join(buf))))
            heading = _MD_MARKUP.sub(r"\1", m.group(2)).strip()
            if not title and len(m.group(1)) == 1:
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


class _HtmlSections(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.title = ""
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
        classes = set((dict(attrs).get("class") or "").split())
        skip = tag in _SKIP_TAGS or bool(classes & _SKIP_CLASSES)
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
            self._heading = " ".join("".join(self._heading_buf).split())
            if tag == "h1" and not self.title:
                self.title = self._heading
            self._heading_buf = None
        elif tag in _BLOCK_TAGS:
            self._buf.append("\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
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


def parse_html(text: str, fallback_title: str) -> Document:
    parser = _HtmlSections()
    parser.feed(text)
    parser.close()
    title = " ".join(parser.title.split()) or fallback_title
    return Document(title, tuple(parser.sections))


# --- PDF -------------------------------------------------------------------------------


def parse_pdf(data: bytes, name: str, fallback_title: str) -> Document:
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
            text = _clean(page.extract_text() or "")
            if text:
                sections.append(Section(f"p. {number}", text))
    except Exception as exc:  # pypdf raises many types for damaged files
        raise UnreadableFile(f"{name}: unreadable PDF ({type(exc).__name__}), skipped") from None
    return Document(meta_title or fallback_title, tuple(sections))


# --- entry point -------------------------------------------------------------------------


def extract(path: Path, data: bytes) -> Document:
    """Sections of ``data`` read from ``path`` (the suffix picks the parser).

    Raises:
        UnreadableFile: unsupported suffix, binary content, undecodable text or damaged PDF.
    """
    name = str(path)
    suffix = path.suffix.lower()
    fallback_title = path.stem.replace("_", " ").replace("-", " ").strip() or path.name
    if suffix == ".pdf":
        return parse_pdf(data, name, fallback_title)
    if suffix not in SUPPORTED_SUFFIXES:
        raise UnreadableFile(f"{name}: unsupported file type {suffix or '(none)'}, skipped")
    text = decode_text(data, name)
    if suffix in (".html", ".htm"):
        return parse_html(text, fallback_title)
    if suffix in (".md", ".markdown"):
        return parse_markdown(text, fallback_title)
    return parse_plain(text, fallback_title)
