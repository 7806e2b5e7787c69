"""Pick and open the knowledge backend the config asks for.

Owns two rules that keep the daemon up: a missing local index is an empty index plus a
warning (a fresh kiosk starts before anyone ran ``kiosk index add``, and the file is
picked up as soon as it appears), and one that is locked or damaged is retried at the
next search (read-only, see :class:`SqliteIndex`); a backend that cannot be opened (corrupt file, no
Azure key) is logged once and answers every search with a KnowledgeError, which the
tools turn into "the knowledge base is unavailable" for the model.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from kiosk.config import Config
from kiosk.rag.embedding import load_embedder
from kiosk.rag.knowledge import Hit, KnowledgeBase, KnowledgeError
from kiosk.rag.sqlite_index import SqliteIndex

log = logging.getLogger(__name__)


class UnavailableKnowledge:
    """Stands in for a backend that could not be opened; every search fails with ``reason``."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def search(self, query: str, k: int) -> list[Hit]:
        raise KnowledgeError(self.reason)

    def close(self) -> None:
        pass


class LazyKnowledge:
    """Opens its backend at the first search (on the tool thread), not at start-up: the Azure
    SDK costs ~15 MB and ~0.5 s to import, which a kiosk nobody has asked anything yet need
    not pay (bench/bench_footprint.py). A backend that cannot be opened is logged once and
    then answers as :class:`UnavailableKnowledge`."""

    def __init__(self, open_backend: Callable[[], KnowledgeBase]) -> None:
        self._open = open_backend
        self._backend: KnowledgeBase | None = None
        self._lock = threading.Lock()

    @property
    def backend(self) -> KnowledgeBase:
        with self._lock:
            if self._backend is None:
                try:
                    self._backend = self._open()
                except KnowledgeError as exc:
                    log.error("knowledge base unavailable: %s", exc)
                    self._backend = UnavailableKnowledge(str(exc))
            return self._backend

    def search(self, query: str, k: int) -> list[Hit]:
        return self.backend.search(query, k)

    def prepare(self) -> None:
        """Open the backend now (a visitor started speaking: the first search is coming),
        and let it prepare too (Azure starts its query embedder's worker)."""
        prepare = getattr(self.backend, "prepare", None)
        if prepare is not None:
            prepare()

    def close(self) -> None:
        with self._lock:
            backend, self._backend = self._backend, None
        close = getattr(backend, "close", None)
        if close is not None:
            close()


def open_knowledge_base(cfg: Config) -> KnowledgeBase | None:
    """The backend for ``cfg.rag.backend``; None for "none". Never raises.

    The result may have a ``close()`` (SqliteIndex, AzureSearchIndex do): call it on
    shutdown or config reload. Azure is opened at the first search (:class:`LazyKnowledge`).
    """
    rag = cfg.rag
    if rag.backend == "none":
        return None
    try:
        if rag.backend == "azure":
            key = cfg.credentials.azure_search_api_key.reveal()

            def open_azure() -> KnowledgeBase:
                from kiosk.rag.azure_search import AzureSearchIndex

                return AzureSearchIndex(rag, key)

            return LazyKnowledge(open_azure)
        path = Path(rag.index_path)
        if not path.exists():
            log.warning(
                "knowledge index %s does not exist yet: searches find nothing until "
                "`kiosk index add`",
                path,
            )
        embedder = load_embedder(worker=rag.query_embedder == "worker")
        return SqliteIndex(
            path, read_only=True, embedder=embedder, relevance_floor=rag.relevance_floor
        )
    except KnowledgeError as exc:
        log.error("knowledge base unavailable: %s", exc)
        return UnavailableKnowledge(str(exc))


__all__ = ["KnowledgeError", "LazyKnowledge", "UnavailableKnowledge", "open_knowledge_base"]
