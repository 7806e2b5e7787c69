"""Ingest time of hostile documents vs a normal document of the same size (issue 12, item 4).

Each pathological file is ingested (read, extract, chunk, write to a real SQLite index,
BM25 only) next to a normal file of the same size and type, in the same run; the goal is
a ratio of at most 2. Before the fix (extract + chunk only, 9c98b29, same loaded machine,
see ``BEFORE_S``): the Markdown heading was cubic, the link regex, "<a"*n in html.parser
and the long line in the chunker quadratic.

Run: ``python bench/run.py hostile_docs`` (``--quick``: smaller sizes).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kiosk.rag.ingest import IngestReport, ingest_file
from kiosk.rag.sqlite_index import SqliteIndex

# Seconds to extract and chunk, before the fix (a 20 KB heading: hours, per the issue).
BEFORE_S = {
    "md_heading_spaces 3 KB": 50.5,
    "md_heading_spaces 6 KB": "> 100",
    "md_link_brackets 100 KB": 1.66,
    "html_unclosed_lt_a 100 KB": 5.73,
    "html_unclosed_lt_a 200 KB": 26.9,
    "txt_line_without_spaces 2 MB": 0.44,
    "txt_line_without_spaces 4 MB": 2.04,
}

PARAGRAPH = (
    "Visitor parking is in the basement garage, level B2. The first two hours are free; "
    "show your ticket at the reception desk to validate it. The lobby is open from 7:00 "
    "to 22:00 on weekdays.\n\n"
)


def _fill(size: int, unit: str) -> str:
    return (unit * (size // len(unit) + 1))[:size]


def normal_markdown(size: int) -> str:
    section = "## Where can I park?\n" + PARAGRAPH
    return "# Visitor FAQ\n\n" + _fill(size - 15, section)


def normal_html(size: int) -> str:
    section = "<h2>Where can I park?</h2><p>" + PARAGRAPH.strip() + "</p>\n"
    return "<html><body>" + _fill(size - 12, section)


def normal_text(size: int) -> str:
    return _fill(size, PARAGRAPH)


# name -> (file name, hostile text, normal peer of the same size)
CASES: dict[str, tuple[str, Callable[[int], str], Callable[[int], str]]] = {
    "md_heading_spaces": ("h.md", lambda n: "# a" + " " * (n - 4) + "b", normal_markdown),
    "md_link_brackets": ("l.md", lambda n: _fill(n, "[a]("), normal_markdown),
    "html_unclosed_lt_a": ("a.html", lambda n: _fill(n, "<a"), normal_html),
    "html_unclosed_comments": ("c.html", lambda n: _fill(n, "<!--<a"), normal_html),
    "txt_line_without_spaces": ("x.txt", lambda n: "x" * n, normal_text),
}


def ingest_seconds(root: Path, name: str, text: str) -> tuple[float, IngestReport]:
    path = root / name
    path.write_text(text, encoding="utf-8")
    report = IngestReport()
    with SqliteIndex(root / f"{name}.sqlite") as index:
        started = time.perf_counter()
        ingest_file(index, path.resolve(), report)
        seconds = time.perf_counter() - started
    return seconds, report


def run(quick: bool) -> dict[str, Any]:
    sizes = {"txt_line_without_spaces": 1_000_000 if quick else 10_000_000}
    default = 100_000 if quick else 1_000_000
    rows: list[dict[str, Any]] = []
    details: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="kiosk-bench-docs-") as tmp:
        root = Path(tmp)
        for case, (file_name, hostile, normal) in CASES.items():
            size = sizes.get(case, default)
            bad_s, bad = ingest_seconds(root, file_name, hostile(size))
            peer_s, peer = ingest_seconds(root, "peer-" + file_name, normal(size))
            ratio = bad_s / peer_s
            rows.append(
                {
                    "name": f"{case} {size / 1e6:g} MB / normal",
                    "value": round(ratio, 2),
                    "goal": "<= 2",
                    "note": f"{bad_s:.2f} s vs {peer_s:.2f} s",
                }
            )
            details[case] = {
                "bytes": size,
                "hostile_s": round(bad_s, 4),
                "normal_s": round(peer_s, 4),
                "hostile_chunks": bad.chunks_written,
                "normal_chunks": peer.chunks_written,
                "hostile_warnings": bad.warnings,
            }
    return {"rows": rows, "details": {**details, "before_fix_extract_chunk_s": BEFORE_S}}
