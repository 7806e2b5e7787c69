"""Knowledge for the kiosk: tools the model calls, the local SQLite index, Azure AI Search.

Entry points for the app: :func:`open_knowledge_base` (backend from config) and
:class:`~kiosk.rag.tools.ToolRunner` (one per Realtime session). ``kiosk.rag.cli``
adds the ``index`` and ``search`` commands.

The names below are imported on first use (PEP 562), so that the embedding worker
(``python -m kiosk.rag.embed_worker``, a process of its own) does not load the
backends, asyncio and ssl with this package: 12.5 MB of its RSS.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kiosk.rag.backends import open_knowledge_base
    from kiosk.rag.knowledge import Hit, KnowledgeBase, KnowledgeError
    from kiosk.rag.tools import ToolResult, ToolRunner, citations_from_middle_tier

_HOMES = {
    "open_knowledge_base": "kiosk.rag.backends",
    "Hit": "kiosk.rag.knowledge",
    "KnowledgeBase": "kiosk.rag.knowledge",
    "KnowledgeError": "kiosk.rag.knowledge",
    "ToolResult": "kiosk.rag.tools",
    "ToolRunner": "kiosk.rag.tools",
    "citations_from_middle_tier": "kiosk.rag.tools",
}

# a literal, so that linters and readers see the names (the TYPE_CHECKING imports above)
__all__ = [
    "Hit",
    "KnowledgeBase",
    "KnowledgeError",
    "ToolResult",
    "ToolRunner",
    "citations_from_middle_tier",
    "open_knowledge_base",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value
