"""Knowledge for the kiosk: tools the model calls, the local SQLite index, Azure AI Search.

Entry points for the app: :func:`open_knowledge_base` (backend from config) and
:class:`~kiosk.rag.tools.ToolRunner` (one per Realtime session). ``kiosk.rag.cli``
adds the ``index`` and ``search`` commands.
"""

from kiosk.rag.backends import open_knowledge_base
from kiosk.rag.knowledge import Hit, KnowledgeBase, KnowledgeError
from kiosk.rag.tools import ToolResult, ToolRunner, citations_from_middle_tier

__all__ = [
    "Hit",
    "KnowledgeBase",
    "KnowledgeError",
    "ToolResult",
    "ToolRunner",
    "citations_from_middle_tier",
    "open_knowledge_base",
]
