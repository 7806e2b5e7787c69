"""The rows of one document in the embedded index (:class:`~kiosk.rag.sqlite_index.SqliteIndex`):
its chunk ids, the vectors it stores with them, and the SQL that inserts or deletes them inside
the index's own transaction. No connection, lock or transaction of its own: the index owns those.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from kiosk.rag.chunking import Chunk
from kiosk.rag.embedding import Embedder
from kiosk.rag.sqlite_search import stored_embedder
from kiosk.rag.text import segment


def chunk_id_for(source: str, seq: int) -> str:
    """Stable, short, VoiceRAG-compatible (``[A-Za-z0-9_=-]+``) id of a document's chunk."""
    digest = hashlib.sha1(source.encode("utf-8")).hexdigest()[:10]
    return f"{digest}_{seq}"


def vectors_for(
    conn: sqlite3.Connection, embedder: Embedder | None, chunks: Sequence[Chunk]
) -> npt.NDArray[np.float16] | None:
    """float16 vectors of ``chunks`` when the index stores ``embedder``'s vectors (the first
    write into an empty index adopts it; an index with chunks but no vectors only does so at a
    rebuild)."""
    if embedder is None or not chunks:
        return None
    stored = stored_embedder(conn)
    if not stored:
        if conn.execute("SELECT count(*) FROM chunks").fetchone()[0]:
            return None  # chunks without vectors already: only a rebuild adopts one
        conn.execute(
            "INSERT OR REPLACE INTO meta(key, value) VALUES ('embedder', ?)", (embedder.name,)
        )
    elif stored != embedder.name:
        return None
    texts = [f"{c.heading}\n{c.text}" if c.heading else c.text for c in chunks]
    return embedder.embed(texts).astype(np.float16)


def heading_vectors_for(
    embedder: Embedder, chunks: Sequence[Chunk]
) -> dict[int, npt.NDArray[np.float16]]:
    """Position in ``chunks`` -> float16 vector of its heading, for each section's
    first chunk (see :func:`kiosk.rag.hybrid.fuse_with_vectors` for why)."""
    firsts = [
        pos
        for pos, c in enumerate(chunks)
        if c.heading and (pos == 0 or chunks[pos - 1].heading != c.heading)
    ]
    if not firsts:
        return {}
    rows = embedder.embed([chunks[pos].heading for pos in firsts]).astype(np.float16)
    return dict(zip(firsts, rows, strict=True))


def insert_document(
    conn: sqlite3.Connection,
    source: str,
    title: str,
    content_hash: str,
    size_bytes: int,
    chunks: Sequence[Chunk],
    ids: Sequence[str],
    vectors: npt.NDArray[np.float16] | None,
    headings: dict[int, npt.NDArray[np.float16]],
) -> None:
    """Insert ``source`` and its chunks (with their FTS rows and any vectors); ``source`` must
    not be in the index (:func:`delete_document` first)."""
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
        if pos in headings:
            conn.execute(
                "INSERT INTO heading_vectors(id, vec) VALUES (?, ?)",
                (cur.lastrowid, headings[pos].tobytes()),
            )


def delete_document(conn: sqlite3.Connection, source: str) -> int:
    """Delete ``source``'s rows; returns how many chunks went (0 when it was not indexed)."""
    row = conn.execute("SELECT id FROM documents WHERE source = ?", (source,)).fetchone()
    if row is None:
        return 0
    rowids = [r[0] for r in conn.execute("SELECT id FROM chunks WHERE doc_id = ?", (row[0],))]
    conn.executemany("DELETE FROM chunks_fts WHERE rowid = ?", [(r,) for r in rowids])
    conn.execute("DELETE FROM chunks WHERE doc_id = ?", (row[0],))
    conn.execute("DELETE FROM documents WHERE id = ?", (row[0],))
    return len(rowids)
