"""Azure AI Search against the local ranking: section-heading vectors pushed and queried
as a third ranking, and deletions that find every stale key (the real SDK against the
local REST emulation, as in test_azure_search)."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from kiosk.config import RagSettings, load_config
from kiosk.errors import ConfigError
from kiosk.rag import azure_push
from kiosk.rag.azure_push import PushResult, push_chunks
from kiosk.rag.azure_search import AzureSearchIndex
from kiosk.rag.knowledge import Hit, KnowledgeError
from kiosk.rag.sqlite_index import SqliteIndex

from .azure_emulator import KEY, AzureSearchEmulator
from .azure_emulator import azure_settings as settings
from .test_cli import run


def parity(emu: AzureSearchEmulator) -> RagSettings:
    return settings(
        emu,
        azure_vector_field="vec",
        azure_heading_vector_field="hvec",
        azure_query_vectors="local",
    )


class FixedEmbedder:
    name = "fixed-test"
    dim = 3

    def embed(self, texts: list[str]) -> np.ndarray:
        return np.tile(np.array([0.6, 0.8, 0.0], dtype=np.float32), (len(texts), 1))


def _hits(n: int) -> list[Hit]:
    return [Hit(f"doc_{i:04d}", "T", "/a.md", f"text {i}", 0.0) for i in range(n)]


def test_query_ranks_passage_and_heading_vectors_separately(emu: AzureSearchEmulator) -> None:
    ix = AzureSearchIndex(parity(emu), KEY, embedder=FixedEmbedder())
    ix.search("where can I park", 3)
    ix.close()
    (req,) = emu.requests_to("/docs/search.post.search")
    queries = req.body["vectorQueries"]
    assert [(q["kind"], q["fields"], q["k"]) for q in queries] == [
        ("vector", "vec", 50),
        ("vector", "hvec", 50),
    ]
    assert queries[0]["vector"] == queries[1]["vector"] == pytest.approx([0.6, 0.8, 0.0])
    assert req.body["search"] == "where can I park"  # the keyword ranking stays


def test_push_creates_both_vector_fields_and_puts_headings_on_section_starts(
    emu: AzureSearchEmulator,
) -> None:
    hits = _hits(4)
    vectors = {h.chunk_id: [1.0, 0.0, 0.0] for h in hits}
    headings = {"doc_0000": [0.0, 1.0, 0.0], "doc_0002": [0.0, 0.0, 1.0]}
    result = push_chunks(parity(emu), KEY, hits, vectors=vectors, heading_vectors=headings)
    assert result == PushResult(4, 0, vectors=True, heading_vectors=True)
    fields = {f["name"]: f for f in emu.state.indexes["kiosk"]["fields"]}
    assert fields["hvec"]["dimensions"] == fields["vec"]["dimensions"] == 3
    assert fields["hvec"]["vectorSearchProfile"] == fields["vec"]["vectorSearchProfile"]
    assert fields["chunk_id"]["sortable"] and fields["chunk_id"]["filterable"]
    docs = emu.state.documents["kiosk"]
    assert docs["doc_0000"]["hvec"] == [0.0, 1.0, 0.0]
    assert docs["doc_0002"]["hvec"] == [0.0, 0.0, 1.0]
    assert docs["doc_0001"]["hvec"] is None and docs["doc_0003"]["hvec"] is None
    assert all(d["vec"] == [1.0, 0.0, 0.0] for d in docs.values())


def test_a_heading_vector_that_no_longer_applies_is_cleared_by_the_next_push(
    emu: AzureSearchEmulator,
) -> None:
    hits = _hits(2)
    vectors = {h.chunk_id: [1.0, 0.0, 0.0] for h in hits}
    push_chunks(parity(emu), KEY, hits, vectors=vectors, heading_vectors={"doc_0001": [0, 1, 0]})
    assert emu.state.documents["kiosk"]["doc_0001"]["hvec"] == [0, 1, 0]
    # The section boundary moved: doc_0001 no longer starts one (merge keeps absent fields).
    push_chunks(parity(emu), KEY, hits, vectors=vectors, heading_vectors={"doc_0000": [0, 1, 0]})
    docs = emu.state.documents["kiosk"]
    assert docs["doc_0001"]["hvec"] is None and docs["doc_0000"]["hvec"] == [0, 1, 0]


def test_an_existing_index_without_the_heading_field_gets_passage_vectors_only(
    emu: AzureSearchEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    emu.state.indexes["kiosk"] = {
        "name": "kiosk",
        "fields": [
            {"name": "chunk_id", "type": "Edm.String", "key": True},
            {"name": "vec", "type": "Collection(Edm.Single)", "dimensions": 3},
        ],
    }
    (hit,) = _hits(1)
    result = push_chunks(
        parity(emu), KEY, [hit], vectors={hit.chunk_id: [1, 0, 0]}, heading_vectors={}
    )
    assert result.vectors and not result.heading_vectors
    assert "hvec" not in emu.state.documents["kiosk"][hit.chunk_id]
    assert "no field hvec" in caplog.text


def test_an_existing_heading_field_of_other_dimensions_is_refused(
    emu: AzureSearchEmulator,
) -> None:
    emu.state.indexes["kiosk"] = {
        "name": "kiosk",
        "fields": [
            {"name": "chunk_id", "type": "Edm.String", "key": True},
            {"name": "vec", "type": "Collection(Edm.Single)", "dimensions": 3},
            {"name": "hvec", "type": "Collection(Edm.Single)", "dimensions": 1536},
        ],
    }
    (hit,) = _hits(1)
    with pytest.raises(KnowledgeError, match=r"hvec holds 1536.*azure_heading_vector_field"):
        push_chunks(parity(emu), KEY, [hit], vectors={hit.chunk_id: [1, 0, 0]})


def test_deletions_page_through_keys_in_order_past_one_page(
    emu: AzureSearchEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(azure_push, "LIST_PAGE", 4)
    stale = {f"old_{i:02d}": {"chunk_id": f"old_{i:02d}", "chunk": "x"} for i in range(9)}
    emu.state.documents["kiosk"] = dict(stale)
    keep = _hits(6)
    result = push_chunks(settings(emu), KEY, keep, batch_size=5)
    assert result.deleted == 9
    assert set(emu.state.documents["kiosk"]) == {h.chunk_id for h in keep}
    listings = [
        r.body for r in emu.requests_to("/docs/search.post.search") if r.body["search"] == "*"
    ]
    assert all(b["orderby"] == "chunk_id asc" and "skip" not in b for b in listings)
    # 15 keys, pages of 4: the last key seen bounds the next page.
    assert [b.get("filter") for b in listings] == [
        None,
        "chunk_id gt 'doc_0003'",
        "chunk_id gt 'old_01'",
        "chunk_id gt 'old_05'",
    ]


def test_an_unsortable_key_is_listed_by_skip_up_to_the_services_limit(
    emu: AzureSearchEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu.state.indexes["kiosk"] = {
        "name": "kiosk",
        "fields": [{"name": "chunk_id", "type": "Edm.String", "key": True}],
    }
    monkeypatch.setattr(azure_push, "LIST_PAGE", 2)
    emu.state.documents["kiosk"] = {"gone": {"chunk_id": "gone", "chunk": "x"}}
    result = push_chunks(settings(emu), KEY, _hits(3))
    assert result.deleted == 1 and "gone" not in emu.state.documents["kiosk"]
    skips = [
        r.body.get("skip", 0)
        for r in emu.requests_to("/docs/search.post.search")
        if r.body["search"] == "*"
    ]
    assert skips == [0, 2, 4]  # 4 documents: the third page is empty
    monkeypatch.setattr(azure_push, "MAX_SKIP", 2)
    with pytest.raises(KnowledgeError, match="sortable and filterable"):
        push_chunks(settings(emu), KEY, _hits(7))


def _load(rag: str) -> RagSettings:
    return load_config(f"[rag]\n{rag}", env={}, require_key=False).rag


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ('azure_query_vectors = "local"\n', "needs rag.azure_vector_field"),
        ('azure_vector_field = "vec"\n', 'azure_query_vectors = "local"'),
        (
            'azure_vector_field = "hvec"\nazure_query_vectors = "local"\n',
            "already another",
        ),
    ],
)
def test_heading_vector_field_settings_are_validated(extra: str, problem: str) -> None:
    with pytest.raises(ConfigError, match="azure_heading_vector_field") as err:
        _load(f'azure_heading_vector_field = "hvec"\n{extra}')
    assert problem in str(err.value)
    with pytest.raises(ConfigError, match="not an Azure field name"):
        _load('azure_heading_vector_field = "heading vector"\n')
    ok = 'azure_vector_field = "vec"\nazure_query_vectors = "local"\n'
    assert _load(f'azure_heading_vector_field = "hvec"\n{ok}').azure_heading_vector_field == "hvec"


def test_push_command_mirrors_the_local_heading_vectors(
    tmp_path: Path,
    corpus: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ix = str(tmp_path / "a.sqlite")
    assert run("index", "add", "--index", ix, str(corpus)) == 0
    monkeypatch.setenv("AZURE_SEARCH_API_KEY", KEY)
    with AzureSearchEmulator() as emu:
        cfg = tmp_path / "azure.toml"
        cfg.write_text(
            f'[rag]\nazure_endpoint = "{emu.endpoint}"\nazure_index = "kiosk"\n'
            'azure_vector_field = "vec"\nazure_heading_vector_field = "hvec"\n'
            'azure_query_vectors = "local"\n',
            encoding="utf-8",
        )
        assert run("index", "push", "--azure", "--config", str(cfg), "--index", ix) == 0
        docs = emu.state.documents["kiosk"]
        with SqliteIndex(ix, create=False) as local:
            _, headings = local.stored_vectors(headings=True)
        assert headings and len(headings) < len(docs)
        for cid, doc in docs.items():
            if cid in headings:
                assert doc["hvec"] == pytest.approx(headings[cid].astype(float).tolist())
            else:
                assert doc["hvec"] is None
    assert f"({len(headings)} section headings' too)" in capsys.readouterr().out


def test_push_without_heading_settings_sends_no_heading_field(emu: AzureSearchEmulator) -> None:
    cfg = replace(settings(emu), azure_vector_field="vec")
    (hit,) = _hits(1)
    result = push_chunks(cfg, KEY, [hit], vectors={hit.chunk_id: [1, 0, 0]})
    assert result == PushResult(1, 0, vectors=True, heading_vectors=False)
    assert set(emu.state.documents["kiosk"][hit.chunk_id]) == {"chunk_id", "chunk", "title", "vec"}


def _stored(emu: AzureSearchEmulator, vectors: dict[str, list[float]]) -> None:
    emu.state.documents["kiosk"] = {
        cid: {"chunk_id": cid, "chunk": f"parking {cid}", "title": "T", "vec": v}
        for cid, v in vectors.items()
    }


def test_the_relevance_floor_applies_to_the_hits_passage_vectors(
    emu: AzureSearchEmulator,
) -> None:
    cfg = replace(parity(emu), relevance_floor=0.5)
    ix = AzureSearchIndex(cfg, KEY, embedder=FixedEmbedder())  # the question: (0.6, 0.8, 0)
    _stored(emu, {"far_0": [0.0, 0.0, 1.0], "far_1": [1.0, 0.0, 0.0]})  # cosines 0, 0.6
    assert [h.chunk_id for h in ix.search("parking", 5)] == ["far_0", "far_1"]
    emu.state.documents["kiosk"]["far_1"]["vec"] = [0.0, -1.0, 0.0]  # cosine -0.8
    assert ix.search("parking", 5) == []  # below the floor: nothing to say
    (select,) = {r.body["select"] for r in emu.requests_to("/docs/search.post.search")}
    assert set(select.split(",")) == {"chunk_id", "chunk", "title", "vec"}
    ix.close()


def test_hits_without_vectors_and_a_zero_floor_never_abstain(emu: AzureSearchEmulator) -> None:
    _stored(emu, {"a_0": [0.0, 0.0, 1.0]})
    emu.state.documents["kiosk"]["a_0"].pop("vec")
    ix = AzureSearchIndex(parity(emu), KEY, embedder=FixedEmbedder())
    assert len(ix.search("parking", 5)) == 1  # no vector came back: nothing is known
    ix.close()
    _stored(emu, {"a_0": [0.0, 0.0, 1.0]})
    ix = AzureSearchIndex(replace(parity(emu), relevance_floor=0.0), KEY, embedder=FixedEmbedder())
    assert len(ix.search("parking", 5)) == 1
    assert "vec" not in emu.requests_to("/docs/search.post.search")[-1].body["select"]
    ix.close()


def test_an_unretrievable_vector_field_drops_the_floor_once_with_a_warning(
    emu: AzureSearchEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    _stored(emu, {"a_0": [0.0, 0.0, 1.0]})
    emu.state.unretrievable = {"vec"}
    ix = AzureSearchIndex(parity(emu), KEY, embedder=FixedEmbedder())
    assert [h.chunk_id for h in ix.search("parking", 5)] == ["a_0"]
    assert [h.chunk_id for h in ix.search("parking", 5)] == ["a_0"]
    selects = [r.body["select"] for r in emu.requests_to("/docs/search.post.search")]
    assert ["vec" in sel for sel in selects] == [True, False, False]
    assert caplog.text.count("without the relevance floor") == 1
    ix.close()


def test_service_query_vectors_send_no_vector_select(emu: AzureSearchEmulator) -> None:
    _stored(emu, {"a_0": [0.0, 0.0, 1.0]})
    ix = AzureSearchIndex(settings(emu, azure_vector_field="vec"), KEY)
    assert len(ix.search("parking", 5)) == 1  # Azure embeds: no local cosine, no floor
    assert "vec" not in emu.requests_to("/docs/search.post.search")[0].body["select"]
    ix.close()


def test_a_japanese_question_meets_the_raised_floor_as_locally(emu: AzureSearchEmulator) -> None:
    ix = AzureSearchIndex(replace(parity(emu), relevance_floor=0.5), KEY, embedder=FixedEmbedder())
    s = float(np.sqrt(1 - 0.52**2))
    _stored(emu, {"p_0": [0.52 * 0.6, 0.52 * 0.8, s]})  # cosine 0.52 with every question
    emu.state.documents["kiosk"]["p_0"]["chunk"] = "parking 駐車場"
    assert len(ix.search("parking", 5)) == 1  # 0.52 >= 0.5
    assert ix.search("駐車場", 5) == []  # 0.52 < 0.53
    ix.close()
