"""BM25 from precomputed postings (kiosk.rag.bm25_postings): FTS5's scores, not its cost."""

import random
from pathlib import Path

import pytest

from kiosk.rag import sqlite_search
from kiosk.rag.bm25_postings import QueryTokens, bm25_from_postings, load_postings
from kiosk.rag.chunking import Chunk
from kiosk.rag.ingest import ingest_paths
from kiosk.rag.sqlite_index import SqliteIndex
from kiosk.rag.sqlite_search import bm25

WORDS = (
    "garage park parking parked cars bikes door seven lunch café naïve 駐車 車場 地下 受付 "
    "opening opens hours lobby e-mail the a"
).split()


def _chunks(seed: int, count: int) -> list[Chunk]:
    rng = random.Random(seed)
    chunks = []
    for i in range(count):
        head = " ".join(rng.choices(WORDS, k=rng.randint(1, 3)))
        body = " ".join(rng.choices(WORDS, k=rng.randint(1, 40)))
        chunks.append(Chunk(i, f"Doc > {head}", body, head))
    return chunks


def _fts5_only(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Record the searches that reach FTS5's own bm25()."""
    calls: list[list[str]] = []

    def recorded(conn, terms, n):  # type: ignore[no-untyped-def]
        calls.append(list(terms))
        return bm25(conn, terms, n)

    monkeypatch.setattr(sqlite_search, "bm25", recorded)
    return calls


def test_postings_rank_every_query_exactly_as_fts5_bm25(tmp_path: Path) -> None:
    rng = random.Random(7)
    with SqliteIndex(tmp_path / "i.sqlite") as ix:
        ix.replace_document("/a.md", "A", "h", 1, _chunks(1, 120))
        ix.replace_document("/b.md", "B", "h", 1, _chunks(2, 80))
        ix.remove_document("/a.md")
        ix.replace_document("/c.md", "C", "h", 1, _chunks(3, 60))
        ix.compact()
        with ix._connection() as conn:
            assert conn is not None
            postings = load_postings(conn)
            assert postings is not None
            tokens = QueryTokens()
            queries = [["garage"], ["garage", "garage"], ["absent"], ["parked", "café"]]
            queries += [rng.sample(WORDS[:-3], rng.randint(1, 8)) for _ in range(200)]
            for terms in queries:
                for n in (1, 5, 30, 500):
                    got = bm25_from_postings(conn, postings, tokens.of(conn, terms), n)
                    # Same rows, same order, bit-identical scores (ties by row id).
                    assert got == bm25(conn, terms, n), terms


def test_an_indexed_folder_is_searched_without_fts5_bm25(
    tmp_path: Path, corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "index.sqlite"
    with SqliteIndex(path) as ix:
        ingest_paths(ix, [corpus])
    calls = _fts5_only(monkeypatch)
    with SqliteIndex(path, read_only=True) as reader:  # as the daemon opens it
        hits = reader.search("Where do visitors park their car?", 3)
        assert hits and "basement garage" in hits[0].text
        assert "地下二階" in reader.search("駐車場はどこにありますか", 3)[0].text
    assert calls == []


def test_postings_of_an_older_state_are_never_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _fts5_only(monkeypatch)
    with SqliteIndex(tmp_path / "i.sqlite") as ix:
        ix.replace_document("/a.md", "A", "h", 1, [Chunk(0, "A > x", "garage rules", "x")])
        ix.write_postings()
        assert ix.search("garage", 3)[0].text == "garage rules"
        assert calls == []
        ix.replace_document("/b.md", "B", "h", 1, [Chunk(0, "B > y", "garage garage", "y")])
        assert [h.text for h in ix.search("garage", 3)] == ["garage garage", "garage rules"]
        assert calls == [["garage"]]  # FTS5 again until the postings are rewritten
        ix.write_postings()
        assert [h.text for h in ix.search("garage", 3)] == ["garage garage", "garage rules"]
        assert calls == [["garage"]]


def test_a_term_fts5_reads_as_a_phrase_is_left_to_fts5(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with SqliteIndex(tmp_path / "i.sqlite") as ix:
        chunks = [Chunk(0, "A > x", "mail e here", "x"), Chunk(1, "A > y", "e mail", "y")]
        ix.replace_document("/a.md", "A", "h", 1, chunks)
        ix.compact()
        with ix._connection() as conn:
            assert conn is not None
            postings = load_postings(conn)
            assert postings is not None
            phrases = QueryTokens().of(conn, ["e_mail", "here"])
            assert phrases == [("e", "mail"), ("here",)]
            assert bm25_from_postings(conn, postings, phrases, 5) is None
        calls = _fts5_only(monkeypatch)
        assert [h.text for h in ix.search("e_mail", 5)] == ["e mail"]  # the phrase only
        assert calls == [["e_mail"]]


def test_a_writer_that_only_removes_and_closes_leaves_current_postings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "i.sqlite"
    with SqliteIndex(path) as ix:
        ix.replace_document("/a.md", "A", "h", 1, [Chunk(0, "A > x", "garage rules", "x")])
        ix.replace_document("/b.md", "B", "h", 1, [Chunk(0, "B > y", "garage garage", "y")])
    with SqliteIndex(path, create=False) as ix:
        assert ix.remove_document("/b.md") == 1  # no write_postings(): the index does it at close
    calls = _fts5_only(monkeypatch)
    with SqliteIndex(path, read_only=True) as reader:
        assert [h.text for h in reader.search("garage", 3)] == ["garage rules"]
    assert calls == []  # the postings match the index's state after the removal
