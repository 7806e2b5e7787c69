"""Hybrid ranking: fusion maths, the vector matrix, and SqliteIndex with embedders."""

import sqlite3
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from kiosk.rag.chunking import Chunk
from kiosk.rag.embedding import Vectors, load_embedder
from kiosk.rag.hybrid import VectorMatrix, reciprocal_rank_fusion
from kiosk.rag.ingest import ingest_paths, rebuild
from kiosk.rag.sqlite_index import SqliteIndex


class KeywordEmbedder:
    """A deterministic embedder: one dimension per concept word, synonyms share one.

    Real enough to exercise storage and fusion: "donate" and "contribute" land on the
    same axis, as a trained model would put them close together.
    """

    dim = 4
    _axes: ClassVar[dict[str, int]] = {
        "donate": 0,
        "contribute": 0,
        "money": 1,
        "financially": 1,
        "park": 2,
        "car": 2,
    }

    def __init__(self, name: str = "keyword-test") -> None:
        self.name = name
        self.calls: list[list[str]] = []

    def embed(self, texts: list[str]) -> Vectors:
        self.calls.append(list(texts))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().replace("?", " ").split():
                out[row, self._axes.get(word, 3)] += 1.0
        out /= np.linalg.norm(out, axis=1, keepdims=True)
        return out


DOCS = [
    Chunk(0, "FAQ > Giving", "You can contribute financially through SPI.", "Giving"),
    Chunk(1, "FAQ > Parking", "Leave your car in the basement.", "Parking"),
    Chunk(2, "FAQ > Hours", "We open at nine.", "Hours"),
]


def test_rrf_orders_by_summed_reciprocal_ranks() -> None:
    fused = reciprocal_rank_fusion([[1, 2, 3], [3, 1]], [1.0, 1.0], k=60)
    assert [i for i, _ in fused] == [1, 3, 2]
    assert fused[0][1] == pytest.approx(1 / 61 + 1 / 62)


def test_vector_matrix_returns_nearest_ids_best_first() -> None:
    vectors = np.eye(3, dtype=np.float32)
    m = VectorMatrix([10, 20, 30], vectors)
    assert m.top(m.similarities(np.array([0.1, 0.9, 0.3], dtype=np.float32)), 2) == [20, 30]
    assert m.top(m.similarities(np.array([1.0, 0.5, 0.2], dtype=np.float32)), 10) == [10, 20, 30]
    empty = VectorMatrix([], np.zeros((0, 3), dtype=np.float32))
    assert empty.top(empty.similarities(vectors[0]), 3) == []


def test_int8_similarities_match_float_cosines() -> None:
    rng = np.random.default_rng(7)
    rows = rng.standard_normal((200, 64)).astype(np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    query = rows[3] + 0.5 * rows[9]
    query /= np.linalg.norm(query)
    m = VectorMatrix(list(range(200)), rows.astype(np.float16))
    assert np.abs(m.similarities(query) - rows @ query).max() < 0.02
    assert m.top(m.similarities(query), 2) == [3, 9]
    assert m.score_of(m.similarities(query), [9, 12345]) == [
        pytest.approx(rows[9] @ query, abs=0.02),
        None,
    ]


def test_blocked_float_scan_gives_the_exact_int32_product_scores() -> None:
    # More rows than one scan block, in both scripts: every block boundary is crossed.
    rng = np.random.default_rng(11)
    rows = rng.standard_normal((1500, 512)).astype(np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    m = VectorMatrix(list(range(1500)), rows, cjk=rng.random(1500) < 0.5)
    query = rng.standard_normal(512).astype(np.float32)
    query /= np.linalg.norm(query)
    peak = float(np.abs(query).max())
    q8 = np.round(query * (127.0 / peak)).astype(np.int8)
    exact = np.einsum("ij,j->i", m._rows, q8, dtype=np.int32).astype(np.float32)
    exact = exact * m._row_scale * (peak / 127.0)
    assert np.array_equal(m.similarities(query), exact)
    latin = m.similarities(query, cjk=False)
    assert np.array_equal(latin[~m.cjk], exact[~m.cjk]) and np.isneginf(latin[m.cjk]).all()


def test_top_breaks_ties_in_row_order() -> None:
    # Copies of one passage (a corpus ingested twice, untranslated headings in both
    # languages) have equal cosines: which copy ranks first no longer depends on how
    # argpartition happened to split the array.
    rows = np.tile(np.eye(4, dtype=np.float32)[0], (300, 1))
    rows[::7] = np.eye(4, dtype=np.float32)[1]
    m = VectorMatrix(list(range(1000, 1300)), rows)
    query = np.array([1.0, 0.2, 0.0, 0.0], dtype=np.float32)
    assert m.top(m.similarities(query), 5) == [1001, 1002, 1003, 1004, 1005]
    assert m.top(m.similarities(query), 5, cjk=False) == [1001, 1002, 1003, 1004, 1005]


@pytest.mark.parametrize("rows", [5, 64, 100, 1500, 6000])
@pytest.mark.parametrize("n", [1, 3, 30, 200])
def test_top_is_the_n_best_rows_of_the_question_script(rows: int, n: int) -> None:
    rng = np.random.default_rng(rows * 1000 + n)
    vectors = rng.standard_normal((rows, 32)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    m = VectorMatrix(list(range(rows)), vectors, cjk=rng.random(rows) < 0.5)
    query = rng.standard_normal(32).astype(np.float32)
    for cjk in (True, False, None):
        scores = m.similarities(query, cjk)
        order = np.lexsort((np.arange(rows), -scores))  # best first, ties in row order
        want = [int(m.ids[i]) for i in order if np.isfinite(scores[i])][:n]
        assert m.top(scores, n, cjk) == want
        assert m.top(scores, n) == want  # without the script: the same, more slowly


def test_same_script_keeps_rows_of_the_query_script_unless_there_are_none() -> None:
    m = VectorMatrix([1, 2, 3], np.eye(3, dtype=np.float32), cjk=[True, False, True])
    query = np.array([0.9, 0.3, 0.1], dtype=np.float32)
    assert m.top(m.similarities(query, cjk=True), 3) == [1, 3]
    assert m.top(m.similarities(query, cjk=False), 3) == [2]
    assert m.top(m.similarities(query), 3) == [1, 2, 3]
    assert m.score_of(m.similarities(query, cjk=True), [3, 2]) == [
        pytest.approx(0.1, abs=0.01),
        float("-inf"),
    ]
    only_latin = VectorMatrix([1, 2], np.eye(2, dtype=np.float32), cjk=[False, False])
    assert only_latin.top(only_latin.similarities(query[:2], cjk=True), 2) == [1, 2]


def test_synonym_only_question_is_found_through_vectors(tmp_path: Path) -> None:
    with SqliteIndex(tmp_path / "i.sqlite", embedder=KeywordEmbedder()) as ix:
        ix.replace_document("/faq.md", "FAQ", "h", 1, DOCS)
        hits = ix.search("How do I donate money?", 3)
    assert hits[0].title == "FAQ > Giving"
    with SqliteIndex(tmp_path / "i.sqlite", create=False) as bm25_only:
        assert bm25_only.search("How do I donate money?", 3) == []


def test_japanese_queries_do_not_use_vectors(tmp_path: Path) -> None:
    embedder = KeywordEmbedder()
    with SqliteIndex(tmp_path / "i.sqlite", embedder=embedder) as ix:
        ix.replace_document("/faq.md", "FAQ", "h", 1, DOCS)
        embedder.calls.clear()
        ix.search("駐車場はどこですか", 3)
        assert embedder.calls == []
        ix.search("where to park", 3)
        assert embedder.calls == [["where to park"]]


def test_vectors_of_another_model_are_ignored_until_rebuild(
    tmp_path: Path, corpus: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "i.sqlite"
    with SqliteIndex(path, embedder=KeywordEmbedder("model-a")) as ix:
        ingest_paths(ix, [corpus])
    other = KeywordEmbedder("model-b")
    with SqliteIndex(path, embedder=other) as ix:
        ix.search("where can I park my car", 3)
        ix.search("where can I park my car", 3)
        assert other.calls == []  # stored vectors are model-a's: not comparable
        warnings = [
            r.getMessage() for r in caplog.records if "kiosk index rebuild" in r.getMessage()
        ]
        assert len(warnings) == 1 and "model-a" in warnings[0]
        rebuild(ix)
        other.calls.clear()
        ix.search("where can I park my car", 3)
        assert other.calls == [["where can I park my car"]]
    con = sqlite3.connect(path)
    assert con.execute("SELECT value FROM meta WHERE key = 'embedder'").fetchone() == ("model-b",)
    vectors, chunks = con.execute(
        "SELECT (SELECT count(*) FROM chunk_vectors), (SELECT count(*) FROM chunks)"
    ).fetchone()
    con.close()
    assert vectors == chunks > 0


def test_index_built_without_vectors_keeps_working_with_an_embedder(
    tmp_path: Path, corpus: Path
) -> None:
    path = tmp_path / "i.sqlite"
    with SqliteIndex(path) as ix:
        ingest_paths(ix, [corpus])
    embedder = KeywordEmbedder()
    with SqliteIndex(path, embedder=embedder) as ix:
        ingest_paths(ix, [corpus], force=True)  # no rebuild: vectors stay off
        assert "basement garage" in ix.search("Where can visitors park?", 1)[0].text
        assert embedder.calls == []


def test_removing_a_document_removes_its_vectors(tmp_path: Path) -> None:
    with SqliteIndex(tmp_path / "i.sqlite", embedder=KeywordEmbedder()) as ix:
        ix.replace_document("/faq.md", "FAQ", "h", 1, DOCS)
        ix.remove_document("/faq.md")
        assert ix.search("donate money", 3) == []
    con = sqlite3.connect(tmp_path / "i.sqlite")
    assert con.execute("SELECT count(*) FROM chunk_vectors").fetchone() == (0,)
    con.close()


def test_bundled_wordllama_model_loads_offline_and_embeds() -> None:
    pytest.importorskip("wordllama")
    embedder = load_embedder()
    assert embedder is not None
    v = embedder.embed(
        ["How can I donate money?", "How can I contribute financially?", "Where is Google Earth?"]
    )
    assert v.shape == (3, embedder.dim)
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-3)
    assert float(v[0] @ v[1]) > float(v[0] @ v[2]) + 0.2


def test_lean_wordllama_gives_wordllamas_own_vectors_bit_for_bit() -> None:
    """The index's stored vectors came from WordLlama: the query side must match them exactly."""
    wordllama = pytest.importorskip("wordllama")
    from kiosk.rag.embedding import WordLlamaEmbedder

    texts = [
        "Where is the restroom?",
        "How do I configure apt pinning for testing and unstable?",
        "駐車場はどこですか",
        "word " * 200,
    ]
    package = Path(wordllama.__file__).parent
    reference = wordllama.WordLlama.load(
        config="l2_supercat", dim=256, cache_dir=package, disable_download=True
    )
    expected = np.asarray(reference.embed(texts, norm=True), dtype=np.float32)
    assert np.array_equal(WordLlamaEmbedder().embed(texts), expected)


def test_lean_wordllama_embeds_empty_text_as_zeros_and_missing_files_disable_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pytest.importorskip("wordllama")
    from kiosk.rag.embedding import WordLlamaEmbedder

    v = WordLlamaEmbedder().embed(["", "lobby"])
    assert not v[0].any() and np.isclose(np.linalg.norm(v[1]), 1.0)
    with pytest.raises(FileNotFoundError, match="wordllama file missing"):
        WordLlamaEmbedder(package_dir=tmp_path)


def test_relevance_floor_drops_weak_matches_unless_the_passage_has_every_term(
    tmp_path: Path,
) -> None:
    with SqliteIndex(tmp_path / "i.sqlite", embedder=KeywordEmbedder(), relevance_floor=0.99) as ix:
        ix.replace_document("/faq.md", "FAQ", "h", 1, DOCS)
        assert ix.search("car helicopter", 3) == []  # one of two terms: below the floor
        assert ix.search("car basement", 3)[0].title == "FAQ > Parking"  # all terms: kept
        assert ix.search("parking", 3)[0].title == "FAQ > Parking"  # one term, in the heading
        assert ix.search("financially", 3) == []  # one term, only in the text
    with SqliteIndex(tmp_path / "i.sqlite", embedder=KeywordEmbedder(), relevance_floor=0.0) as ix:
        assert ix.search("car helicopter", 3)[0].title == "FAQ > Parking"


class AngleEmbedder:
    """Every passage on one axis; each known question at a set cosine from it."""

    name = "angle-test"
    dim = 2
    multilingual = True
    questions: ClassVar[dict[str, float]] = {
        "駐車場はどこにありますか": 0.265,
        "where is the parking garage": 0.265,
    }

    def embed(self, texts: list[str]) -> Vectors:
        out = np.zeros((len(texts), 2), dtype=np.float32)
        for row, text in enumerate(texts):
            c = self.questions.get(text, 1.0)
            out[row] = (c, np.sqrt(1.0 - c * c))
        return out


def test_japanese_questions_meet_a_higher_relevance_floor(tmp_path: Path) -> None:
    from kiosk.rag.hybrid import CJK_FLOOR_RAISE, floor_for

    assert floor_for(0.25, cjk=False) == 0.25
    assert floor_for(0.25, cjk=True) == pytest.approx(0.25 + CJK_FLOOR_RAISE)
    assert floor_for(0.0, cjk=True) == 0.0  # 0: never abstain, in every script
    docs = [
        Chunk(0, "案内 > 駐輪", "自転車は建物の裏に止めてください。", "駐輪"),
        Chunk(0, "Guide > Bikes", "Bicycles go behind the building.", "Bikes"),
    ]
    with SqliteIndex(tmp_path / "i.sqlite", embedder=AngleEmbedder(), relevance_floor=0.25) as ix:
        ix.replace_document("/ja.md", "案内", "h1", 1, docs[:1])
        ix.replace_document("/en.md", "Guide", "h2", 1, docs[1:])
        assert ix.search("where is the parking garage", 3)  # 0.265 >= 0.25
        assert ix.search("駐車場はどこにありますか", 3) == []  # 0.265 < 0.28
    with SqliteIndex(tmp_path / "i.sqlite", embedder=AngleEmbedder(), relevance_floor=0.0) as ix:
        assert ix.search("駐車場はどこにありますか", 3)
