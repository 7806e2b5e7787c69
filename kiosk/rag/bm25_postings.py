"""FTS5's ``bm25()`` computed from precomputed postings, with the same scores.

Why: at 11k chunks FTS5's ``bm25()`` was most of a query's time and all of its tail
(~1.4 us per matching row: for each row it gathers every phrase's positions and looks up
the row's token count in ``chunks_fts_docsize``; 3.2 ms mean, 7.6 ms p95 thread CPU, up to
6,400 rows for a question of common words). The same sum over whole posting lists is a
few numpy products.

What is stored (written by :func:`write_postings` after ``kiosk index add`` and compaction):

- ``bm25_postings(term, postings)``: for each token FTS5 indexed, the row ids holding it
  (int32, ascending) followed by its count in the title and in the body (uint16 each);
- the row ``term = ''`` (no token is empty): the fingerprint of the FTS5 index it was made
  from, the row and token totals FTS5's ``bm25()`` reads, and each row's token count.

The fingerprint is a hash of FTS5's averages and structure records (``chunks_fts_data``
rows 1 and 10): every write to ``chunks_fts`` changes the structure record, so postings
of another state of the index are never used. Then, and for a query whose term FTS5 would
read as a phrase of several tokens, the search falls back to FTS5's own ``bm25()``.

The scores are computed in the same float64 operations, in the same order, as
``fts5Bm25Function`` (SQLite's ``ext/fts5/fts5_aux.c``: k1 = 1.2, b = 0.75, IDF floor
1e-6), so rankings are identical, ties included (checked on every bench question).
A library compiled to fuse multiply-adds could differ in the last bit, on exact ties only.
"""

from __future__ import annotations

import hashlib
import math
import sqlite3
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from kiosk.rag.sqlite_open import BODY_WEIGHT, FTS_TOKENIZER, TITLE_WEIGHT, has_table

TABLE = "bm25_postings"
# FTS5's bm25() constants (fts5_aux.c).
K1 = 1.2
B = 0.75
IDF_FLOOR = 1e-6
_AVERAGES_ROWID = 1
_STRUCTURE_ROWID = 10
_HEADER = struct.Struct("<20sqq")  # fingerprint, rows, tokens
# Query terms' tokens remembered (the tokenizer is deterministic).
TOKEN_CACHE_SIZE = 4096

_CREATE = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (term TEXT PRIMARY KEY, postings BLOB NOT NULL)
WITHOUT ROWID"""


def fingerprint(conn: sqlite3.Connection) -> bytes:
    """A hash of the FTS5 index's state (changes with every write to ``chunks_fts``)."""
    h = hashlib.sha1()
    for rowid in (_AVERAGES_ROWID, _STRUCTURE_ROWID):
        row = conn.execute("SELECT block FROM chunks_fts_data WHERE id = ?", (rowid,)).fetchone()
        h.update(b"-" if row is None else bytes(row[0]))
    return h.digest()


def _varints(data: bytes) -> list[int]:
    """SQLite's varints (FTS5's records use them)."""
    out: list[int] = []
    i = 0
    while i < len(data):
        value = 0
        for n in range(9):
            byte = data[i]
            i += 1
            if n == 8:
                value = (value << 8) | byte
                break
            value = (value << 7) | (byte & 0x7F)
            if not byte & 0x80:
                break
        out.append(value)
    return out


def write_postings(conn: sqlite3.Connection) -> None:
    """(Re)write the postings of ``chunks_fts`` as it is now, in one transaction.

    ~3 s at 11k chunks (FTS5's instance listing, grouped by SQLite).
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(
            "CREATE VIRTUAL TABLE IF NOT EXISTS temp.chunks_instances "
            "USING fts5vocab(main, 'chunks_fts', 'instance')"
        )
        conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
        conn.execute(_CREATE)
        averages = conn.execute(
            "SELECT block FROM chunks_fts_data WHERE id = ?", (_AVERAGES_ROWID,)
        ).fetchone()
        totals = _varints(bytes(averages[0])) if averages else [0]
        rows, tokens = totals[0], sum(totals[1:])
        sizes = conn.execute("SELECT id, sz FROM chunks_fts_docsize").fetchall()
        top = max((r[0] for r in sizes), default=0)
        lengths = np.zeros(top + 1, dtype=np.int32)
        for rowid, size in sizes:
            lengths[rowid] = sum(_varints(bytes(size)))
        header = _HEADER.pack(fingerprint(conn), rows, tokens)
        conn.execute(f"INSERT INTO {TABLE} VALUES ('', ?)", (header + lengths.tobytes(),))
        conn.executemany(f"INSERT INTO {TABLE} VALUES (?, ?)", _grouped(conn))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _grouped(conn: sqlite3.Connection) -> Iterator[tuple[str, bytes]]:
    """(term, postings blob) per token, from FTS5's instance listing."""
    cursor = conn.execute(
        "SELECT term, doc, col = 'title', count(*) FROM temp.chunks_instances "
        "GROUP BY term, doc, col ORDER BY term, doc"
    )
    term = None
    docs: list[int] = []
    title: list[int] = []
    body: list[int] = []
    for t, doc, in_title, count in cursor:
        if t != term:
            if term is not None:
                yield term, _pack(docs, title, body)
            term, docs, title, body = t, [], [], []
        if not docs or docs[-1] != doc:
            docs.append(doc)
            title.append(0)
            body.append(0)
        if in_title:
            title[-1] += count
        else:
            body[-1] += count
    if term is not None:
        yield term, _pack(docs, title, body)


def _pack(docs: list[int], title: list[int], body: list[int]) -> bytes:
    cap = np.iinfo(np.uint16).max
    return (
        np.asarray(docs, dtype=np.int32).tobytes()
        + np.minimum(title, cap).astype(np.uint16).tobytes()
        + np.minimum(body, cap).astype(np.uint16).tobytes()
    )


@dataclass(frozen=True, slots=True)
class Postings:
    """What a query needs besides the postings themselves: per row id, FTS5's length
    normalisation ``k1 * (1 - b + b * D / avgdl)``."""

    rows: int
    norm: npt.NDArray[np.float64]


def load_postings(conn: sqlite3.Connection) -> Postings | None:
    """The postings' totals when they describe ``chunks_fts`` as it is (else None)."""
    if not has_table(conn, TABLE):
        return None
    row = conn.execute(f"SELECT postings FROM {TABLE} WHERE term = ''").fetchone()
    if row is None:
        return None
    blob = bytes(row[0])
    stamp, rows, tokens = _HEADER.unpack_from(blob)
    if stamp != fingerprint(conn) or rows <= 0:
        return None
    lengths = np.frombuffer(blob, dtype=np.int32, offset=_HEADER.size).astype(np.float64)
    avgdl = float(tokens) / float(rows)
    return Postings(rows, K1 * ((1 - B) + (B * lengths) / avgdl))


class QueryTokens:
    """What FTS5's tokenizer makes of each quoted query term, asked of SQLite itself
    (a scratch FTS5 table in the connection's temp schema), remembered per term."""

    def __init__(self) -> None:
        self._known: dict[str, tuple[str, ...]] = {}

    def of(self, conn: sqlite3.Connection, terms: Sequence[str]) -> list[tuple[str, ...]]:
        missing = [t for t in dict.fromkeys(terms) if t not in self._known]
        if missing:
            if len(self._known) + len(missing) > TOKEN_CACHE_SIZE:
                self._known.clear()
            self._known.update(_tokenize(conn, missing))
        return [self._known[t] for t in terms]


def _tokenize(conn: sqlite3.Connection, terms: list[str]) -> dict[str, tuple[str, ...]]:
    conn.execute(
        "CREATE VIRTUAL TABLE IF NOT EXISTS temp.query_tokens "
        f"USING fts5(t, tokenize = '{FTS_TOKENIZER}')"
    )
    conn.execute(
        "CREATE VIRTUAL TABLE IF NOT EXISTS temp.query_token_list "
        "USING fts5vocab(temp, 'query_tokens', 'instance')"
    )
    conn.execute("DELETE FROM temp.query_tokens")
    conn.executemany(
        "INSERT INTO temp.query_tokens(rowid, t) VALUES (?, ?)",
        [(i, t) for i, t in enumerate(terms)],
    )
    found = sorted(conn.execute("SELECT doc, offset, term FROM temp.query_token_list"))
    tokens: list[list[str]] = [[] for _ in terms]
    for doc, _offset, token in found:
        tokens[doc].append(token)
    return {t: tuple(tokens[i]) for i, t in enumerate(terms)}


def bm25_from_postings(
    conn: sqlite3.Connection, postings: Postings, phrases: Sequence[tuple[str, ...]], n: int
) -> list[tuple[int, float]] | None:
    """FTS5's ``bm25(chunks_fts, TITLE_WEIGHT, BODY_WEIGHT)`` for the OR of ``phrases``:
    (row id, score, higher is better) of the ``n`` best rows, best first, ties by row id.
    None when a phrase has several tokens (FTS5 would match them as a phrase)."""
    if any(len(p) > 1 for p in phrases):
        return None
    norm = postings.norm
    score = np.zeros(len(norm))
    matched = np.zeros(len(norm), dtype=bool)
    for phrase in phrases:
        if not phrase:
            continue  # no token: matches nothing, adds nothing
        row = conn.execute(f"SELECT postings FROM {TABLE} WHERE term = ?", phrase).fetchone()
        if row is None:
            continue
        blob = row[0]
        hits = len(blob) // 8
        rowids = np.frombuffer(blob, dtype=np.int32, count=hits)
        title = np.frombuffer(blob, dtype=np.uint16, count=hits, offset=4 * hits)
        body = np.frombuffer(blob, dtype=np.uint16, count=hits, offset=6 * hits)
        # fts5_aux.c: idf = log((N - nHit + 0.5) / (nHit + 0.5)), at least 1e-6.
        idf = math.log((postings.rows - hits + 0.5) / (hits + 0.5))
        if idf <= 0.0:
            idf = IDF_FLOOR
        freq = title * TITLE_WEIGHT + body * BODY_WEIGHT
        score[rowids] += idf * ((freq * (K1 + 1.0)) / (freq + norm[rowids]))
        matched[rowids] = True
    candidates = np.flatnonzero(matched)
    if len(candidates) > n:
        scores = score[candidates]
        nth = np.partition(scores, len(scores) - n)[len(scores) - n]
        candidates = candidates[scores >= nth]
    order = np.lexsort((candidates, -score[candidates]))[:n]
    return [(int(candidates[i]), float(score[candidates[i]])) for i in order]
