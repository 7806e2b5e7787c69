"""The model's knowledge tools: ``search`` and ``report_grounding`` (VoiceRAG's pair).

Owns the tool schemas sent in ``session.update``, argument validation, result
formatting under a character budget, and the per-session memory of which chunk ids
the model has seen (so ``report_grounding`` can turn ids into titled citations and
refuse ids it never got). It does not talk to the Realtime socket: the app passes the
``function_call``'s name and arguments in and sends ``ToolResult.output`` back as the
``function_call_output``.

Arguments come from the model and are untrusted: every bad input yields a
``ToolResult(ok=False)`` with a short output the model can act on, never an exception.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from dataclasses import dataclass
from typing import Any

from kiosk.core.events import Citation
from kiosk.rag.knowledge import Hit, KnowledgeBase, KnowledgeError

log = logging.getLogger(__name__)

SEARCH = "search"
REPORT_GROUNDING = "report_grounding"
MAX_ARGUMENT_CHARS = 8_000  # the JSON the model sends; a real query is a sentence
MAX_QUERY_CHARS = 500
MAX_SOURCES = 20
MAX_SOURCE_ID_CHARS = 100
RESULT_SEPARATOR = "\n-----\n"
NO_RESULTS = "No relevant results found in the knowledge base."
# The headings sent as the recogniser's prompt (Whisper reads at most ~220 tokens of it).
VOCABULARY_CHARS = 300

_SEARCH_SCHEMA: dict[str, Any] = {
    "type": "function",
    "name": SEARCH,
    "description": (
        "Search the knowledge base (its documents may be in English, Japanese or both). "
        "Write the query in the language of the documents that would answer it, as key "
        "terms: the subject and what the visitor wants to do, with the technical name "
        "if you know it, not the whole spoken sentence. If nothing relevant is found "
        "the result says so: then tell the visitor you do not know rather than guess. "
        "Results are formatted as a source id in square brackets, a colon and the text, "
        "separated by lines of dashes."
    ),
    "parameters": {
        "type": "object",
        "properties": {
            "query": {
                "type": "string",
                "description": "Key terms in the documents' language, e.g. "
                "'visitor parking fee' or '駐車場 料金'",
            }
        },
        "required": ["query"],
        "additionalProperties": False,
    },
}

_GROUNDING_SCHEMA: dict[str, Any] = {
    "type": "function",
    "name": REPORT_GROUNDING,
    "description": (
        "Report which knowledge base sources the answer used. Sources are the ids in "
        "square brackets at the start of each search result; list only those actually used."
    ),
    "parameters": {
        "type": "object",
        "properties": {
            "sources": {
                "type": "array",
                "items": {"type": "string"},
                "description": "Ids of the sources used in the last answer",
            }
        },
        "required": ["sources"],
        "additionalProperties": False,
    },
}


@dataclass(frozen=True, slots=True)
class ToolResult:
    """What to send back as the ``function_call_output`` and what to report.

    ``output`` always holds text for the model (an error explanation when not ``ok``);
    ``error`` is a short log-friendly reason when not ``ok``.
    """

    output: str
    ok: bool
    citations: tuple[Citation, ...] = ()
    error: str = ""


def _failure(reason: str) -> ToolResult:
    return ToolResult(output=f"Error: {reason}", ok=False, error=reason)


def format_hits(hits: list[Hit], max_chars: int) -> tuple[str, list[Hit]]:
    """``[chunk_id]: text`` blocks joined by ``-----`` lines, at most ``max_chars`` long.

    Whole hits are kept while they fit; when even the first one does not, its text is
    cut (the model gets something rather than nothing). Returns the text and the hits
    that made it in, whose ids are the only ones the model can cite.
    """
    blocks: list[str] = []
    shown: list[Hit] = []
    used = 0
    for hit in hits:
        block = f"[{hit.chunk_id}]: {hit.text}"
        extra = len(block) + (len(RESULT_SEPARATOR) if blocks else 0)
        if used + extra > max_chars:
            if not blocks:
                blocks.append(block[: max(0, max_chars - 1)] + "…")
                shown.append(hit)
            break
        blocks.append(block)
        shown.append(hit)
        used += extra
    return RESULT_SEPARATOR.join(blocks), shown


class ToolRunner:
    """Runs the knowledge tools for one Realtime session.

    Create one per session (the memory of seen chunk ids is per conversation).

    Args:
        knowledge: the backend ``search`` queries.
        top_k: passages asked of the backend per search.
        max_result_chars: cap on one search output (it is billed as text input on every
            later turn of the conversation).
    """

    def __init__(self, knowledge: KnowledgeBase, *, top_k: int, max_result_chars: int) -> None:
        self._knowledge = knowledge
        self._top_k = top_k
        self._max_result_chars = max_result_chars
        self._lock = threading.Lock()
        self._seen: dict[str, Citation] = {}
        self.last_search_citations: tuple[Citation, ...] = ()
        self._vocabulary: str | None = None

    @staticmethod
    def schemas() -> list[dict[str, Any]]:
        """Flat function tools for ``session.tools`` (the same shape in GA and beta)."""
        return [json.loads(json.dumps(s)) for s in (_SEARCH_SCHEMA, _GROUNDING_SCHEMA)]

    def vocabulary(self, max_chars: int = VOCABULARY_CHARS) -> str:
        """The knowledge base's section headings, comma-separated: words a speech recogniser
        should expect (sent as ``transcription.prompt``). "" when the backend cannot list
        its chunks (Azure AI Search) or fails."""
        if self._vocabulary is None:
            words: dict[str, None] = {}
            iter_chunks = getattr(self._knowledge, "iter_chunks", None)
            try:
                for hit in iter_chunks() if callable(iter_chunks) else ():
                    heading = hit.title.rsplit(" > ", 1)[-1].strip()
                    if heading and " > " in hit.title:
                        words[heading] = None
            except Exception as exc:  # a vocabulary is a nicety: never cost a session
                log.warning("knowledge base headings unavailable: %s", exc)
            text = ""
            for word in words:
                if len(text) + len(word) + 2 > max_chars:
                    break
                text = f"{text}, {word}" if text else word
            self._vocabulary = text
        return self._vocabulary

    def reset(self) -> None:
        """Forget seen chunk ids (a new conversation on the same runner)."""
        with self._lock:
            self._seen.clear()
            self.last_search_citations = ()

    def run(self, name: str, arguments: str) -> ToolResult:
        """Run tool ``name`` with the model's JSON ``arguments``; never raises for bad input.

        Blocking (the backend may do disk or network I/O): call from a worker thread, or
        use :meth:`run_async`.
        """
        if not isinstance(arguments, str) or len(arguments) > MAX_ARGUMENT_CHARS:
            return _failure(f"arguments too long (max {MAX_ARGUMENT_CHARS} characters)")
        try:
            args = json.loads(arguments or "{}")
        except (json.JSONDecodeError, RecursionError):
            return _failure("arguments are not valid JSON")
        if not isinstance(args, dict):
            return _failure("arguments must be a JSON object")
        if name == SEARCH:
            return self._search(args)
        if name == REPORT_GROUNDING:
            return self._report_grounding(args)
        return _failure(f"unknown tool {name[:40]!r}; available: {SEARCH}, {REPORT_GROUNDING}")

    async def run_async(self, name: str, arguments: str, timeout_s: float) -> ToolResult:
        """:meth:`run` in a worker thread; after ``timeout_s`` a short error result.

        The thread is not killed on timeout (Python cannot); its late result is dropped.
        """
        try:
            return await asyncio.wait_for(asyncio.to_thread(self.run, name, arguments), timeout_s)
        except TimeoutError:
            log.warning("tool %s timed out after %.1f s", name[:40], timeout_s)
            return _failure(f"{name[:40]} timed out, the knowledge base is slow; try again")

    # --- tools -----------------------------------------------------------------------

    def _search(self, args: dict[str, Any]) -> ToolResult:
        query = args.get("query")
        if not isinstance(query, str):
            return _failure("'query' must be a string")
        query = query.strip()
        if not query:
            return _failure("'query' is empty")
        if len(query) > MAX_QUERY_CHARS:
            return _failure(f"'query' too long (max {MAX_QUERY_CHARS} characters); use key words")
        try:
            hits = self._knowledge.search(query, self._top_k)
        except KnowledgeError as exc:
            log.error("search failed: %s", exc)
            return _failure("the knowledge base is unavailable right now")
        except Exception:
            # A backend bug must cost one answer, not the daemon (tool boundary).
            log.exception("search backend raised")
            return _failure("the knowledge base failed on this query")
        if not hits:
            with self._lock:
                self.last_search_citations = ()
            return ToolResult(output=NO_RESULTS, ok=True)
        output, shown = format_hits(hits, self._max_result_chars)
        citations = tuple(Citation(h.chunk_id, h.title, h.source) for h in shown)
        with self._lock:
            for c in citations:
                self._seen[c.chunk_id] = c
            self.last_search_citations = citations
        log.debug("search: %d hits, %d shown, %d chars", len(hits), len(shown), len(output))
        return ToolResult(output=output, ok=True)

    def _report_grounding(self, args: dict[str, Any]) -> ToolResult:
        sources = args.get("sources")
        if not isinstance(sources, list) or not all(isinstance(s, str) for s in sources):
            return _failure("'sources' must be a list of source id strings")
        if len(sources) > MAX_SOURCES:
            return _failure(f"too many sources (max {MAX_SOURCES})")
        if any(len(s) > MAX_SOURCE_ID_CHARS for s in sources):
            return _failure("a source id is too long; use the ids from the search results")
        wanted = list(dict.fromkeys(s.strip().strip("[]") for s in sources if s.strip()))
        with self._lock:
            known = [self._seen[s] for s in wanted if s in self._seen]
        unknown = [s for s in wanted if s not in {c.chunk_id for c in known}]
        if unknown and not known:
            listed = ", ".join(unknown[:5])
            return _failure(
                f"unknown source ids: {listed}; cite ids from this conversation's search results"
            )
        output = f"Reported {len(known)} source(s)."
        if unknown:
            output += f" Ignored unknown ids: {', '.join(unknown[:5])}."
        return ToolResult(output=output, ok=True, citations=tuple(known))


def citations_from_middle_tier(tool_name: str, tool_result: str) -> tuple[Citation, ...]:
    """Citations in a VoiceRAG ``extension.middle_tier_tool_response``; () if none or malformed.

    VoiceRAG sends, for ``report_grounding``, ``tool_result`` = JSON
    ``{"sources": [{"chunk_id": ..., "title": ..., "chunk": ...}]}``. Plain id strings
    are accepted too. Never raises.
    """
    if tool_name != REPORT_GROUNDING or not isinstance(tool_result, str):
        return ()
    if len(tool_result) > 1_000_000:
        return ()
    try:
        payload = json.loads(tool_result)
    except (json.JSONDecodeError, RecursionError):
        return ()
    sources = payload.get("sources") if isinstance(payload, dict) else payload
    if not isinstance(sources, list):
        return ()
    out: dict[str, Citation] = {}
    for item in sources[:MAX_SOURCES]:
        if isinstance(item, str) and item:
            out.setdefault(item[:MAX_SOURCE_ID_CHARS], Citation(item[:MAX_SOURCE_ID_CHARS]))
        elif isinstance(item, dict):
            cid = item.get("chunk_id")
            if not isinstance(cid, str) or not cid:
                continue
            title = item.get("title")
            source = item.get("source") or item.get("url") or item.get("filepath")
            out.setdefault(
                cid[:MAX_SOURCE_ID_CHARS],
                Citation(
                    cid[:MAX_SOURCE_ID_CHARS],
                    title if isinstance(title, str) else "",
                    source if isinstance(source, str) else "",
                ),
            )
    return tuple(out.values())
