"""The embedded knowledge index: one SQLite file with an FTS5 table, BM25 ranking.

Owns the schema, writes (replace/remove a document's chunks in one transaction) and
search. It does not read files (``kiosk.rag.ingest``) or know about tools.

Layout::

    documents(id, source UNIQUE, title, content_hash, size_bytes, added_at)
    chunks(id, chunk_id UNIQUE, doc_id -> documents, seq, title, heading, text)
    chunks_fts(title, body)   FTS5, porter+unicode61, rowid = chunks.id
    meta(key, value)          schema and segmenter versions

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

from kiosk.rag.chunking import Chunk
from kiosk.rag.knowledge import Hit, KnowledgeError
from kiosk.rag.text import SEGMENTER_VERSION, normalize, query_terms, segment

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
TITLE_WEIGHT = 3.0
BODY_WEIGHT = 1.0
# Queries this short that find nothing through the bigram index (a lone kanji, "駐")
# are retried as a substring scan.
SUBSTRING_FALLBACK_MAX_CHARS = 3
# Ranked chunks fetched per result wanted, so one-chunk-per-section still fills k.
CANDIDATES_PER_RESULT = 6

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    added_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY,
    chunk_id TEXT NOT NULL UNIQUE,
    doc_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    title TEXT NOT NULL,
    heading TEXT NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(
    title, body, tokenize = 'porter unicode61 remove_diacritics 2'
);
INSERT OR IGNORE INTO chunks_fts(chunks_fts, rank)
    VALUES ('rank', 'bm25({TITLE_WEIGHT}, {BODY_WEIGHT})');
"""


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

    Raises:
        KnowledgeError: the file exists but is not a usable index.
    """

    def __init__(self, path: Path | str, *, create: bool = True) -> None:
        self.path = str(path)
        self._create = create
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._common: frozenset[str] = frozenset()
        self._common_version = -1
        self._open_if_present()

    # --- lifecycle -------------------------------------------------------------------

    def _open_if_present(self) -> None:
        memory = self.path == ":memory:"
        if not memory and not self._create and not Path(self.path).exists():
            return
        if not memory and self._create:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            conn.execute("PRAGMA foreign_keys = ON")
            if not memory:
                conn.execute("PRAGMA journal_mode = WAL")
            conn.executescript(_SCHEMA)
            self._check_versions(conn)
        except sqlite3.DatabaseError as exc:
            raise KnowledgeError(f"{self.path}: not a usable kiosk index ({exc})") from None
        self._conn = conn

    def _check_versions(self, conn: sqlite3.Connection) -> None:
        rows = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        if not rows:
            conn.executemany(
                "INSERT INTO meta(key, value) VALUES (?, ?)",
                [
                    ("schema_version", str(SCHEMA_VERSION)),
                    ("segmenter_version", str(SEGMENTER_VERSION)),
                ],
            )
        elif rows.get("segmenter_version") != str(SEGMENTER_VERSION):
            log.warning(
                "%s was built by another kiosk version: run `kiosk index rebuild`", self.path
            )

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
        with self._lock:
            if self._conn is None and not self._create:
                self._open_if_present()  # the file may have appeared since
            yield self._conn

    # --- reads -----------------------------------------------------------------------

    def search(self, query: str, k: int) -> list[Hit]:
        """BM25-ranked chunks for a free-text question, best first.

        Raises:
            KnowledgeError: SQLite failed (corrupt file, disk error).
        """
        if k <= 0:
            return []
        terms = query_terms(query)
        with self._connection() as conn:
            if conn is None:
                return []
            try:
                hits: list[Hit] = []
                terms = self._without_common(conn, terms)
                if terms:
                    hits = self._ranked(conn, _fts_query(terms), k)
                if not hits:
                    needle = normalize(query).strip()
                    if 0 < len(needle) <= SUBSTRING_FALLBACK_MAX_CHARS:
                        hits = self._substring(conn, needle, k)
                return hits
            except sqlite3.DatabaseError as exc:
                raise KnowledgeError(f"index search failed: {exc}") from None

    def _without_common(self, conn: sqlite3.Connection, terms: list[str]) -> list[str]:
        """``terms`` minus those in more than half of all chunks (all kept if all are).

        FTS5's BM25 gives such terms an IDF of ~1e-6, so they cannot change the ranking,
        yet walking their posting lists is most of a query's cost (e.g. "debian" in a
        Debian FAQ). The set is cached and rebuilt when the file changes (our own
        writes reset it; ``PRAGMA data_version`` reports other connections' writes).
        """
        version = conn.execute("PRAGMA data_version").fetchone()[0]
        if self._common_version != version:
            conn.execute(
                "CREATE VIRTUAL TABLE IF NOT EXISTS temp.chunks_vocab "
                "USING fts5vocab(main, 'chunks_fts', 'row')"
            )
            total = conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
            rows = conn.execute("SELECT term FROM temp.chunks_vocab WHERE doc > ?", (total // 2,))
            self._common = frozenset(r[0] for r in rows)
            self._common_version = version
        kept = [t for t in terms if t not in self._common]
        return kept or terms

    @staticmethod
    def _ranked(conn: sqlite3.Connection, match: str, k: int) -> list[Hit]:
        rows = conn.execute(
            """
            SELECT c.chunk_id, c.title, d.source, c.text, f.rank, c.doc_id, c.heading
            FROM (SELECT rowid, rank FROM chunks_fts WHERE chunks_fts MATCH ?
                  ORDER BY rank LIMIT ?) AS f
            JOIN chunks AS c ON c.id = f.rowid
            JOIN documents AS d ON d.id = c.doc_id
            ORDER BY f.rank
            """,
            (match, k * CANDIDATES_PER_RESULT),
        ).fetchall()
        hits: list[Hit] = []
        sections: set[tuple[int, str]] = set()
        for r in rows:
            if r[6]:
                if (r[5], r[6]) in sections:
                    continue
                sections.add((r[5], r[6]))
            hits.append(Hit(r[0], r[1], r[2], r[3], -float(r[4])))
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
            conn.execute("BEGIN IMMEDIATE")
            try:
                self._delete(conn, source)
                cur = conn.execute(
                    "INSERT INTO documents(source, title, content_hash, size_bytes, added_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (source, title, content_hash, size_bytes, time.time()),
                )
                doc_id = cur.lastrowid
                for cid, c in zip(ids, chunks, strict=True):
                    cur = conn.execute(
                        "INSERT INTO chunks(chunk_id, doc_id, seq, title, heading, text) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        (cid, doc_id, c.seq, c.title, c.heading, c.text),
                    )
                    conn.execute(
                        "INSERT INTO chunks_fts(rowid, title, body) VALUES (?, ?, ?)",
                        (cur.lastrowid, segment(c.heading or c.title), segment(c.text)),
                    )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            finally:
                # data_version only moves for other connections' commits.
                self._common_version = -1
        return ids

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
                self._common_version = -1
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
