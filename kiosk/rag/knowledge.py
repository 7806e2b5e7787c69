"""What every knowledge backend returns and the seam the tools call through.

Owns :class:`Hit` (one retrieved passage) and the :class:`KnowledgeBase` protocol.
Backends (``SqliteIndex``, ``AzureSearchIndex``) live in their own modules; the tool
layer (``kiosk.rag.tools``) only knows this protocol.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Hit:
    """One passage returned by a search, best first in a result list.

    ``score`` is higher-is-better within one result list; it is not comparable across
    backends (BM25 for SQLite, ``@search.score`` / reranker score for Azure).
    """

    chunk_id: str
    title: str
    source: str  # ingested file path or URL
    text: str
    score: float


class KnowledgeBase(Protocol):
    """Anything the ``search`` tool can query. Implementations must be thread-safe
    for calls from one worker thread at a time (tool calls run off the event loop)."""

    def search(self, query: str, k: int) -> list[Hit]:
        """The ``k`` best passages for ``query``, best first ([] when nothing matches)."""
        ...


class KnowledgeError(Exception):
    """A backend could not answer (index unreadable, search service down).

    The tool layer turns it into a short error output for the model.
    """
