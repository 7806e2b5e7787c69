"""The query side of the knowledge index: BM25 over FTS5, fused with embedding similarity.

:class:`IndexSearcher` answers :meth:`SqliteIndex.search
<kiosk.rag.sqlite_index.SqliteIndex.search>` on the index's connection, and keeps what a
query needs between searches (the frequent-term table, the vector matrix), reloaded when
the file changes. The file, its lifecycle and every write are :mod:`kiosk.rag.sqlite_index`'s.

Ranking keeps one chunk per section: a long answer split into five chunks would
otherwise fill all five result slots, leaving no room for the right section when the
long one is wrong (bench: about +0.05 recall@5 in both languages). Chunks of a
document without headings are all distinct passages and are never merged.

Where a query's time went (``bench/bench_rag.py``'s 11k-chunk index, warm, quiet machine,
mean per query): FTS5 ``MATCH ... ORDER BY rank`` 2.4 ms (p95 5.3; it grows with the rows
the OR-ed terms match, ~1 us each), embedding the question 1.7 ms, the int8 vector scan
0.8 ms, fetching the candidates' rows 0.15 ms, term selection and fusion under 0.1 ms.
Hence:

- BM25 is ``bm25()`` ordered by SQLite's own ``LIMIT`` sorter, which keeps only the best
  ``n`` rows; FTS5's ``ORDER BY rank`` sorts every match first (same rows, in the same
  order, on every bench question; 30 % less time, p95 5.2 -> 3.6 ms).
- The question is embedded and scanned on a worker thread while FTS5 runs: SQLite and
  numpy's products both release the GIL, so on two cores the two overlap.
- The scan runs through BLAS in float32 blocks (0.8 -> 0.45 ms, same scores; see
  :class:`~kiosk.rag.hybrid.VectorMatrix`).
- Only the final hits' text is read.
- The nearest passages and headings are picked on the scoring thread too, from the
  question's script only (:meth:`~kiosk.rag.hybrid.VectorMatrix.top`): after BM25 only the
  fusion (0.1 ms, was 0.5 with the two picks) and the hits' rows (0.3 ms) remain.

Profiled again in stop 21 (11,060 chunks, thread CPU per query, mean / p95, on this shared
2-core VM with ~50 % CPU steal): term selection 0.07; BM25 3.2 / 7.6; embedding 2.8 / 3.5
(in-process; most of it waiting on the 13 MB of dense weights: the same products take a
third of that with one matrix in L2); passage + heading scans 1.2; fusion 0.5 -> 0.1;
the hits' rows 0.3. BM25 is ``bm25()`` itself, ~1.4 us per matched row (median 2,100
rows, up to 6,400 for an English question of common words); matching alone, without it,
takes 0.3 ms. A larger SQLite page cache or ``mmap_size`` changed nothing (the pages are
in the OS cache). Not kept: an exact two-pass BM25 (MaxScore: score only rows with one of
the rarer terms, accepted when the 30th score beats the most the common terms alone
could add, ``idf x (k1 + 1)`` each) gave the same rankings on every bench question but
was certified for too few of them (the bound is loose) to gain: mean 2.9 -> 2.6-3.1 ms,
p95 worse. Nor: BM25 split by row id over two connections and threads, the halves' best 30
merged (the same rows: idf and lengths are the whole table's), p95 9.6 -> 10.4 ms with the
embedding beside it at load 1.3; the dense weights copied into huge-page memory (3 %).
SQLite 3.51 (``pysqlite3-binary``) runs the same BM25 20-25 % faster with the same rows,
but it is not Debian 12's library and ships no wheel for every kiosk board.

Stop 22: BM25 is no longer ``bm25()`` per matched row but the same sums over precomputed
postings (:mod:`kiosk.rag.bm25_postings`, identical rows and scores on every bench
question): 11k chunks, bm25 only, mean 2.8 -> 0.45 ms, p95 7.8 -> 1.0 ms (ad hoc; with the
tokenizing of new terms). FTS5's ``bm25()`` (:func:`bm25`) stays the fallback.

What was left before that (quiet machine): BM25 1.75 ms (p95 3.9) and
the embedding 1.75 ms (its dense layers, 13 MB of float32 weights read per query). Fewer FTS5 terms
would be cheaper but rank differently: thinning overlapping CJK bigrams, or pruning
English terms by their stemmed frequency (``_informative`` looks up the unstemmed word,
so English common words are rarely pruned), each cost tuning-set recall@5 (ja hybrid
0.95 -> 0.91; en hybrid 0.92 -> 0.90).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from kiosk.rag.bm25_postings import (
    Postings,
    QueryTokens,
    bm25_from_postings,
    load_postings,
)
from kiosk.rag.embedding import Embedder, EmbedderUnavailable, one_blas_thread, trim_heap
from kiosk.rag.hybrid import (
    CONVERSATIONAL_BM25_WEIGHT,
    QuestionVectors,
    VectorMatrix,
    floor_for,
    fuse_with_vectors,
    score_question,
)
from kiosk.rag.knowledge import Hit
from kiosk.rag.sqlite_open import BODY_WEIGHT, TITLE_WEIGHT, has_table
from kiosk.rag.text import (
    conversational,
    is_cjk,
    mostly_cjk,
    normalize,
    query_terms,
    without_kana_mixes,
)

log = logging.getLogger(__name__)

# Queries this short that find nothing through the bigram index (a lone kanji, "駐")
# are retried as a substring scan.
SUBSTRING_FALLBACK_MAX_CHARS = 3
# Query terms in more than this share of chunks are skipped (see _informative).
COMMON_TERM_FRACTION = 0.3
MAX_QUERY_TERMS = 12
# Share of a question's terms its best BM25 passage must hold to pass the relevance floor
# on words alone (see covers_question).
COVERAGE_RESCUE = 0.9
# Ranked chunks fetched per result wanted, so one-chunk-per-section still fills k.
CANDIDATES_PER_RESULT = 6

# The same weights as the table's configured ``rank`` (kiosk.rag.sqlite_open.SCHEMA).
_BM25_SQL = (
    f"SELECT rowid, bm25(chunks_fts, {TITLE_WEIGHT}, {BODY_WEIGHT}) AS score FROM chunks_fts "
    "WHERE chunks_fts MATCH ? ORDER BY score, rowid LIMIT ?"
)


def fts_query(terms: Sequence[str]) -> str:
    # Every term quoted: nothing from the user is parsed as FTS5 syntax (AND, NEAR, *, ^).
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)


def stored_embedder(conn: sqlite3.Connection) -> str:
    """The name of the model whose vectors the index holds ("" when none)."""
    row = conn.execute("SELECT value FROM meta WHERE key = 'embedder'").fetchone()
    return str(row[0]) if row else ""


class IndexSearcher:
    """Searches one index file for :class:`~kiosk.rag.sqlite_index.SqliteIndex`.

    Not thread-safe on its own: the index calls it under its connection lock.

    Args:
        path: the file (for log lines).
        embedder: as for SqliteIndex; None: BM25 only.
        relevance_floor: as for SqliteIndex.
    """

    def __init__(self, path: str, embedder: Embedder | None, relevance_floor: float) -> None:
        self.path = path
        self.relevance_floor = relevance_floor
        self._embedder = embedder
        self._frequent: dict[str, int] = {}
        self._total = 0
        self._vectors: VectorMatrix | None = None
        self._headings: VectorMatrix | None = None
        self._warned_other_model = False
        self._warned_no_headings = False
        self._cache_version = -1
        self._worker: ThreadPoolExecutor | None = None
        self._postings: Postings | None = None
        self._query_tokens = QueryTokens()

    def invalidate(self) -> None:
        """Reload the caches at the next search (after this process wrote the file:
        ``PRAGMA data_version`` only moves for other connections' commits)."""
        self._cache_version = -1

    def forget_vectors(self) -> None:
        """Drop the vector matrices (the embedding model was dropped while idle: at 10k
        chunks they are ~8 MB); the next search reloads them with the caches."""
        self._vectors = None
        self._headings = None
        self._cache_version = -1

    def close(self) -> None:
        if self._worker is not None:
            self._worker.shutdown(wait=False)
            self._worker = None

    def search(self, conn: sqlite3.Connection, query: str, k: int) -> list[Hit]:
        """See :meth:`kiosk.rag.sqlite_index.SqliteIndex.search` (``k`` >= 1, ``query`` not blank).

        Raises:
            sqlite3.DatabaseError: SQLite failed.
        """
        terms = query_terms(query)
        self._refresh_caches(conn)
        n = k * CANDIDATES_PER_RESULT
        vectors = self._vectors if self._uses_vectors(query) else None
        scoring: Future[QuestionVectors] | None = None
        if vectors is not None:
            terms = without_kana_mixes(terms)
            scoring = self._score_vectors_beside(vectors, self._headings, query, n)
        terms = self._informative(terms)
        ranked = self._bm25(conn, terms, n) if terms else []
        if vectors is not None and scoring is not None:
            try:
                question = scoring.result()
            except EmbedderUnavailable:  # logged where it happened: keywords only
                vectors = None
        if vectors is not None and scoring is not None:
            weight = CONVERSATIONAL_BM25_WEIGHT if conversational(query) else 1.0
            fused, best = fuse_with_vectors(ranked, vectors, question, n, weight)
            floor = floor_for(self.relevance_floor, is_cjk(query))
            if best < floor and not covers_question(conn, ranked, terms):
                return []  # below the relevance floor: nothing to say
            ranked = fused
        hits = one_per_section(conn, ranked, k)
        if not hits:
            needle = normalize(query).strip()
            if 0 < len(needle) <= SUBSTRING_FALLBACK_MAX_CHARS:
                hits = substring(conn, needle, k)
        return hits

    def _bm25(self, conn: sqlite3.Connection, terms: list[str], n: int) -> list[tuple[int, float]]:
        """:func:`bm25`'s rows, from the precomputed postings when they are current."""
        if self._postings is not None:
            phrases = self._query_tokens.of(conn, terms)
            ranked = bm25_from_postings(conn, self._postings, phrases, n)
            if ranked is not None:
                return ranked
        return bm25(conn, terms, n)

    def _score_vectors_beside(
        self, vectors: VectorMatrix, headings: VectorMatrix | None, query: str, n: int
    ) -> Future[QuestionVectors]:
        """Embed ``query``, score every passage and heading row and pick the ``n`` nearest
        of each on the worker thread (see the module)."""
        assert self._embedder is not None
        embed = self._embedder.embed
        if self._worker is None:
            # One long-lived thread: starting one per query cost more than the overlap
            # saves on a loaded machine.
            self._worker = ThreadPoolExecutor(1, thread_name_prefix="kiosk-embed")
        cjk = is_cjk(query)

        def score() -> QuestionVectors:
            return score_question(embed([query])[0], vectors, headings, n, cjk)

        return self._worker.submit(score)

    def prepare(self, conn: sqlite3.Connection) -> bool:
        """Load what a search needs now; whether searches will embed the query."""
        self._refresh_caches(conn)
        return self._vectors is not None and len(self._vectors) > 0

    def _uses_vectors(self, query: str) -> bool:
        if self._vectors is None or not len(self._vectors):
            return False
        return bool(getattr(self._embedder, "multilingual", False)) or not is_cjk(query)

    def _refresh_caches(self, conn: sqlite3.Connection) -> None:
        """Reload the common-term set and the vector matrix when the file changed.

        Frequent terms: document frequencies of the terms in more than 1 % of chunks
        (a few thousand at most), for :meth:`_informative`. ``PRAGMA data_version``
        reports other connections' writes (``kiosk index add`` while the daemon runs).
        """
        version = conn.execute("PRAGMA data_version").fetchone()[0]
        if self._cache_version == version:
            return
        conn.execute(
            "CREATE VIRTUAL TABLE IF NOT EXISTS temp.chunks_vocab "
            "USING fts5vocab(main, 'chunks_fts', 'row')"
        )
        self._total = conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
        rows = conn.execute(
            "SELECT term, doc FROM temp.chunks_vocab WHERE doc > ?", (self._total // 100,)
        )
        self._frequent = dict(rows.fetchall())
        self._postings = load_postings(conn)
        self._vectors = None
        self._headings = None
        stored = stored_embedder(conn)
        other_model = self._embedder is not None and stored not in ("", self._embedder.name)
        if other_model and not self._warned_other_model:  # built before a model change
            assert self._embedder is not None
            log.warning(
                "%s holds %s vectors, not %s: keyword search only until `kiosk index rebuild`",
                self.path,
                stored,
                self._embedder.name,
            )
            self._warned_other_model = True
        if self._embedder is not None and stored == self._embedder.name:
            self._vectors = _load_vectors(conn, "chunk_vectors", self._embedder.dim)
            if has_table(conn, "heading_vectors"):
                self._headings = _load_vectors(conn, "heading_vectors", self._embedder.dim)
            if not self._headings:
                self._headings = None
                if self._vectors and not self._warned_no_headings:
                    log.info(
                        "%s has no heading vectors: `kiosk index rebuild` adds them", self.path
                    )
                    self._warned_no_headings = True
            one_blas_thread()  # the vector scan's products (VectorMatrix)
            # Its float copies are freed memory the embedding thread could not reuse
            # (11k chunks: 46 MB more resident without this).
            trim_heap()
        self._cache_version = version

    def _informative(self, terms: list[str]) -> list[str]:
        """The query terms worth looking up: the rarest few, common ones dropped.

        Walking the posting lists of frequent terms is nearly all of a query's cost,
        and they carry the least BM25 weight (FTS5 gives a term in over half the chunks
        an IDF of ~1e-6). Dropping terms in more than COMMON_TERM_FRACTION of chunks and
        keeping the MAX_QUERY_TERMS rarest cuts CPU p95 on the 11k-chunk bench from 8 to
        6 ms with recall@5 unchanged (0.25 or a cap of 8 cost Japanese recall). All
        terms are kept if all are common; terms in under 1 % of chunks tie and keep
        their query order.
        """
        df = self._frequent
        limit = self._total * COMMON_TERM_FRACTION
        kept = [t for t in terms if df.get(t, 0) <= limit] or terms
        if len(kept) > MAX_QUERY_TERMS:
            rarest = set(sorted(kept, key=lambda t: df.get(t, 0))[:MAX_QUERY_TERMS])
            kept = [t for t in kept if t in rarest]
        return kept


def _load_vectors(conn: sqlite3.Connection, table: str, dim: int) -> VectorMatrix:
    """The vectors of ``table`` (chunk_vectors or heading_vectors), each row marked with
    its passage's script."""
    ids: list[int] = []
    blobs: list[bytes] = []
    cjk: list[bool] = []
    rows = conn.execute(
        f"SELECT v.id, v.vec, c.text FROM {table} v JOIN chunks c ON c.id = v.id ORDER BY v.id"
    )
    for rowid, blob, text in rows:
        ids.append(rowid)
        blobs.append(blob)
        cjk.append(mostly_cjk(text))
    matrix = np.frombuffer(b"".join(blobs), dtype=np.float16).reshape(len(ids), dim)
    return VectorMatrix(ids, matrix, cjk)


def bm25(conn: sqlite3.Connection, terms: Sequence[str], n: int) -> list[tuple[int, float]]:
    """(chunk row id, BM25 score, higher is better) of the ``n`` best chunks with any of
    ``terms``, best first (ties by row id)."""
    rows = conn.execute(_BM25_SQL, (fts_query(terms), n)).fetchall()
    return [(r[0], -float(r[1])) for r in rows]


def covers_question(
    conn: sqlite3.Connection, ranked: list[tuple[int, float]], terms: list[str]
) -> bool:
    """Whether the best BM25 passage holds nearly every query term (and, for a
    one-term question, has it in its heading).

    Lets a terse but exact question through the relevance floor: short keyword
    queries embed poorly ("FAQ 著者", cosine 0.23; "sid とは", 0.18), yet a passage
    with all their terms is on topic. Tuning set: unanswerable questions' best
    passage held at most 60 % of their terms (83 % for one that cleared the floor
    anyway); six answerable ones under the floor held 50-100 %.
    """
    if not terms or not ranked:
        return False
    rowid = ranked[0][0]
    if len(terms) == 1:
        match = 'title : "' + terms[0].replace('"', '""') + '"'
        found = conn.execute(
            "SELECT 1 FROM chunks_fts WHERE chunks_fts MATCH ? AND rowid = ?", (match, rowid)
        ).fetchone()
        return found is not None
    held = 0
    for term in terms:
        held += (
            conn.execute(
                "SELECT 1 FROM chunks_fts WHERE chunks_fts MATCH ? AND rowid = ?",
                ('"' + term.replace('"', '""') + '"', rowid),
            ).fetchone()
            is not None
        )
    return held >= COVERAGE_RESCUE * len(terms)


def one_per_section(conn: sqlite3.Connection, ranked: list[tuple[int, float]], k: int) -> list[Hit]:
    """The first ``k`` of ``ranked`` (row id, score) that are not a second chunk of an
    already chosen section, as hits (only their text is read)."""
    if not ranked:
        return []
    order = {rowid: pos for pos, (rowid, _) in enumerate(ranked)}
    marks = ",".join("?" * len(order))
    rows = conn.execute(
        f"SELECT id, doc_id, heading FROM chunks WHERE id IN ({marks})", list(order)
    ).fetchall()
    rows.sort(key=lambda r: order[r[0]])
    chosen: list[int] = []
    sections: set[tuple[int, str]] = set()
    for rowid, doc_id, heading in rows:
        if heading:
            if (doc_id, heading) in sections:
                continue
            sections.add((doc_id, heading))
        chosen.append(rowid)
        if len(chosen) == k:
            break
    marks = ",".join("?" * len(chosen))
    found = {
        r[0]: r[1:]
        for r in conn.execute(
            "SELECT c.id, c.chunk_id, c.title, d.source, c.text FROM chunks c "
            f"JOIN documents d ON d.id = c.doc_id WHERE c.id IN ({marks})",
            chosen,
        )
    }
    return [Hit(*found[rowid], ranked[order[rowid]][1]) for rowid in chosen if rowid in found]


def substring(conn: sqlite3.Connection, needle: str, k: int) -> list[Hit]:
    """Chunks containing ``needle`` (heading matches first, then the shortest)."""
    rows = conn.execute(
        """
        SELECT c.chunk_id, c.title, d.source, c.text
        FROM chunks AS c JOIN documents AS d ON d.id = c.doc_id
        WHERE instr(lower(c.title || ' ' || c.text), ?) > 0
        ORDER BY (instr(lower(c.title), ?) > 0) DESC, length(c.text)
        LIMIT ?
        """,
        (needle, needle, k),
    ).fetchall()
    return [Hit(r[0], r[1], r[2], r[3], 0.0) for r in rows]
