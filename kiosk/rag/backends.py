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


def open_knowledge_base(cfg: Config) -> KnowledgeBase | None:
    """The backend for ``cfg.rag.backend``; None for "none". Never raises.

    The result may have a ``close()`` (SqliteIndex, AzureSearchIndex do): call it on
    shutdown or config reload.
    """
    rag = cfg.rag
    if rag.backend == "none":
        return None
    try:
        if rag.backend == "azure":
            # Imported here: the SDK takes ~0.5 s to import, wasted on local-index kiosks.
            from kiosk.rag.azure_search import AzureSearchIndex

            return AzureSearchIndex(rag, cfg.credentials.azure_search_api_key.reveal())
        path = Path(rag.index_path)
        if not path.exists():
            log.warning(
                "knowledge index %s does not exist yet: searches find nothing until "
                "`kiosk index add`",
                path,
            )
        return SqliteIndex(
            path, read_only=True, embedder=load_embedder(), relevance_floor=rag.relevance_floor
        )
    except KnowledgeError as exc:
        log.error("knowledge base unavailable: %s", exc)
        return UnavailableKnowledge(str(exc))


__all__ = ["KnowledgeError", "UnavailableKnowledge", "open_knowledge_base"]
