"""The embedded knowledge index: one SQLite file with an FTS5 table, BM25 ranking.

Owns writes (replace/remove a document's chunks in one transaction) and search; the
schema and the rules for opening the file are in :mod:`kiosk.rag.sqlite_open`. It does
not read files (``kiosk.rag.ingest``) or know about tools.

Layout::

    documents(id, source UNIQUE, title, content_hash, size_bytes, added_at)
    chunks(id, chunk_id UNIQUE, doc_id -> documents, seq, title, heading, text)
    chunks_fts(title, body)   FTS5, porter+unicode61, rowid = chunks.id
    chunk_vectors(id -> chunks, vec)   optional embeddings (float16)
    meta(key, value)          schema and segmenter versions, embedder name

``chunks_fts`` holds :func:`kiosk.rag.text.segment` of each chunk (words + CJK
bigrams; see that module for why), ``chunks`` the original text. The FTS title column
is the section heading alone (the document title otherwise) and weighs 3x in BM25: a
FAQ's heading is usually the question itself, while a chapter title repeated on every
chunk of the chapter only adds noise (bench, English FAQ set: recall@5 0.81 -> 0.87).

Ranking keeps one chunk per section: a long answer split into five chunks would
otherwise fill all five result slots, leaving no room for the right section when the
long one is wrong (bench: about +0.05 recall@5 in both languages). Chunks of a
document without headings are all distinct passages and are never merged.

Thread use: one connection guarded by a lock, so the daemon's tool thread and the
loop may both call in. WAL mode lets ``kiosk index add`` write while the daemon reads.
A reader (``read_only=True``) never fails to construct: an index it cannot open yet (locked,
damaged, missing) is retried at the next use, at most every ``REOPEN_INTERVAL_S``, so a
daemon started or reloaded during ``kiosk index add`` finds its knowledge afterwards.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from kiosk.rag.chunking import Chunk
from kiosk.rag.embedding import Embedder
from kiosk.rag.hybrid import VectorMatrix, fuse_with_vectors
from kiosk.rag.knowledge import Hit, KnowledgeError
from kiosk.rag.sqlite_open import (
    READ_LOCK_WAIT_S,
    WRITE_LOCK_WAIT_S,
    is_locked,
    locked_error,
    open_read_only,
    open_read_write,
)
from kiosk.rag.text import (
    SEGMENTER_VERSION,
    is_cjk,
    mostly_cjk,
    normalize,
    query_terms,
    segment,
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
# on words alone (see SqliteIndex._covers_question).
COVERAGE_RESCUE = 0.9
# Ranked chunks fetched per result wanted, so one-chunk-per-section still fills k.
CANDIDATES_PER_RESULT = 6

# A reader that could not open its file tries again at most this often.
REOPEN_INTERVAL_S = 5.0


@dataclass(frozen=True, slots=True)
class DocumentRecord:
    source: str
    title: str
    content_hash: str
    size_bytes: int
    added_at: float  # unix seconds
    chunks: int


@dataclass(frozen=True, slots=True)
class IndexStats:
    documents: int
    chunks: int
    file_bytes: int  # database + WAL on disk (0 for ":memory:")


def chunk_id_for(source: str, seq: int) -> str:
    """Stable, short, VoiceRAG-compatible (``[A-Za-z0-9_=-]+``) id of a document's chunk."""
    digest = hashlib.sha1(source.encode("utf-8")).hexdigest()[:10]
    return f"{digest}_{seq}"


def _fts_query(terms: Sequence[str]) -> str:
    # Every term quoted: nothing from the user is parsed as FTS5 syntax (AND, NEAR, *, ^).
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)


class SqliteIndex:
    """A knowledge index in one SQLite file (or ``":memory:"``).

    Args:
        path: the database file.
        create: create the file and schema when missing. With ``create=False`` a missing
            file is an empty index that is opened as soon as it appears (the daemon
            starts before anyone ran ``kiosk index add``).
        embedder: when given, writes store a vector per chunk and searches fuse them
            with BM25 (:func:`kiosk.rag.embedding.load_embedder`); vectors of another
            model, or chunks written without one, are ignored until a rebuild.
        read_only: only read (implies ``create=False``): the file is opened read-only,
            and one that cannot be opened now is retried later (see the module).
        lock_wait_s: how long to wait for another process's lock before giving up
            with a one-line KnowledgeError (default: 30 s writing, 2 s read-only).
        relevance_floor: ``rag.relevance_floor``: with vectors, a question whose best
            passage in its own script has a cosine similarity below this gets no
            results (0 = never abstain). Hit scores are then that cosine.

    Raises:
        KnowledgeError: (not ``read_only``) the file exists but is not a usable index,
            or stayed locked for ``lock_wait_s``.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        create: bool = True,
        embedder: Embedder | None = None,
        read_only: bool = False,
        lock_wait_s: float | None = None,
        relevance_floor: float = 0.0,
    ) -> None:
        self.path = str(path)
        self.relevance_floor = relevance_floor
        self._read_only = read_only
        self._create = create and not read_only
        default_wait = READ_LOCK_WAIT_S if read_only else WRITE_LOCK_WAIT_S
        self._lock_wait_s = default_wait if lock_wait_s is None else lock_wait_s
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._embedder = embedder
        self._frequent: dict[str, int] = {}
        self._total = 0
        self._vectors: VectorMatrix | None = None
        self._warned_other_model = False
        self._cache_version = -1
        self._open_error: KnowledgeError | None = None
        self._open_failed_at = 0.0
        self._open_if_present()

    # --- lifecycle -------------------------------------------------------------------

    def _open_if_present(self) -> None:
        memory = self.path == ":memory:"
        if not memory and not self._create and not Path(self.path).exists():
            return
        if not memory and self._create:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        opener = open_read_only if self._read_only else open_read_write
        try:
            conn = opener(self.path, self._lock_wait_s)
        except sqlite3.DatabaseError as exc:
            if is_locked(exc):
                error = locked_error(self.path, self._lock_wait_s)
            else:
                error = KnowledgeError(f"{self.path}: not a usable kiosk index ({exc})")
            if not self._read_only:
                raise error from None
            if self._open_error is None:
                log.warning("%s (will retry at the next search)", error)
            self._open_error = error
            self._open_failed_at = time.monotonic()
            return
        if self._open_error is not None:
            log.warning("%s: opened after all", self.path)
        self._open_error = None
        self._conn = conn

    def close(self) -> None:
        """Close the connection; idempotent."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> SqliteIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection | None]:
        """The connection (None: no file yet); SQLite lock timeouts become KnowledgeError.

        Raises:
            KnowledgeError: a reader's file exists but still cannot be opened.
        """
        with self._lock:
            if self._conn is None and not self._create:
                # The file may have appeared, been unlocked or repaired since.
                due = time.monotonic() - self._open_failed_at >= REOPEN_INTERVAL_S
                if self._open_error is None or due:
                    self._open_if_present()
                if self._conn is None and self._open_error is not None:
                    raise self._open_error
            try:
                yield self._conn
            except sqlite3.OperationalError as exc:
                if is_locked(exc):
                    raise locked_error(self.path, self._lock_wait_s) from None
                raise

    # --- reads -----------------------------------------------------------------------

    def search(self, query: str, k: int) -> list[Hit]:
        """The best chunks for a free-text question, best first, one per section.

        BM25 alone, or fused with embedding similarity (see
        :func:`~kiosk.rag.hybrid.fuse_with_vectors`) when this
        index has an embedder and vectors from the same model (an English-only model
        is used for non-CJK queries only). With vectors, hit scores are cosine
        similarities (one scale for every language) and ``relevance_floor`` applies.

        Raises:
            ValueError: ``k`` < 1.
            KnowledgeError: SQLite failed (corrupt file, disk error).
        """
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        if not query.strip():
            return []
        terms = query_terms(query)
        with self._connection() as conn:
            if conn is None:
                return []
            try:
                self._refresh_caches(conn)
                if self._uses_vectors(query):
                    terms = without_kana_mixes(terms)
                terms = self._informative(terms)
                ranked: list[tuple[int, float]] = []
                if terms:
                    ranked = self._bm25(conn, _fts_query(terms), k * CANDIDATES_PER_RESULT)
                if self._uses_vectors(query):
                    assert self._embedder is not None and self._vectors is not None
                    fused, best = fuse_with_vectors(
                        ranked,
                        self._vectors,
                        self._embedder.embed([query])[0],
                        is_cjk(query),
                        k * CANDIDATES_PER_RESULT,
                    )
                    if best < self.relevance_floor and not self._covers_question(
                        conn, ranked, terms
                    ):
                        return []  # below the relevance floor: nothing to say
                    ranked = fused
                hits = self._one_per_section(conn, ranked, k)
                if not hits:
                    needle = normalize(query).strip()
                    if 0 < len(needle) <= SUBSTRING_FALLBACK_MAX_CHARS:
                        hits = self._substring(conn, needle, k)
                return hits
            except sqlite3.DatabaseError as exc:
                raise KnowledgeError(f"index search failed: {exc}") from None

    def _uses_vectors(self, query: str) -> bool:
        if self._vectors is None or not len(self._vectors):
            return False
        return bool(getattr(self._embedder, "multilingual", False)) or not is_cjk(query)

    def _refresh_caches(self, conn: sqlite3.Connection) -> None:
        """Reload the common-term set and the vector matrix when the file changed.

        Frequent terms: document frequencies of the terms in more than 1 % of chunks
        (a few thousand at most), for :meth:`_informative`. Our own writes reset the
        cache; ``PRAGMA data_version`` reports other connections' writes (``kiosk index
        add`` while the daemon runs).
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
        self._vectors = None
        stored = self._stored_embedder(conn)
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
            ids: list[int] = []
            blobs: list[bytes] = []
            cjk: list[bool] = []
            rows = conn.execute(
                "SELECT v.id, v.vec, c.text FROM chunk_vectors v JOIN chunks c ON c.id = v.id "
                "ORDER BY v.id"
            )
            for rowid, blob, text in rows:
                ids.append(rowid)
                blobs.append(blob)
                cjk.append(mostly_cjk(text))
            dim = self._embedder.dim
            matrix = np.frombuffer(b"".join(blobs), dtype=np.float16).reshape(len(ids), dim)
            self._vectors = VectorMatrix(ids, matrix, cjk)
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

    @staticmethod
    def _stored_embedder(conn: sqlite3.Connection) -> str:
        row = conn.execute("SELECT value FROM meta WHERE key = 'embedder'").fetchone()
        return str(row[0]) if row else ""

    @staticmethod
    def _bm25(conn: sqlite3.Connection, match: str, n: int) -> list[tuple[int, float]]:
        """(chunk row id, BM25 score, higher is better) of the ``n`` best matches."""
        rows = conn.execute(
            "SELECT rowid, rank FROM chunks_fts WHERE chunks_fts MATCH ? ORDER BY rank LIMIT ?",
            (match, n),
        ).fetchall()
        return [(r[0], -float(r[1])) for r in rows]

    @staticmethod
    def _covers_question(
        conn: sqlite3.Connection, bm25: list[tuple[int, float]], terms: list[str]
    ) -> bool:
        """Whether the best BM25 passage holds nearly every query term (and, for a
        one-term question, has it in its heading).

        Lets a terse but exact question through the relevance floor: short keyword
        queries embed poorly ("FAQ 著者", cosine 0.23; "sid とは", 0.18), yet a passage
        with all their terms is on topic. Tuning set: unanswerable questions' best
        passage held at most 60 % of their terms (83 % for one that cleared the floor
        anyway); six answerable ones under the floor held 50-100 %.
        """
        if not terms or not bm25:
            return False
        rowid = bm25[0][0]
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

    @staticmethod
    def _one_per_section(
        conn: sqlite3.Connection, ranked: list[tuple[int, float]], k: int
    ) -> list[Hit]:
        if not ranked:
            return []
        order = {rowid: pos for pos, (rowid, _) in enumerate(ranked)}
        marks = ",".join("?" * len(order))
        rows = conn.execute(
            "SELECT c.id, c.chunk_id, c.title, d.source, c.text, c.doc_id, c.heading "
            f"FROM chunks c JOIN documents d ON d.id = c.doc_id WHERE c.id IN ({marks})",
            list(order),
        ).fetchall()
        rows.sort(key=lambda r: order[r[0]])
        hits: list[Hit] = []
        sections: set[tuple[int, str]] = set()
        for r in rows:
            if r[6]:
                if (r[5], r[6]) in sections:
                    continue
                sections.add((r[5], r[6]))
            hits.append(Hit(r[1], r[2], r[3], r[4], ranked[order[r[0]]][1]))
            if len(hits) == k:
                break
        return hits

    @staticmethod
    def _substring(conn: sqlite3.Connection, needle: str, k: int) -> list[Hit]:
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

    def chunk(self, chunk_id: str) -> Hit | None:
        """The chunk with this id, or None."""
        with self._connection() as conn:
            if conn is None:
                return None
            row = conn.execute(
                "SELECT c.chunk_id, c.title, d.source, c.text FROM chunks c "
                "JOIN documents d ON d.id = c.doc_id WHERE c.chunk_id = ?",
                (chunk_id,),
            ).fetchone()
        return Hit(row[0], row[1], row[2], row[3], 0.0) if row else None

    def iter_chunks(self) -> Iterator[Hit]:
        """Every chunk in document order (for ``kiosk index push``)."""
        with self._connection() as conn:
            if conn is None:
                return
            rows = conn.execute(
                "SELECT c.chunk_id, c.title, d.source, c.text FROM chunks c "
                "JOIN documents d ON d.id = c.doc_id ORDER BY d.source, c.seq"
            ).fetchall()
        for r in rows:
            yield Hit(r[0], r[1], r[2], r[3], 0.0)

    def stored_vectors(self) -> tuple[str, dict[str, npt.NDArray[np.float16]]]:
        """(embedder name, chunk id -> vector) of the stored vectors (``kiosk index push``).

        ("", {}) when the index holds none.
        """
        with self._connection() as conn:
            if conn is None:
                return "", {}
            name = self._stored_embedder(conn)
            rows = conn.execute(
                "SELECT c.chunk_id, v.vec FROM chunk_vectors v JOIN chunks c ON c.id = v.id"
            ).fetchall()
        vectors = {cid: np.frombuffer(blob, dtype=np.float16) for cid, blob in rows}
        return (name, vectors) if name and vectors else ("", {})

    def document(self, source: str) -> DocumentRecord | None:
        found = self.documents(source)
        return found[0] if found else None

    def documents(self, source: str | None = None) -> list[DocumentRecord]:
        """Ingested documents sorted by source (only ``source`` when given)."""
        sql = (
            "SELECT d.source, d.title, d.content_hash, d.size_bytes, d.added_at, "
            "(SELECT count(*) FROM chunks c WHERE c.doc_id = d.id) FROM documents d"
        )
        args: tuple[str, ...] = ()
        if source is not None:
            sql += " WHERE d.source = ?"
            args = (source,)
        with self._connection() as conn:
            if conn is None:
                return []
            rows = conn.execute(sql + " ORDER BY d.source", args).fetchall()
        return [DocumentRecord(*r) for r in rows]

    def stats(self) -> IndexStats:
        with self._connection() as conn:
            if conn is None:
                return IndexStats(0, 0, 0)
            docs = conn.execute("SELECT count(*) FROM documents").fetchone()[0]
            chunks = conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
        size = 0
        if self.path != ":memory:":
            for suffix in ("", "-wal"):
                p = Path(self.path + suffix)
                size += p.stat().st_size if p.exists() else 0
        return IndexStats(docs, chunks, size)

    # --- writes ----------------------------------------------------------------------

    def replace_document(
        self, source: str, title: str, content_hash: str, size_bytes: int, chunks: Sequence[Chunk]
    ) -> list[str]:
        """Store ``chunks`` as the whole content of ``source`` (old chunks go), atomically.

        Returns:
            The new chunk ids, in order.
        """
        ids = [chunk_id_for(source, c.seq) for c in chunks]
        with self._connection() as conn:
            assert conn is not None, "replace_document needs an index opened with create=True"
            vectors = self._vectors_for(conn, chunks)
            conn.execute("BEGIN IMMEDIATE")
            try:
                self._delete(conn, source)
                cur = conn.execute(
                    "INSERT INTO documents(source, title, content_hash, size_bytes, added_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (source, title, content_hash, size_bytes, time.time()),
                )
                doc_id = cur.lastrowid
                for pos, (cid, c) in enumerate(zip(ids, chunks, strict=True)):
                    cur = conn.execute(
                        "INSERT INTO chunks(chunk_id, doc_id, seq, title, heading, text) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        (cid, doc_id, c.seq, c.title, c.heading, c.text),
                    )
                    conn.execute(
                        "INSERT INTO chunks_fts(rowid, title, body) VALUES (?, ?, ?)",
                        (cur.lastrowid, segment(c.heading or c.title), segment(c.text)),
                    )
                    if vectors is not None:
                        conn.execute(
                            "INSERT INTO chunk_vectors(id, vec) VALUES (?, ?)",
                            (cur.lastrowid, vectors[pos].tobytes()),
                        )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            finally:
                # data_version only moves for other connections' commits.
                self._cache_version = -1
        return ids

    def _vectors_for(
        self, conn: sqlite3.Connection, chunks: Sequence[Chunk]
    ) -> npt.NDArray[np.float16] | None:
        """float16 vectors of ``chunks`` when this index stores our embedder's vectors."""
        if self._embedder is None or not chunks:
            return None
        stored = self._stored_embedder(conn)
        if not stored:
            if conn.execute("SELECT count(*) FROM chunks").fetchone()[0]:
                return None  # chunks without vectors already: only a rebuild adopts one
            conn.execute(
                "INSERT OR REPLACE INTO meta(key, value) VALUES ('embedder', ?)",
                (self._embedder.name,),
            )
        elif stored != self._embedder.name:
            return None
        texts = [f"{c.heading}\n{c.text}" if c.heading else c.text for c in chunks]
        return self._embedder.embed(texts).astype(np.float16)

    def adopt_embedder(self) -> None:
        """Drop stored vectors and record this index's embedder (start of a rebuild)."""
        with self._connection() as conn:
            assert conn is not None
            conn.execute("DELETE FROM chunk_vectors")
            if self._embedder is None:
                conn.execute("DELETE FROM meta WHERE key = 'embedder'")
            else:
                conn.execute(
                    "INSERT OR REPLACE INTO meta(key, value) VALUES ('embedder', ?)",
                    (self._embedder.name,),
                )
            self._cache_version = -1

    def remove_document(self, source: str) -> int:
        """Forget ``source``; returns how many chunks went (0 when it was not indexed)."""
        with self._connection() as conn:
            if conn is None:
                return 0
            conn.execute("BEGIN IMMEDIATE")
            try:
                removed = self._delete(conn, source)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            finally:
                # data_version only moves for other connections' commits.
                self._cache_version = -1
        return removed

    @staticmethod
    def _delete(conn: sqlite3.Connection, source: str) -> int:
        row = conn.execute("SELECT id FROM documents WHERE source = ?", (source,)).fetchone()
        if row is None:
            return 0
        rowids = [r[0] for r in conn.execute("SELECT id FROM chunks WHERE doc_id = ?", (row[0],))]
        conn.executemany("DELETE FROM chunks_fts WHERE rowid = ?", [(r,) for r in rowids])
        conn.execute("DELETE FROM chunks WHERE doc_id = ?", (row[0],))
        conn.execute("DELETE FROM documents WHERE id = ?", (row[0],))
        return len(rowids)

    def set_segmenter_current(self) -> None:
        """Record that every chunk was (re)segmented by this version (after a rebuild)."""
        with self._connection() as conn:
            assert conn is not None
            conn.execute(
                "INSERT OR REPLACE INTO meta(key, value) VALUES ('segmenter_version', ?)",
                (str(SEGMENTER_VERSION),),
            )

    def compact(self) -> None:
        """Merge FTS segments and reclaim free pages (after big changes)."""
        with self._connection() as conn:
            if conn is None:
                return
            conn.execute("INSERT INTO chunks_fts(chunks_fts) VALUES ('optimize')")
            conn.execute("VACUUM")
            if self.path != ":memory:":
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
