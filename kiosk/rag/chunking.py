"""Split a :class:`~kiosk.rag.extract.Document` into overlapping, titled chunks.

Chunks are sized in characters, not tokens: the tool output budget
(``rag.max_result_chars``) is in characters too, and a Japanese character carries
about as much as a short English word, so one size fits both. Splits prefer paragraph,
then sentence (Latin and Japanese sentence ends), then whitespace boundaries; each
chunk after the first in a section repeats the tail of the previous one
(``overlap_chars``) so an answer that straddles a boundary is still found whole in one
chunk. A chunk's title is
``"<document title> > <section heading>"``; the heading alone is indexed with a higher
weight (see ``kiosk.rag.sqlite_index``).

Pure functions, no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # a type only: the daemon imports Chunk, never the extractors (html.parser...)
    from kiosk.rag.extract import Document

# Bumped whenever chunking changes: re-adding an unchanged file then re-chunks it.
CHUNKER_VERSION = 1  # unchanged by the linear-time rewrite: same chunks

DEFAULT_CHUNK_CHARS = 600
DEFAULT_OVERLAP_CHARS = 100

# Latin . ! ? followed by space, or the Japanese full stop and full-width ! ? (no space).
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|(?<=[\u3002\uff01\uff1f])")
_NON_SPACE = re.compile(r"\S")


@dataclass(frozen=True, slots=True)
class Chunk:
    seq: int  # position within the document, from 0
    title: str  # "<document title> > <heading>", shown to people and in citations
    text: str
    heading: str = ""  # the section heading alone ("" when the document has none)


def _pieces(text: str, limit: int) -> list[str]:
    """Paragraphs, split further into sentences and words until each fits ``limit``."""
    out: list[str] = []
    for para in text.split("\n"):
        para = para.strip()
        if not para:
            continue
        if len(para) <= limit:
            out.append(para)
            continue
        for sentence in _SENTENCE_END.split(para):
            out.extend(_words_within(sentence, limit))
    return out


def _skip_spaces(text: str, pos: int, end: int) -> int:
    m = _NON_SPACE.search(text, pos, end)
    return m.start() if m else end


def _words_within(sentence: str, limit: int) -> list[str]:
    """``sentence`` cut at spaces (else hard) into pieces of at most ``limit`` characters.

    Walks an index instead of re-slicing the remainder, which copied a 10 MB line
    without spaces once per piece (quadratic).
    """
    out: list[str] = []
    end = len(sentence.rstrip())
    start = _skip_spaces(sentence, 0, end)
    while end - start > limit:
        cut = sentence.rfind(" ", start, start + limit)
        cut = cut if cut > start + limit // 2 else start + limit  # no space (CJK): hard cut
        piece = sentence[start:cut].strip()
        if piece:
            out.append(piece)
        start = _skip_spaces(sentence, cut, end)
    piece = sentence[start:end].strip()
    if piece:
        out.append(piece)
    return out


def _tail(text: str, overlap: int) -> str:
    if overlap <= 0 or len(text) <= overlap:
        return text if overlap > 0 else ""
    tail = text[-overlap:]
    space = tail.find(" ")
    # Start the overlap at a word boundary when there is one (English); CJK has none.
    return tail[space + 1 :] if 0 <= space < overlap // 2 else tail


def chunk_document(
    doc: Document,
    *,
    chunk_chars: int = DEFAULT_CHUNK_CHARS,
    overlap_chars: int = DEFAULT_OVERLAP_CHARS,
) -> list[Chunk]:
    """Chunks of ``doc`` in reading order; sections never share a chunk.

    Args:
        chunk_chars: soft maximum length of a chunk's text.
        overlap_chars: characters of the previous chunk repeated at the start of the next.
    """
    if chunk_chars < 50 or not 0 <= overlap_chars < chunk_chars // 2:
        raise ValueError("chunk_chars must be >= 50 and overlap_chars < chunk_chars / 2")
    chunks: list[Chunk] = []
    for section in doc.sections:
        title = f"{doc.title} > {section.heading}" if section.heading else doc.title
        current = ""
        has_new = False
        for piece in _pieces(section.text, chunk_chars - overlap_chars):
            if current and len(current) + 1 + len(piece) > chunk_chars:
                chunks.append(Chunk(len(chunks), title, current, section.heading))
                current = _tail(current, overlap_chars)
                has_new = False
            current = f"{current}\n{piece}" if current else piece
            has_new = True
        if current and has_new:
            chunks.append(Chunk(len(chunks), title, current, section.heading))
    return chunks
