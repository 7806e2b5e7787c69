"""``kiosk index push --azure``: make an Azure AI Search index hold the local index.

Push mirrors the local index: it uploads every chunk, with its stored vector in
``azure_vector_field`` when that is set and the Azure index has (or, created here, gets)
a vector field of the same dimensions, and deletes documents the local index no longer
has. An existing index's schema is left alone. Vectors pushed this way come from the
kiosk's bundled model, so queries must be embedded by it too
(``rag.azure_query_vectors = "local"``); ``"service"`` keeps VoiceRAG's shape, where
Azure's integrated vectorization embeds the query text.

Section-heading vectors (the local ranking's third list, see
:mod:`kiosk.rag.azure_search`): with ``azure_heading_vector_field`` set, push fills that
field with each section's heading vector on the section's first chunk, and null on the
others, so a merge clears a vector left from an earlier push.

Deletions list the Azure index's keys in key order, a page at a time from the last key
seen (``$orderby`` + a ``gt`` filter): the service refuses ``$skip`` beyond 100,000 and
does not promise a stable order for unordered pages. An existing index whose key field
is not sortable and filterable is listed by ``$skip`` instead (up to that limit).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from azure.core.credentials import AzureKeyCredential
from azure.core.exceptions import AzureError, ResourceNotFoundError
from azure.search.documents import SearchClient
from azure.search.documents.indexes import SearchIndexClient
from azure.search.documents.indexes.models import (
    HnswAlgorithmConfiguration,
    SearchableField,
    SearchField,
    SearchFieldDataType,
    SearchIndex,
    SemanticConfiguration,
    SemanticField,
    SemanticPrioritizedFields,
    SemanticSearch,
    SimpleField,
    VectorSearch,
    VectorSearchProfile,
)

from kiosk.config import RagSettings
from kiosk.rag.azure_search import CLIENT_OPTIONS, one_line
from kiosk.rag.knowledge import Hit, KnowledgeError

log = logging.getLogger(__name__)

PUSH_BATCH = 500  # documents per upload request (the service takes at most 1000)
LIST_PAGE = 1000  # keys per listing request when looking for documents to delete
MAX_SKIP = 100_000  # the service refuses a larger $skip
VECTOR_PROFILE = "kiosk-vector-profile"
VECTOR_ALGORITHM = "kiosk-hnsw"


def index_schema(settings: RagSettings, vector_dims: int = 0) -> SearchIndex:
    """The index ``push`` creates: key + text fields, semantic config when one is named,
    and HNSW vector fields of ``vector_dims`` (``azure_vector_field``, and
    ``azure_heading_vector_field`` when set) when that and ``azure_vector_field`` are set."""
    s = settings
    fields = [
        # Searchable with the keyword analyzer: VoiceRAG's report_grounding looks ids up
        # by search on this field, as in integrated-vectorization indexes. Sortable and
        # filterable so push can list every key in order (see the module docstring).
        SearchableField(
            name=s.azure_id_field,
            key=True,
            analyzer_name="keyword",
            sortable=True,
            filterable=True,
        ),
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
    vector_search = None
    if s.azure_vector_field and vector_dims:
        for name in (s.azure_vector_field, s.azure_heading_vector_field):
            if not name:
                continue
            fields.append(
                SearchField(
                    name=name,
                    type=SearchFieldDataType.Collection(SearchFieldDataType.Single),
                    searchable=True,
                    vector_search_dimensions=vector_dims,
                    vector_search_profile_name=VECTOR_PROFILE,
                )
            )
        vector_search = VectorSearch(
            algorithms=[HnswAlgorithmConfiguration(name=VECTOR_ALGORITHM)],
            profiles=[
                VectorSearchProfile(
                    name=VECTOR_PROFILE, algorithm_configuration_name=VECTOR_ALGORITHM
                )
            ],
        )
    return SearchIndex(
        name=s.azure_index,
        fields=fields,
        semantic_search=semantic,
        vector_search=vector_search,
    )


@dataclass(frozen=True, slots=True)
class PushResult:
    uploaded: int
    deleted: int  # documents in Azure that the local index no longer has
    vectors: bool  # whether vectors went up with the text
    heading_vectors: bool = False  # whether section-heading vectors did too


def push_chunks(
    settings: RagSettings,
    api_key: str,
    chunks: Iterable[Hit],
    *,
    vectors: Mapping[str, Sequence[float]] | None = None,
    heading_vectors: Mapping[str, Sequence[float]] | None = None,
    batch_size: int = PUSH_BATCH,
    progress: Callable[[int], None] | None = None,
) -> PushResult:
    """Make the Azure index hold exactly ``chunks``: create it if missing, merge-or-upload
    in batches (with ``vectors[chunk_id]`` in ``azure_vector_field`` and
    ``heading_vectors[chunk_id]`` in ``azure_heading_vector_field`` when the index has
    those vector fields), then delete the documents whose keys are not among ``chunks``.

    Raises:
        KnowledgeError: the service refused the schema or a batch (one line), or the
            index's vector fields do not fit the local vectors.
    """
    s = settings
    if not s.azure_endpoint or not s.azure_index:
        raise KnowledgeError("rag.azure_endpoint and rag.azure_index are required for push")
    if not api_key:
        raise KnowledgeError("AZURE_SEARCH_API_KEY (an admin key) is needed for push")
    credential = AzureKeyCredential(api_key)
    dims = len(next(iter(vectors.values()))) if vectors else 0
    try:
        with SearchIndexClient(s.azure_endpoint, credential, **CLIENT_OPTIONS) as admin:
            plan = _prepare_index(admin, s, dims, bool(heading_vectors))
        fill: dict[str, Mapping[str, Sequence[float]]] = {}
        if plan.vectors and vectors:
            fill[s.azure_vector_field] = vectors
        if plan.headings:
            fill[s.azure_heading_vector_field] = heading_vectors or {}
        uploaded = 0
        keys: set[str] = set()
        with SearchClient(s.azure_endpoint, s.azure_index, credential, **CLIENT_OPTIONS) as client:
            batch: list[dict[str, Any]] = []
            for hit in chunks:
                keys.add(hit.chunk_id)
                batch.append(_document(s, hit, fill))
                if len(batch) >= batch_size:
                    uploaded += _upload(client, batch)
                    batch = []
                    if progress is not None:
                        progress(uploaded)
            if batch:
                uploaded += _upload(client, batch)
                if progress is not None:
                    progress(uploaded)
            stale = _stale_keys(client, s.azure_id_field, keys, plan.ordered_keys)
            deleted = _delete(client, s.azure_id_field, stale, batch_size)
    except AzureError as exc:
        raise KnowledgeError(f"Azure AI Search push failed: {one_line(exc)}") from None
    return PushResult(uploaded, deleted, plan.vectors, plan.headings)


@dataclass(frozen=True, slots=True)
class _Plan:
    vectors: bool  # fill azure_vector_field
    headings: bool  # fill azure_heading_vector_field
    ordered_keys: bool  # the key field is sortable and filterable: list keys in order


def _prepare_index(admin: SearchIndexClient, s: RagSettings, dims: int, headings: bool) -> _Plan:
    """Create the index when missing; which vector fields documents should carry."""
    try:
        existing = admin.get_index(s.azure_index)
    except ResourceNotFoundError:
        admin.create_index(index_schema(s, dims))
        log.info("created index %s", s.azure_index)
        with_vectors = bool(s.azure_vector_field and dims)
        return _Plan(with_vectors, with_vectors and bool(s.azure_heading_vector_field), True)
    log.info("index %s exists; its schema is left as it is", s.azure_index)
    fields = {f.name: f for f in existing.fields or []}
    key = fields.get(s.azure_id_field)
    where = (s.azure_index, s.azure_id_field)
    ordered = bool(key is not None and key.sortable and key.filterable)
    if not ordered:
        log.info("%s.%s is not sortable and filterable: keys listed by $skip", *where)
    with_vectors = _vector_field_fits(fields, s, s.azure_vector_field, dims)
    with_headings = with_vectors and _vector_field_fits(
        fields, s, s.azure_heading_vector_field, dims
    )
    if with_vectors and s.azure_heading_vector_field and not headings:
        log.warning("the local index has no heading vectors: run `kiosk index rebuild`")
    return _Plan(with_vectors, with_headings, ordered)


def _vector_field_fits(fields: Mapping[str, Any], s: RagSettings, name: str, dims: int) -> bool:
    if not name or not dims:
        return False
    field = fields.get(name)
    if field is None:
        log.warning("index %s has no field %s: pushing without it", s.azure_index, name)
        return False
    if field.vector_search_dimensions != dims:
        raise KnowledgeError(
            f"{s.azure_index}.{name} holds "
            f"{field.vector_search_dimensions}-dimension vectors, the local index {dims}: "
            f"push to a new index (or clear rag.{_setting_of(s, name)} to push without it)"
        )
    return True


def _setting_of(s: RagSettings, name: str) -> str:
    return "azure_vector_field" if name == s.azure_vector_field else "azure_heading_vector_field"


def _document(
    s: RagSettings, hit: Hit, fill: Mapping[str, Mapping[str, Sequence[float]]]
) -> dict[str, Any]:
    doc: dict[str, Any] = {s.azure_id_field: hit.chunk_id, s.azure_content_field: hit.text}
    if s.azure_title_field:
        doc[s.azure_title_field] = hit.title
    if s.azure_source_field:
        doc[s.azure_source_field] = hit.source
    for name, vectors in fill.items():
        vector = vectors.get(hit.chunk_id)
        # null, not absent: a merge keeps an absent field's old value (a heading vector
        # left on a chunk that no longer starts a section).
        doc[name] = None if vector is None else [float(x) for x in vector]
    return doc


def _stale_keys(client: SearchClient, id_field: str, keep: set[str], ordered: bool) -> list[str]:
    """The keys in the Azure index that are not in ``keep``."""
    stale: list[str] = []
    last: str | None = None
    skip = 0
    while True:
        if ordered:
            where = None if last is None else f"{id_field} gt {_odata_string(last)}"
            page = client.search(
                search_text="*",
                select=[id_field],
                top=LIST_PAGE,
                order_by=[f"{id_field} asc"],
                filter=where,
            )
        else:
            if skip > MAX_SKIP:
                raise KnowledgeError(
                    f"cannot list more than {MAX_SKIP} documents to find deletions: make "
                    f"{id_field} sortable and filterable (or push to a new index)"
                )
            page = client.search(search_text="*", select=[id_field], top=LIST_PAGE, skip=skip)
        keys = [str(d[id_field]) for d in page]
        stale += [k for k in keys if k not in keep]
        if len(keys) < LIST_PAGE:
            return stale
        last = keys[-1]
        skip += LIST_PAGE


def _odata_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _delete(client: SearchClient, id_field: str, stale: list[str], batch_size: int) -> int:
    """Delete the documents with these keys; how many went."""
    for start in range(0, len(stale), batch_size):
        batch = [{id_field: key} for key in stale[start : start + batch_size]]
        results = client.delete_documents(documents=batch)
        failed = [r for r in results if not r.succeeded]
        if failed:
            raise KnowledgeError(f"Azure AI Search refused to delete {failed[0].key}")
    return len(stale)


def _upload(client: SearchClient, batch: list[dict[str, Any]]) -> int:
    results = client.merge_or_upload_documents(documents=batch)
    failed = [r for r in results if not r.succeeded]
    if failed:
        first = failed[0]
        raise KnowledgeError(
            f"Azure AI Search refused {len(failed)} of {len(batch)} documents "
            f"(first: {first.key}: {first.error_message})"
        )
    return len(batch)
