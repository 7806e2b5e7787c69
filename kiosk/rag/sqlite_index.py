"""The embedded knowledge index: one SQLite file with an FTS5 table, BM25 ranking.

Owns the file's lifecycle, writes (replace/remove a document's chunks in one
transaction; the rows' SQL is :mod:`kiosk.rag.sqlite_write`'s) and listings; searching is
:mod:`kiosk.rag.sqlite_search`'s, and the schema and the rules for opening the file are in
:mod:`kiosk.rag.sqlite_open`. It does not read files (``kiosk.rag.ingest``) or know about
tools.

Layout::

    documents(id, source UNIQUE, title, content_hash, size_bytes, added_at)
    chunks(id, chunk_id UNIQUE, doc_id -> documents, seq, title, heading, text)
    chunks_fts(title, body)   FTS5, porter+unicode61, rowid = chunks.id
    chunk_vectors(id -> chunks, vec)   optional embeddings (float16)
    heading_vectors(id -> chunks, vec) the section heading's embedding, on its first chunk
    meta(key, value)          schema and segmenter versions, embedder name

``chunks_fts`` holds :func:`kiosk.rag.text.segment` of each chunk (words + CJK
bigrams; see that module for why), ``chunks`` the original text. The FTS title column
is the section heading alone (the document title otherwise) and weighs 3x in BM25: a
FAQ's heading is usually the question itself, while a chapter title repeated on every
chunk of the chapter only adds noise (bench, English FAQ set: recall@5 0.81 -> 0.87).

Thread use: one connection guarded by a lock, so the daemon's tool thread and the
loop may both call in. WAL mode lets ``kiosk index add`` write while the daemon reads.
A reader (``read_only=True``) never fails to construct: an index it cannot open yet (locked,
damaged, missing) is retried at the next use, at most every ``REOPEN_INTERVAL_S``, so a
daemon started or reloaded during ``kiosk index add`` finds its knowledge afterwards.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from kiosk.rag.bm25_postings import write_postings
from kiosk.rag.chunking import Chunk
from kiosk.rag.embedding import Embedder, close_embedder, prepare_embedder
from kiosk.rag.knowledge import Hit, KnowledgeError
from kiosk.rag.sqlite_open import (
    READ_LOCK_WAIT_S,
    WRITE_LOCK_WAIT_S,
    has_table,
    is_locked,
    locked_error,
    open_read_only,
    open_read_write,
)
from kiosk.rag.sqlite_search import IndexSearcher, stored_embedder
from kiosk.rag.sqlite_write import (
    chunk_id_for,
    delete_document,
    heading_vectors_for,
    insert_document,
    vectors_for,
)
from kiosk.rag.text import SEGMENTER_VERSION

log = logging.getLogger(__name__)

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


def _forget_vectors_of(ref: weakref.ref[SqliteIndex]) -> Callable[[], None]:
    def forget() -> None:
        index = ref()
        if index is not None:
            with index._lock:  # not during a search
                index._searcher.forget_vectors()

    return forget


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
        self._read_only = read_only
        self._create = create and not read_only
        default_wait = READ_LOCK_WAIT_S if read_only else WRITE_LOCK_WAIT_S
        self._lock_wait_s = default_wait if lock_wait_s is None else lock_wait_s
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._embedder = embedder
        self._searcher = IndexSearcher(self.path, embedder, relevance_floor)
        on_unload = getattr(embedder, "on_unload", None)
        if on_unload is not None:  # the vectors go with the model (weakly: no cycle)
            on_unload(_forget_vectors_of(weakref.ref(self)))
        self._open_error: KnowledgeError | None = None
        self._open_failed_at = 0.0
        self._postings_stale = False  # a write since the BM25 postings were last written
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
        """Close the connection, and end the embedder's worker process if it has one;
        idempotent. Postings left stale by this object's writes are written first."""
        if self._postings_stale:
            try:
                self.write_postings()
            except (KnowledgeError, sqlite3.DatabaseError) as exc:  # never mask the caller's error
                log.warning("%s: BM25 postings not rewritten (%s); FTS5 ranks", self.path, exc)
        with self._lock:
            self._searcher.close()
            if self._conn is not None:
                self._conn.close()
                self._conn = None
        close_embedder(self._embedder)

    def prepare(self) -> None:
        """A visitor started speaking: load the vectors and start the embedder's worker
        process now, while they talk, not on the first search's clock. Never raises."""
        try:
            with self._connection() as conn:
                embeds = conn is not None and self._searcher.prepare(conn)
        except (KnowledgeError, sqlite3.DatabaseError) as exc:
            log.debug("index not prepared: %s", exc)
            return
        if embeds:
            prepare_embedder(self._embedder)

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
        with self._connection() as conn:
            if conn is None:
                return []
            try:
                return self._searcher.search(conn, query, k)
            except sqlite3.DatabaseError as exc:
                raise KnowledgeError(f"index search failed: {exc}") from None

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

    def stored_vectors(
        self, headings: bool = False
    ) -> tuple[str, dict[str, npt.NDArray[np.float16]]]:
        """(embedder name, chunk id -> vector) of the stored vectors (``kiosk index push``):
        the passages', or with ``headings`` the section headings' (on each section's
        first chunk only). ("", {}) when the index holds none.
        """
        table = "heading_vectors" if headings else "chunk_vectors"
        with self._connection() as conn:
            if conn is None:
                return "", {}
            name = stored_embedder(conn)
            if not has_table(conn, table):  # read-only, written before heading vectors
                return "", {}
            rows = conn.execute(
                f"SELECT c.chunk_id, v.vec FROM {table} v JOIN chunks c ON c.id = v.id"
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
            vectors = vectors_for(conn, self._embedder, chunks)
            headings = (
                heading_vectors_for(self._embedder, chunks)
                if vectors is not None and self._embedder is not None
                else {}
            )
            conn.execute("BEGIN IMMEDIATE")
            try:
                delete_document(conn, source)
                insert_document(
                    conn, source, title, content_hash, size_bytes, chunks, ids, vectors, headings
                )
                conn.execute("COMMIT")
                self._postings_stale = True
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            finally:
                self._searcher.invalidate()
        return ids

    def adopt_embedder(self) -> None:
        """Drop stored vectors and record this index's embedder (start of a rebuild)."""
        with self._connection() as conn:
            assert conn is not None
            conn.execute("DELETE FROM chunk_vectors")
            conn.execute("DELETE FROM heading_vectors")
            if self._embedder is None:
                conn.execute("DELETE FROM meta WHERE key = 'embedder'")
            else:
                conn.execute(
                    "INSERT OR REPLACE INTO meta(key, value) VALUES ('embedder', ?)",
                    (self._embedder.name,),
                )
            self._searcher.invalidate()

    def remove_document(self, source: str) -> int:
        """Forget ``source``; returns how many chunks went (0 when it was not indexed)."""
        with self._connection() as conn:
            if conn is None:
                return 0
            conn.execute("BEGIN IMMEDIATE")
            try:
                removed = delete_document(conn, source)
                conn.execute("COMMIT")
                self._postings_stale = self._postings_stale or removed > 0
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            finally:
                self._searcher.invalidate()
        return removed

    def set_segmenter_current(self) -> None:
        """Record that every chunk was (re)segmented by this version (after a rebuild)."""
        with self._connection() as conn:
            assert conn is not None
            conn.execute(
                "INSERT OR REPLACE INTO meta(key, value) VALUES ('segmenter_version', ?)",
                (str(SEGMENTER_VERSION),),
            )

    def write_postings(self) -> None:
        """Rewrite the BM25 postings if this object wrote since (:mod:`kiosk.rag.bm25_postings`;
        searches use FTS5's own ``bm25()`` until then). :meth:`close` does it too."""
        with self._connection() as conn:
            if conn is not None and not self._read_only and self._postings_stale:
                write_postings(conn)
                self._postings_stale = False
                self._searcher.invalidate()

    def compact(self) -> None:
        """Merge FTS segments, rewrite the BM25 postings and reclaim free pages."""
        with self._connection() as conn:
            if conn is None:
                return
            conn.execute("INSERT INTO chunks_fts(chunks_fts) VALUES ('optimize')")
            write_postings(conn)
            self._postings_stale = False
            self._searcher.invalidate()
            conn.execute("VACUUM")
            if self.path != ":memory:":
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
