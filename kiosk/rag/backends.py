"""Pick and open the knowledge backend the config asks for.

Owns the rule "a missing local index is an empty index plus a warning": the daemon
must start on a fresh kiosk before anyone ran ``kiosk index add``, and it picks the
file up as soon as it appears.
"""

from __future__ import annotations

import logging
from pathlib import Path

from kiosk.config import Config
from kiosk.rag.azure_search import AzureSearchIndex
from kiosk.rag.knowledge import KnowledgeBase, KnowledgeError
from kiosk.rag.sqlite_index import SqliteIndex

log = logging.getLogger(__name__)


def open_knowledge_base(cfg: Config) -> KnowledgeBase | None:
    """The backend for ``cfg.rag.backend``; None for "none".

    Raises:
        KnowledgeError: the local file is not an index, or Azure settings/key are missing.
    """
    rag = cfg.rag
    if rag.backend == "none":
        return None
    if rag.backend == "azure":
        return AzureSearchIndex(rag, cfg.credentials.azure_search_api_key.reveal())
    path = Path(rag.index_path)
    if not path.exists():
        log.warning(
            "knowledge index %s does not exist yet: searches find nothing until `kiosk index add`",
            path,
        )
    return SqliteIndex(path, create=False)


__all__ = ["KnowledgeError", "open_knowledge_base"]
