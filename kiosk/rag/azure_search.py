"""Azure AI Search as the knowledge backend, for sites that outgrow the local index.

Owns the query shape (VoiceRAG's: keyword search, plus a ``VectorizableTextQuery`` on
the configured vector field, plus semantic ranking when a semantic configuration is
set), field-name mapping, and ``push``: create the index schema when missing and upload
the local index's chunks in batches. Uses the official ``azure-search-documents`` SDK
(sync; tool calls already run in a worker thread). Every SDK/network failure becomes a
:class:`~kiosk.rag.knowledge.KnowledgeError` with one line, never an SDK exception.

``push`` uploads text fields only: vectors for ``azure_vector_field`` need an embedding
model, which Azure's integrated vectorization (indexer + skillset) provides; an index
created here has no vector field, and an existing index's schema is left alone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from azure.core.credentials import AzureKeyCredential
from azure.core.exceptions import AzureError, ResourceNotFoundError
from azure.search.documents import SearchClient
from azure.search.documents.indexes import SearchIndexClient
from azure.search.documents.indexes.models import (
    SearchableField,
    SearchFieldDataType,
    SearchIndex,
    SemanticConfiguration,
    SemanticField,
    SemanticPrioritizedFields,
    SemanticSearch,
    SimpleField,
)
from azure.search.documents.models import VectorizableTextQuery

from kiosk.config import RagSettings
from kiosk.rag.knowledge import Hit, KnowledgeError

log = logging.getLogger(__name__)

VECTOR_K = 50  # neighbours fed to the hybrid fusion (VoiceRAG's value)
PUSH_BATCH = 500  # documents per upload request (the service takes at most 1000)
# A tool call has rag.tool_timeout_s in total: fail fast rather than retry for minutes.
_CLIENT_OPTIONS: dict[str, Any] = {"connection_timeout": 3, "read_timeout": 5, "retry_total": 1}


class AzureSearchIndex:
    """Queries one Azure AI Search index.

    Args:
        settings: ``cfg.rag`` (endpoint, index, field names, semantic config, vector field).
        api_key: the query (or admin, for push) key.
    """

    def __init__(self, settings: RagSettings, api_key: str) -> None:
        if not settings.azure_endpoint or not settings.azure_index:
            raise KnowledgeError(
                "rag.azure_endpoint and rag.azure_index are required for Azure AI Search"
            )
        if not api_key:
            raise KnowledgeError("AZURE_SEARCH_API_KEY is not set")
        self.settings = settings
        self._credential = AzureKeyCredential(api_key)
        self._client = SearchClient(
            settings.azure_endpoint, settings.azure_index, self._credential, **_CLIENT_OPTIONS
        )

    def close(self) -> None:
        self._client.close()

    def _select(self) -> list[str]:
        s = self.settings
        return [
            f
            for f in (
                s.azure_id_field,
                s.azure_content_field,
                s.azure_title_field,
                s.azure_source_field,
            )
            if f
        ]

    def search(self, query: str, k: int) -> list[Hit]:
        """Hybrid (+ semantic) search; raises KnowledgeError when the service fails."""
        s = self.settings
        vector_queries: list[Any] = []
        if s.azure_vector_field:
            vector_queries.append(
                VectorizableTextQuery(
                    text=query, k_nearest_neighbors=VECTOR_K, fields=s.azure_vector_field
                )
            )
        semantic = s.azure_semantic_configuration
        try:
            results = self._client.search(
                search_text=query,
                top=k,
                select=self._select(),
                query_type="semantic" if semantic else "simple",
                semantic_configuration_name=semantic or None,
                vector_queries=vector_queries or None,
            )
            rows = list(results)
        except AzureError as exc:
            raise KnowledgeError(f"Azure AI Search failed: {_one_line(exc)}") from None
        hits = []
        for row in rows[:k]:
            cid = row.get(s.azure_id_field)
            text = row.get(s.azure_content_field)
            if not isinstance(cid, str) or not isinstance(text, str):
                continue  # a document without the configured fields: wrong field names?
            score = row.get("@search.reranker_score") or row.get("@search.score") or 0.0
            hits.append(
                Hit(
                    chunk_id=cid,
                    title=str(row.get(s.azure_title_field) or "") if s.azure_title_field else "",
                    source=str(row.get(s.azure_source_field) or "") if s.azure_source_field else "",
                    text=text,
                    score=float(score),
                )
            )
        return hits


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def index_schema(settings: RagSettings) -> SearchIndex:
    """The index ``push`` creates: key + text fields, semantic config when one is named."""
    s = settings
    fields = [
        # Searchable with the keyword analyzer: VoiceRAG's report_grounding looks ids up
        # by search on this field, as in integrated-vectorization indexes.
        SearchableField(name=s.azure_id_field, key=True, analyzer_name="keyword"),
        SearchableField(name=s.azure_content_field),
    ]
    if s.azure_title_field:
        fields.append(SearchableField(name=s.azure_title_field))
    if s.azure_source_field:
        fields.append(
            SimpleField(name=s.azure_source_field, type=SearchFieldDataType.STRING, filterable=True)
        )
    semantic = None
    if s.azure_semantic_configuration:
        semantic = SemanticSearch(
            configurations=[
                SemanticConfiguration(
                    name=s.azure_semantic_configuration,
                    prioritized_fields=SemanticPrioritizedFields(
                        title_field=SemanticField(field_name=s.azure_title_field)
                        if s.azure_title_field
                        else None,
                        content_fields=[SemanticField(field_name=s.azure_content_field)],
                    ),
                )
            ]
        )
    return SearchIndex(name=s.azure_index, fields=fields, semantic_search=semantic)


def push_chunks(
    settings: RagSettings,
    api_key: str,
    chunks: Iterable[Hit],
    *,
    batch_size: int = PUSH_BATCH,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Create the index if missing, then merge-or-upload ``chunks`` in batches.

    Returns:
        Documents uploaded.

    Raises:
        KnowledgeError: the service refused the schema or a batch (one line).
    """
    s = settings
    if not s.azure_endpoint or not s.azure_index:
        raise KnowledgeError("rag.azure_endpoint and rag.azure_index are required for push")
    if not api_key:
        raise KnowledgeError("AZURE_SEARCH_API_KEY (an admin key) is needed for push")
    credential = AzureKeyCredential(api_key)
    try:
        with SearchIndexClient(s.azure_endpoint, credential, **_CLIENT_OPTIONS) as admin:
            try:
                admin.get_index(s.azure_index)
                log.info("index %s exists; its schema is left as it is", s.azure_index)
            except ResourceNotFoundError:
                admin.create_index(index_schema(s))
                log.info("created index %s", s.azure_index)
        uploaded = 0
        with SearchClient(s.azure_endpoint, s.azure_index, credential, **_CLIENT_OPTIONS) as client:
            batch: list[dict[str, str]] = []
            for hit in chunks:
                doc = {s.azure_id_field: hit.chunk_id, s.azure_content_field: hit.text}
                if s.azure_title_field:
                    doc[s.azure_title_field] = hit.title
                if s.azure_source_field:
                    doc[s.azure_source_field] = hit.source
                batch.append(doc)
                if len(batch) >= batch_size:
                    uploaded += _upload(client, batch)
                    batch = []
                    if progress is not None:
                        progress(uploaded)
            if batch:
                uploaded += _upload(client, batch)
                if progress is not None:
                    progress(uploaded)
    except AzureError as exc:
        raise KnowledgeError(f"Azure AI Search push failed: {_one_line(exc)}") from None
    return uploaded


def _upload(client: SearchClient, batch: list[dict[str, str]]) -> int:
    results = client.merge_or_upload_documents(documents=batch)
    failed = [r for r in results if not r.succeeded]
    if failed:
        first = failed[0]
        raise KnowledgeError(
            f"Azure AI Search refused {len(failed)} of {len(batch)} documents "
            f"(first: {first.key}: {first.error_message})"
        )
    return len(batch)
