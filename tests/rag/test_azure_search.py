"""AzureSearchIndex and push through the real azure-search-documents SDK, against a
local emulation of the REST endpoints (no SDK mocking)."""

from dataclasses import replace

import numpy as np
import pytest

from kiosk.config import RagSettings
from kiosk.rag.azure_push import PushResult, push_chunks
from kiosk.rag.azure_search import AzureSearchIndex
from kiosk.rag.knowledge import Hit, KnowledgeError
from kiosk.rag.sqlite_index import SqliteIndex

from .azure_emulator import KEY, AzureSearchEmulator
from .azure_emulator import azure_settings as settings


def test_hybrid_semantic_query_shape_when_configured(emu: AzureSearchEmulator) -> None:
    emu.state.search_results = [
        {
            "@search.score": 0.03,
            "@search.rerankerScore": 2.9,
            "chunk_id": "x_1",
            "chunk": "B2",
            "title": "Parking",
        }
    ]
    ix = AzureSearchIndex(
        settings(emu, azure_vector_field="text_vector", azure_semantic_configuration="default"), KEY
    )
    hits = ix.search("where can I park", 5)
    ix.close()
    assert hits == [Hit("x_1", "Parking", "", "B2", 2.9)]
    (req,) = emu.requests_to("/docs/search.post.search")
    assert req.path == "/indexes('kiosk')/docs/search.post.search"
    assert req.headers["api-key"] == KEY
    body = req.body
    assert body["search"] == "where can I park"
    assert body["top"] == 5
    assert body["queryType"] == "semantic"
    assert body["semanticConfiguration"] == "default"
    assert body["vectorQueries"] == [
        {"kind": "text", "text": "where can I park", "k": 50, "fields": "text_vector"}
    ]
    assert set(body["select"].split(",")) == {"chunk_id", "chunk", "title"}


def test_keyword_only_query_when_no_vector_field_or_semantic_config(
    emu: AzureSearchEmulator,
) -> None:
    emu.state.search_results = []
    ix = AzureSearchIndex(settings(emu), KEY)
    assert ix.search("parking", 3) == []
    ix.close()
    body = emu.requests_to("/docs/search.post.search")[0].body
    assert body.get("queryType", "simple") == "simple"
    assert "vectorQueries" not in body and "semanticConfiguration" not in body


def test_custom_field_names_are_selected_and_mapped(emu: AzureSearchEmulator) -> None:
    emu.state.search_results = [
        {
            "@search.score": 1.5,
            "id": "d1",
            "content": "Lunch 11:30",
            "name": "Cafe",
            "url": "https://x/cafe",
        }
    ]
    cfg = settings(
        emu,
        azure_id_field="id",
        azure_content_field="content",
        azure_title_field="name",
        azure_source_field="url",
    )
    ix = AzureSearchIndex(cfg, KEY)
    assert ix.search("lunch", 2) == [Hit("d1", "Cafe", "https://x/cafe", "Lunch 11:30", 1.5)]
    ix.close()
    assert set(emu.requests_to("/docs/search.post.search")[0].body["select"].split(",")) == {
        "id",
        "content",
        "name",
        "url",
    }


def test_documents_missing_the_configured_fields_are_skipped(emu: AzureSearchEmulator) -> None:
    emu.state.search_results = [
        {"@search.score": 1.0, "other": "x"},
        {"@search.score": 0.5, "chunk_id": "ok", "chunk": "t"},
    ]
    ix = AzureSearchIndex(settings(emu), KEY)
    assert [h.chunk_id for h in ix.search("x", 5)] == ["ok"]
    ix.close()


def test_service_error_becomes_a_one_line_knowledge_error(emu: AzureSearchEmulator) -> None:
    emu.state.fail_with = 503
    ix = AzureSearchIndex(settings(emu), KEY)
    with pytest.raises(KnowledgeError, match="Azure AI Search failed") as err:
        ix.search("parking", 3)
    ix.close()
    assert "\n" not in str(err.value)


def test_wrong_key_becomes_a_knowledge_error(emu: AzureSearchEmulator) -> None:
    ix = AzureSearchIndex(settings(emu), "wrong")
    with pytest.raises(KnowledgeError):
        ix.search("parking", 3)
    ix.close()


def test_unreachable_service_becomes_a_knowledge_error() -> None:
    cfg = RagSettings(backend="azure", azure_endpoint="http://127.0.0.1:9", azure_index="kiosk")
    ix = AzureSearchIndex(cfg, KEY)
    with pytest.raises(KnowledgeError):
        ix.search("parking", 3)
    ix.close()


def test_missing_key_is_refused_up_front(emu: AzureSearchEmulator) -> None:
    with pytest.raises(KnowledgeError, match="AZURE_SEARCH_API_KEY"):
        AzureSearchIndex(settings(emu), "")


def test_push_creates_the_index_and_uploads_local_chunks_in_batches(
    emu: AzureSearchEmulator, index: SqliteIndex
) -> None:
    cfg = settings(emu, azure_semantic_configuration="default", azure_source_field="source")
    chunks = list(index.iter_chunks())
    progress: list[int] = []
    result = push_chunks(cfg, KEY, chunks, batch_size=4, progress=progress.append)
    assert result == PushResult(uploaded=len(chunks), deleted=0, vectors=False)
    created = emu.state.indexes["kiosk"]
    fields = {f["name"]: f for f in created["fields"]}
    assert fields["chunk_id"]["key"] is True
    assert {"chunk", "title", "source"} <= set(fields)
    semantic = created["semantic"]["configurations"][0]
    assert semantic["name"] == "default"
    assert semantic["prioritizedFields"]["prioritizedContentFields"] == [{"fieldName": "chunk"}]
    uploads = emu.requests_to("/docs/search.index")
    assert len(uploads) == -(-len(chunks) // 4)
    assert all(len(u.body["value"]) <= 4 for u in uploads)
    assert progress[-1] == len(chunks)
    stored = emu.state.documents["kiosk"]
    first = chunks[0]
    assert stored[first.chunk_id] == {
        "chunk_id": first.chunk_id,
        "chunk": first.text,
        "title": first.title,
        "source": first.source,
    }
    # Pushed chunks are then searchable through the Azure backend.
    ix = AzureSearchIndex(cfg, KEY)
    assert ix.search("basement", 3)[0].chunk_id in stored
    ix.close()


def test_push_to_an_existing_index_leaves_its_schema_alone(emu: AzureSearchEmulator) -> None:
    emu.state.indexes["kiosk"] = {
        "name": "kiosk",
        "fields": [{"name": "chunk_id", "type": "Edm.String", "key": True}],
    }
    push_chunks(settings(emu), KEY, [Hit("a_0", "T", "/a.md", "text", 0.0)])
    assert [r.method for r in emu.state.requests if "docs" not in r.path] == ["GET"]


def test_push_failure_is_a_knowledge_error(emu: AzureSearchEmulator) -> None:
    emu.state.fail_with = 500
    with pytest.raises(KnowledgeError, match="push failed"):
        push_chunks(settings(emu), KEY, [Hit("a_0", "T", "/a.md", "text", 0.0)])


def test_settings_without_endpoint_are_refused() -> None:
    with pytest.raises(KnowledgeError):
        push_chunks(replace(RagSettings(), azure_index="x"), KEY, [])


class FixedEmbedder:
    name = "fixed-test"
    dim = 3

    def embed(self, texts: list[str]) -> np.ndarray:
        return np.tile(np.array([0.6, 0.8, 0.0], dtype=np.float32), (len(texts), 1))


def test_push_creates_a_vector_field_and_uploads_each_chunks_vector(
    emu: AzureSearchEmulator, index: SqliteIndex
) -> None:
    chunks = list(index.iter_chunks())
    vectors = {c.chunk_id: [float(i), 0.5, -1.0] for i, c in enumerate(chunks)}
    result = push_chunks(settings(emu, azure_vector_field="vec"), KEY, chunks, vectors=vectors)
    assert result == PushResult(uploaded=len(chunks), deleted=0, vectors=True)
    created = emu.state.indexes["kiosk"]
    (field,) = [f for f in created["fields"] if f["name"] == "vec"]
    assert field["type"] == "Collection(Edm.Single)" and field["dimensions"] == 3
    profile = created["vectorSearch"]["profiles"][0]
    assert field["vectorSearchProfile"] == profile["name"]
    assert created["vectorSearch"]["algorithms"][0]["kind"] == "hnsw"
    stored = emu.state.documents["kiosk"]
    assert all(stored[cid]["vec"] == v for cid, v in vectors.items())


def test_push_deletes_what_the_local_index_no_longer_has(
    emu: AzureSearchEmulator, index: SqliteIndex
) -> None:
    chunks = list(index.iter_chunks())
    stale = {f"gone_{i}": {"chunk_id": f"gone_{i}", "chunk": "old"} for i in range(5)}
    emu.state.documents["kiosk"] = dict(stale)
    result = push_chunks(settings(emu), KEY, chunks, batch_size=2)
    assert result.deleted == 5
    assert set(emu.state.documents["kiosk"]) == {c.chunk_id for c in chunks}
    # A second push of the same chunks deletes nothing.
    assert push_chunks(settings(emu), KEY, chunks).deleted == 0


def test_push_refuses_an_existing_vector_field_of_other_dimensions(
    emu: AzureSearchEmulator,
) -> None:
    emu.state.indexes["kiosk"] = {
        "name": "kiosk",
        "fields": [
            {"name": "chunk_id", "type": "Edm.String", "key": True},
            {"name": "vec", "type": "Collection(Edm.Single)", "dimensions": 1536},
        ],
    }
    hit = Hit("a_0", "T", "/a.md", "text", 0.0)
    with pytest.raises(KnowledgeError, match=r"1536-dimension.*local index 3"):
        push_chunks(settings(emu, azure_vector_field="vec"), KEY, [hit], vectors={"a_0": [1, 0, 0]})
    assert "kiosk" not in emu.state.documents


def test_push_sends_text_only_when_the_existing_index_has_no_vector_field(
    emu: AzureSearchEmulator,
) -> None:
    emu.state.indexes["kiosk"] = {
        "name": "kiosk",
        "fields": [{"name": "chunk_id", "type": "Edm.String", "key": True}],
    }
    hit = Hit("a_0", "T", "/a.md", "text", 0.0)
    result = push_chunks(
        settings(emu, azure_vector_field="vec"), KEY, [hit], vectors={"a_0": [1, 0, 0]}
    )
    assert not result.vectors and "vec" not in emu.state.documents["kiosk"]["a_0"]


def test_local_query_vectors_send_the_kiosk_models_vector(emu: AzureSearchEmulator) -> None:
    cfg = settings(emu, azure_vector_field="vec", azure_query_vectors="local")
    ix = AzureSearchIndex(cfg, KEY, embedder=FixedEmbedder())
    ix.search("where can I park", 3)
    ix.close()
    (req,) = emu.requests_to("/docs/search.post.search")
    (query,) = req.body["vectorQueries"]
    assert query["kind"] == "vector" and query["fields"] == "vec" and query["k"] == 50
    assert query["vector"] == pytest.approx([0.6, 0.8, 0.0])
