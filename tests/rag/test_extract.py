import itertools
from pathlib import Path

import pytest

from kiosk.rag.chunking import chunk_document
from kiosk.rag.extract import Document, Section, UnreadableFile, extract

from .conftest import EN_FAQ, HTML_PAGE


def test_html_headings_start_sections_and_navigation_is_dropped() -> None:
    doc = extract(Path("cafeteria.html"), HTML_PAGE.encode())
    assert doc.title == "Cafeteria"
    assert [s.heading for s in doc.sections] == [
        "What are the cafeteria hours?",
        "Can I pay by card?",
    ]
    text = " ".join(s.text for s in doc.sections)
    assert "second floor serves lunch" in text  # source line wrap collapsed
    for noise in (
        "Prev",
        "Chapter navigation",
        "Footer links",
        "should not be indexed",
        "color:red",
    ):
        assert noise not in text


def test_markdown_title_and_sections_come_from_headings() -> None:
    doc = extract(Path("visitor-faq.md"), EN_FAQ.encode())
    assert doc.title == "Visitor FAQ"
    assert doc.sections[0].heading == "Where can I park?"
    assert len(doc.sections) == 3


def test_plain_text_title_is_the_file_name() -> None:
    doc = extract(Path("/x/lost-and-found.txt"), b"Ask at the desk.")
    assert doc.title == "lost and found"
    assert doc.sections == (Section("", "Ask at the desk."),)


def test_shift_jis_text_is_decoded() -> None:
    doc = extract(Path("a.txt"), "駐車場は地下です".encode("cp932"))
    assert doc.sections[0].text == "駐車場は地下です"


def test_binary_content_is_refused_naming_the_file() -> None:
    with pytest.raises(UnreadableFile, match=r"photo\.txt: looks binary"):
        extract(Path("photo.txt"), b"\x89PNG\r\n\x1a\n\x00\x00\x00")


def test_unsupported_suffix_is_refused() -> None:
    with pytest.raises(UnreadableFile, match=r"unsupported file type \.docx"):
        extract(Path("a.docx"), b"PK")


def test_damaged_pdf_is_refused_in_one_line() -> None:
    pytest.importorskip("pypdf")
    with pytest.raises(UnreadableFile, match=r"bad\.pdf: unreadable PDF"):
        extract(Path("bad.pdf"), b"%PDF-1.4 this is not really a pdf")


def test_long_section_is_split_with_overlap_and_titles() -> None:
    sentences = " ".join(f"Sentence number {i} says something useful." for i in range(60))
    doc = Document("Guide", (Section("Long part", sentences),))
    chunks = chunk_document(doc, chunk_chars=300, overlap_chars=60)
    assert len(chunks) > 5
    assert all(c.title == "Guide > Long part" for c in chunks)
    assert all(len(c.text) <= 300 for c in chunks)
    for prev, nxt in itertools.pairwise(chunks):
        assert nxt.text[:20] in prev.text  # the next chunk repeats the previous tail
    assert [c.seq for c in chunks] == list(range(len(chunks)))


def test_japanese_without_spaces_is_split_at_sentence_ends() -> None:
    text = "".join(f"これは{i}番目の文です。" for i in range(80))
    chunks = chunk_document(
        Document("案内", (Section("", text),)), chunk_chars=200, overlap_chars=40
    )
    assert len(chunks) > 3
    assert all(c.text.endswith("。") for c in chunks)


def _minimal_pdf(lines: list[str]) -> bytes:
    """A one-page PDF with Helvetica text, built by hand (byte offsets computed)."""
    ops = "BT /F1 12 Tf 72 720 Td " + " ".join(f"({t}) Tj 0 -16 Td" for t in lines) + " ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(ops) + ops.encode() + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for n, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def test_pdf_pages_become_sections() -> None:
    pytest.importorskip("pypdf")
    doc = extract(
        Path("/x/shuttle-bus.pdf"), _minimal_pdf(["The shuttle bus leaves every 20 minutes."])
    )
    assert doc.title == "shuttle bus"
    assert doc.sections[0].heading == "p. 1"
    assert "shuttle bus leaves every 20 minutes" in doc.sections[0].text
