import sqlite3
import threading
from pathlib import Path

import pytest

from kiosk.rag.chunking import Chunk
from kiosk.rag.ingest import ingest_paths, rebuild
from kiosk.rag.knowledge import KnowledgeError
from kiosk.rag.sqlite_index import SqliteIndex
from kiosk.rag.sqlite_search import bm25, fts_query


def test_english_question_finds_the_parking_answer_first(index: SqliteIndex) -> None:
    hits = index.search("Where do visitors park their car?", 3)
    assert hits and "basement garage" in hits[0].text
    assert hits[0].title == "Visitor FAQ > Where can I park?"
    assert hits[0].source.endswith("visitor-faq.md")
    assert hits[0].score > 0


def test_stemming_matches_other_word_forms(index: SqliteIndex) -> None:
    hits = index.search("opening hours of the lobby", 1)
    assert "7:00 to 22:00" in hits[0].text


def test_japanese_question_without_spaces_finds_the_answer(index: SqliteIndex) -> None:
    hits = index.search("駐車場はどこにありますか", 3)
    assert hits and "地下二階" in hits[0].text


def test_japanese_two_character_word_matches(index: SqliteIndex) -> None:
    hits = index.search("忘れ物", 2)
    assert hits and "受付でお預かり" in hits[0].text


def test_single_kanji_query_falls_back_to_substring_scan(index: SqliteIndex) -> None:
    hits = index.search("祝", 5)
    assert any("祝日" in h.text for h in hits)


def test_html_answer_is_found_and_cited_by_its_heading(index: SqliteIndex) -> None:
    hits = index.search("can I pay with a credit card in the cafeteria", 2)
    assert hits[0].title == "Cafeteria > Can I pay by card?"


@pytest.mark.parametrize(
    "query", ['"unbalanced', "NEAR(a b)", "* OR AND", "a:b ^c", "-- ; DROP TABLE chunks", ")("]
)
def test_fts_syntax_in_a_query_never_raises(index: SqliteIndex, query: str) -> None:
    index.search(query, 3)
    assert index.stats().chunks > 0


def test_query_with_nothing_searchable_returns_nothing(index: SqliteIndex) -> None:
    assert index.search("?!", 3) == []
    assert index.search("the what", 3) == []
    assert index.search("  ", 3) == []


def test_k_below_one_is_an_error_not_a_silent_default(index: SqliteIndex) -> None:
    with pytest.raises(ValueError, match="k must be at least 1"):
        index.search("parking", 0)


def test_results_are_best_first_and_at_most_k(index: SqliteIndex) -> None:
    hits = index.search("open closed hours lobby cafeteria lunch", 2)
    assert len(hits) == 2
    assert hits[0].score >= hits[1].score


def test_one_chunk_per_section_leaves_room_for_other_sections(tmp_path: Path) -> None:
    long_answer = [
        Chunk(i, "Guide > Parking", f"parking rule {i} parking", "Parking") for i in range(6)
    ]
    other = [Chunk(6, "Guide > Bikes", "bike parking is by the door", "Bikes")]
    with SqliteIndex(tmp_path / "i.sqlite") as ix:
        ix.replace_document("/guide.md", "Guide", "h", 1, long_answer + other)
        hits = ix.search("parking", 3)
    assert [h.title for h in hits] == ["Guide > Parking", "Guide > Bikes"]


def test_a_term_in_most_chunks_is_ignored_unless_it_is_all_there_is(tmp_path: Path) -> None:
    chunks = [Chunk(i, "n", f"kiosk note {i}") for i in range(5)] + [Chunk(5, "n", "kiosk parking")]
    with SqliteIndex(tmp_path / "i.sqlite") as ix:
        ix.replace_document("/notes.txt", "n", "h", 1, chunks)
        assert [h.text for h in ix.search("kiosk parking", 5)] == ["kiosk parking"]
        assert len(ix.search("kiosk", 5)) == 5
        # The cached set follows writes: once "kiosk" is rare, it counts again.
        ix.replace_document(
            "/notes.txt", "n", "h2", 1, [Chunk(0, "n", "kiosk"), Chunk(1, "n", "a b")]
        )
        ix.replace_document("/more.txt", "m", "h", 1, [Chunk(0, "m", "c d"), Chunk(1, "m", "e f")])
        assert [h.text for h in ix.search("kiosk parking", 5)] == ["kiosk"]


def test_chunks_without_headings_are_never_merged(tmp_path: Path) -> None:
    chunks = [Chunk(i, "notes", f"parking note {i}") for i in range(4)]
    with SqliteIndex(tmp_path / "i.sqlite") as ix:
        ix.replace_document("/notes.txt", "notes", "h", 1, chunks)
        assert len(ix.search("parking", 3)) == 3


def test_missing_file_opened_without_create_is_empty_until_it_appears(tmp_path: Path) -> None:
    path = tmp_path / "late.sqlite"
    reader = SqliteIndex(path, create=False)
    assert reader.search("parking", 3) == []
    assert not path.exists()
    with SqliteIndex(path) as writer:
        writer.replace_document(
            "/doc.txt", "Doc", "h", 10, [Chunk(0, "Doc", "parking is downstairs")]
        )
    assert [h.text for h in reader.search("parking", 3)] == ["parking is downstairs"]
    reader.close()


def test_index_from_before_headings_is_upgraded_and_rebuilt(tmp_path: Path, corpus: Path) -> None:
    path = tmp_path / "old.sqlite"
    with SqliteIndex(path) as ix:
        ingest_paths(ix, [corpus])
    con = sqlite3.connect(path)
    con.execute("ALTER TABLE chunks DROP COLUMN heading")  # the first released layout
    con.close()
    with SqliteIndex(path, create=False) as ix:
        assert ix.search("parking basement", 1)
        rebuild(ix)
        assert ix.search("parking basement", 1)[0].title == "Visitor FAQ > Where can I park?"


def test_a_file_that_is_not_sqlite_is_a_knowledge_error(tmp_path: Path) -> None:
    path = tmp_path / "index.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(KnowledgeError, match="not a usable kiosk index"):
        SqliteIndex(path)


def test_replace_document_swaps_all_chunks_and_fts_rows(tmp_path: Path) -> None:
    with SqliteIndex(tmp_path / "i.sqlite") as ix:
        ix.replace_document(
            "/a.txt", "A", "h1", 1, [Chunk(0, "A", "apples"), Chunk(1, "A", "bananas")]
        )
        ix.replace_document("/a.txt", "A", "h2", 1, [Chunk(0, "A", "cherries")])
        assert ix.search("bananas", 3) == []
        assert [h.text for h in ix.search("cherries", 3)] == ["cherries"]
        assert ix.stats().chunks == 1
        assert ix.remove_document("/a.txt") == 1
        assert ix.search("cherries", 3) == []
        con = sqlite3.connect(ix.path)
        assert con.execute("SELECT count(*) FROM chunks_fts").fetchone()[0] == 0
        con.close()


def test_chunk_ids_are_stable_and_voicerag_compatible(index: SqliteIndex) -> None:
    import re

    ids = [h.chunk_id for h in index.iter_chunks()]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[A-Za-z0-9_=\-]+", i) for i in ids)


def test_concurrent_searches_from_threads_are_safe(index: SqliteIndex) -> None:
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(50):
                assert index.search("parking", 2)
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors


def test_bm25_ranking_is_the_tables_configured_rank_in_the_same_order(tmp_path: Path) -> None:
    # sqlite_search ranks with bm25() and SQLite's LIMIT sorter (faster than FTS5's
    # ORDER BY rank); it must rank exactly as the weights the schema configured.
    chunks = [
        Chunk(i, f"Doc > {head}", body, head)
        for i, (head, body) in enumerate(
            [
                ("Parking", "cars park in the garage"),
                ("Garage hours", "the garage opens at seven"),
                ("Bikes", "bikes park by the door, not in the garage"),
                ("Garage", "garage garage garage"),
                ("Lunch", "nothing about it here"),
            ]
        )
    ]
    with SqliteIndex(tmp_path / "i.sqlite") as ix:
        ix.replace_document("/d.md", "Doc", "h", 1, chunks)
        with ix._connection() as conn:
            assert conn is not None
            for terms in (["garage"], ["park", "garage"], ["bikes", "door", "seven"]):
                rank = conn.execute(
                    "SELECT rowid, rank FROM chunks_fts WHERE chunks_fts MATCH ? ORDER BY rank",
                    (fts_query(terms),),
                ).fetchall()
                assert bm25(conn, terms, 10) == [(rowid, -score) for rowid, score in rank]
                assert bm25(conn, terms, 2) == [(rowid, -score) for rowid, score in rank[:2]]
