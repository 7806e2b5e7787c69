"""Section headings' own vectors: stored once per section, a third ranking in the fusion."""

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from kiosk.rag.chunking import Chunk
from kiosk.rag.embedding import Vectors
from kiosk.rag.hybrid import VectorMatrix, fuse_with_vectors, score_question
from kiosk.rag.sqlite_index import SqliteIndex
from kiosk.rag.sqlite_open import SCHEMA


def _unit(*xs: float) -> list[float]:
    v = np.array([*xs, 0.0, 0.0][:3], dtype=np.float32)
    return list(v / np.linalg.norm(v))


class TableEmbedder:
    """Vectors chosen per text, so every cosine to the question (axis 0) is known."""

    name = "table-test"
    dim = 3

    def __init__(self, table: dict[str, list[float]]) -> None:
        self.table = table
        self.calls: list[list[str]] = []

    def embed(self, texts: list[str]) -> Vectors:
        self.calls.append(list(texts))
        default = _unit(0.0, 0.0, 1.0)
        return np.array([self.table.get(t, default) for t in texts], dtype=np.float32)


def _chunk(seq: int, heading: str, text: str) -> Chunk:
    return Chunk(seq, f"Guide > {heading}" if heading else "Guide", text, heading)


# Cosines to the question "zebra" (no word in common with any passage, so no BM25):
# passages A .6, B .5, C .4; headings A .1, B .9, C .5.
TABLE = {
    "zebra": _unit(1.0, 0.0),
    "Hours\nWe open at nine.": _unit(0.6, 0.8),
    "Giving\nSend a cheque to SPI.": _unit(0.5, 0.866),
    "Parking\nLeave the car downstairs.": _unit(0.4, 0.9165),
    "Hours": _unit(0.1, 0.995),
    "Giving": _unit(0.9, 0.436),
    "Parking": _unit(0.5, 0.866),
}
GUIDE = [
    _chunk(0, "Hours", "We open at nine."),
    _chunk(1, "Giving", "Send a cheque to SPI."),
    _chunk(2, "Parking", "Leave the car downstairs."),
]


def test_heading_vectors_are_stored_once_per_section_and_go_with_the_document(
    tmp_path: Path,
) -> None:
    path = tmp_path / "i.sqlite"
    chunks = [
        _chunk(0, "Giving", "one"),
        _chunk(1, "Giving", "two"),
        _chunk(2, "Parking", "three"),
        _chunk(3, "", "no heading"),
        _chunk(4, "Giving", "a second section of the same name"),
    ]
    embedder = TableEmbedder(TABLE)
    with SqliteIndex(path, embedder=embedder) as ix:
        ix.replace_document("/guide.md", "Guide", "h", 1, chunks)
        assert ["Giving", "Parking", "Giving"] in embedder.calls  # one call, firsts only
        con = sqlite3.connect(path)
        rows = con.execute(
            "SELECT c.seq, h.vec FROM heading_vectors h JOIN chunks c ON c.id = h.id ORDER BY c.seq"
        ).fetchall()
        assert [seq for seq, _ in rows] == [0, 2, 4]
        stored = np.frombuffer(rows[0][1], dtype=np.float16)
        assert np.allclose(stored, TABLE["Giving"], atol=1e-3)
        ix.remove_document("/guide.md")
        assert con.execute("SELECT count(*) FROM heading_vectors").fetchone() == (0,)
        ix.replace_document("/guide.md", "Guide", "h", 1, chunks)
        ix.adopt_embedder()  # the start of a rebuild drops every vector
        assert con.execute("SELECT count(*) FROM heading_vectors").fetchone() == (0,)
        con.close()


def test_a_question_about_what_a_heading_names_ranks_that_section_first(tmp_path: Path) -> None:
    path = tmp_path / "i.sqlite"
    with SqliteIndex(path, embedder=TableEmbedder(TABLE), relevance_floor=0.0) as ix:
        ix.replace_document("/guide.md", "Guide", "h", 1, GUIDE)
        hits = ix.search("zebra", 3)
    # Passages alone: Hours (.6) first. Headings: Giving (.9) first, Hours (.1) last.
    # Fused: Giving 1/12 + 1/11 beats Hours 1/11 + 1/13.
    assert [h.title for h in hits] == ["Guide > Giving", "Guide > Hours", "Guide > Parking"]
    assert hits[0].score == pytest.approx(0.5, abs=0.01)  # the passage's cosine, as before
    con = sqlite3.connect(path)
    con.execute("DELETE FROM heading_vectors")
    con.commit()
    con.close()
    with SqliteIndex(path, embedder=TableEmbedder(TABLE), relevance_floor=0.0) as ix:
        assert ix.search("zebra", 3)[0].title == "Guide > Hours"


def test_an_index_from_before_heading_vectors_is_searched_and_upgraded(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "old.sqlite"
    with SqliteIndex(path, embedder=TableEmbedder(TABLE), relevance_floor=0.0) as ix:
        ix.replace_document("/guide.md", "Guide", "h", 1, GUIDE)
    con = sqlite3.connect(path)
    con.execute("DROP TABLE heading_vectors")  # as an older kiosk wrote it
    con.commit()
    con.close()
    reader = SqliteIndex(
        path, embedder=TableEmbedder(TABLE), relevance_floor=0.0, read_only=True, create=False
    )
    with reader as ix, caplog.at_level("INFO"):
        assert ix.search("zebra", 3)[0].title == "Guide > Hours"  # passages and BM25 only
        assert any("kiosk index rebuild" in r.getMessage() for r in caplog.records)
    with SqliteIndex(path, embedder=TableEmbedder(TABLE), relevance_floor=0.0) as ix:
        ix.replace_document("/guide.md", "Guide", "h2", 1, GUIDE)  # the writer adds the table
        assert ix.search("zebra", 3)[0].title == "Guide > Giving"
    assert "heading_vectors" in SCHEMA


def test_fusion_adds_the_heading_ranking_and_keeps_passage_cosines() -> None:
    passages = VectorMatrix([1, 2, 3], np.array([TABLE[f"{c.heading}\n{c.text}"] for c in GUIDE]))
    headings = VectorMatrix([1, 2, 3], np.array([TABLE[c.heading] for c in GUIDE]))
    q = np.array(TABLE["zebra"], dtype=np.float32)
    without, best = fuse_with_vectors([], passages, score_question(q, passages, None, 3, None), 3)
    assert [i for i, _ in without] == [1, 2, 3] and best == pytest.approx(0.6, abs=0.01)
    fused, best = fuse_with_vectors([], passages, score_question(q, passages, headings, 3, None), 3)
    assert [i for i, _ in fused] == [2, 1, 3] and best == pytest.approx(0.6, abs=0.01)
    assert fused[0][1] == pytest.approx(0.5, abs=0.01)


def test_bm25_weight_lets_the_vector_rankings_outvote_a_bm25_first_place() -> None:
    passages = VectorMatrix([1, 2], np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32))
    question = score_question(np.array([0.6, 0.8], dtype=np.float32), passages, None, 2, None)
    bm25 = [(1, 9.0), (2, 1.0)]  # words: 1 first; vectors: 2 nearest
    equal, _ = fuse_with_vectors(bm25, passages, question, 2)
    assert [i for i, _ in equal] == [1, 2]  # a tie, broken by id
    halved, _ = fuse_with_vectors(bm25, passages, question, 2, bm25_weight=0.5)
    assert [i for i, _ in halved] == [2, 1]
