"""Opening the index file: the schema, read-only opens, and what a lock means.

Owns the connection rules of :class:`~kiosk.rag.sqlite_index.SqliteIndex`:

- Opening an existing index writes nothing (no pragma, no ``INSERT OR IGNORE``), so it
  needs no write lock: another process may be in the middle of ``kiosk index add``.
  The schema is created only in a new file.
- Readers (``kiosk search``, the daemon) open with ``mode=ro``: a read-only file works.
  On a read-only filesystem SQLite cannot create the WAL's ``-shm`` file, so there the
  file is opened ``immutable`` (nothing can change it anyway).
- Lock waits use SQLite's busy handler, which retries with backoff (1 ms growing to
  100 ms) for up to the given seconds; then :func:`locked_error` is the one-line error.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import urllib.parse
from pathlib import Path

from kiosk.rag.knowledge import KnowledgeError
from kiosk.rag.text import SEGMENTER_VERSION

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
TITLE_WEIGHT = 3.0
BODY_WEIGHT = 1.0
FTS_TOKENIZER = "porter unicode61 remove_diacritics 2"
# How long a writer (kiosk index add/remove/rebuild) waits for another writer's lock.
WRITE_LOCK_WAIT_S = 30.0
# How long a search waits; the daemon answers "unavailable" and retries the next time.
READ_LOCK_WAIT_S = 2.0

_TABLES = ("meta", "documents", "chunks", "chunks_fts")

# The section heading's vector, on the first chunk of each section (same model and
# format as chunk_vectors). Added after the first release: an older file gets the table
# when a writer opens it, and its vectors at the next ``kiosk index rebuild``.
HEADING_VECTORS = """
CREATE TABLE IF NOT EXISTS heading_vectors (
    id INTEGER PRIMARY KEY REFERENCES chunks(id) ON DELETE CASCADE,
    vec BLOB NOT NULL
);"""

SCHEMA = f"""
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
CREATE TABLE IF NOT EXISTS chunk_vectors (
    id INTEGER PRIMARY KEY REFERENCES chunks(id) ON DELETE CASCADE,
    vec BLOB NOT NULL  -- float16, L2-normalised, meta.embedder's model
);
{HEADING_VECTORS}
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(
    title, body, tokenize = '{FTS_TOKENIZER}'
);
INSERT OR IGNORE INTO chunks_fts(chunks_fts, rank)
    VALUES ('rank', 'bm25({TITLE_WEIGHT}, {BODY_WEIGHT})');
"""


def is_locked(exc: BaseException) -> bool:
    """True for SQLite's "database is locked" / "busy" (another connection holds a lock)."""
    text = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


def locked_error(path: str, waited_s: float) -> KnowledgeError:
    return KnowledgeError(
        f"{path}: the index is locked by another process (waited {waited_s:g} s); "
        "try again when it has finished"
    )


def open_read_write(path: str, lock_wait_s: float) -> sqlite3.Connection:
    """A connection that may write; creates the schema in a new file (WAL mode).

    Raises:
        sqlite3.DatabaseError: not an index, or locked for longer than ``lock_wait_s``.
    """
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=lock_wait_s)
    try:
        conn.execute("PRAGMA foreign_keys = ON")
        missing = _missing_tables(conn)
        if missing == set(_TABLES):
            if path != ":memory:":
                conn.execute("PRAGMA journal_mode = WAL")
            conn.executescript(SCHEMA)
        elif missing:
            raise sqlite3.DatabaseError(f"missing tables {', '.join(sorted(missing))}")
        _upgrade(conn, path)
    except BaseException:
        conn.close()
        raise
    return conn


def open_read_only(path: str, lock_wait_s: float) -> sqlite3.Connection:
    """A connection that never writes the file (``mode=ro``; ``immutable`` on a ro filesystem).

    Raises:
        sqlite3.DatabaseError: not an index, locked, or too old to read without a rebuild.
    """
    uri = "file:" + urllib.parse.quote(os.path.abspath(path)) + "?mode=ro"
    if _on_read_only_filesystem(path):
        uri += "&immutable=1"
    conn = sqlite3.connect(
        uri, uri=True, check_same_thread=False, isolation_level=None, timeout=lock_wait_s
    )
    try:
        missing = _missing_tables(conn)
        if missing:
            raise sqlite3.DatabaseError(f"missing tables {', '.join(sorted(missing))}")
        if "heading" not in _columns(conn, "chunks"):
            raise sqlite3.DatabaseError("predates section headings: run `kiosk index rebuild`")
        _warn_if_other_segmenter(conn, path)
    except BaseException:
        conn.close()
        raise
    return conn


def _on_read_only_filesystem(path: str) -> bool:
    try:
        return bool(os.statvfs(Path(path).parent).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _missing_tables(conn: sqlite3.Connection) -> set[str]:
    marks = ",".join("?" * len(_TABLES))
    rows = conn.execute(f"SELECT name FROM sqlite_master WHERE name IN ({marks})", _TABLES)
    return set(_TABLES) - {r[0] for r in rows}


def has_table(conn: sqlite3.Connection, name: str) -> bool:
    found = conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (name,)).fetchone()
    return found is not None


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}


def _upgrade(conn: sqlite3.Connection, path: str) -> None:
    """Bring an index written by an older kiosk up to date; writes only when needed."""
    if "heading" not in _columns(conn, "chunks"):
        # Early indexes did not store section headings: searchable after this,
        # ranked as designed (and deduplicated per section) after a rebuild.
        conn.execute("ALTER TABLE chunks ADD COLUMN heading TEXT NOT NULL DEFAULT ''")
        log.warning("%s predates section headings: run `kiosk index rebuild`", path)
    if not has_table(conn, "heading_vectors"):
        conn.executescript(HEADING_VECTORS)
    if not conn.execute("SELECT 1 FROM meta LIMIT 1").fetchone():
        conn.executemany(
            "INSERT INTO meta(key, value) VALUES (?, ?)",
            [
                ("schema_version", str(SCHEMA_VERSION)),
                ("segmenter_version", str(SEGMENTER_VERSION)),
            ],
        )
    else:
        _warn_if_other_segmenter(conn, path)


def _warn_if_other_segmenter(conn: sqlite3.Connection, path: str) -> None:
    row = conn.execute("SELECT value FROM meta WHERE key = 'segmenter_version'").fetchone()
    if row is not None and row[0] != str(SEGMENTER_VERSION):
        log.warning("%s was built by another kiosk version: run `kiosk index rebuild`", path)
