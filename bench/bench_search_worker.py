"""The query embedder in a worker process against the same model in-process, in one run.

``rag.query_embedder = "worker"`` (the daemon's default) runs the multilingual model in a
child process (kiosk.rag.embed_worker); ``"in_process"`` loads it into the daemon. Measured
on bench_rag's corpus (Debian FAQ + Reference, en + ja) replicated to >= 10k chunks:

- ranking: every question of every set (visitors' words and keyword rewrites) searched
  through both; the hits (ids, order, scores) must be equal;
- warm search latency: paced single queries, the two interleaved query by query (so the
  machine's load hits both alike), p50 / p95 wall. The daemon's CPU time no longer holds
  the embedding's, so CPU is not compared;
- first search: a fresh process opens the index as the daemon does
  (:func:`kiosk.rag.backends.open_knowledge_base`) and searches once (cold: the model loads,
  or the worker starts), then again (warm). "At onset" first calls ``prepare()``, as the
  daemon does when a visitor starts speaking, and searches 1.5 s later (the end of a short
  question). Modes alternate, ``RUNS`` each.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import bench_rag

from kiosk.rag.embed_worker import WorkerEmbedder
from kiosk.rag.ingest import ingest_paths
from kiosk.rag.multilingual import MultilingualEmbedder
from kiosk.rag.sqlite_index import SqliteIndex

MODES = ("worker", "in_process")
RUNS = 6
SPEECH_S = 1.5

_FIRST_SEARCH = """
import sys, time
from kiosk.config import load_config
from kiosk.rag.backends import open_knowledge_base
path, mode, onset, q1, q2 = sys.argv[1:6]
cfg = load_config(f'[rag]\\nindex_path = "{path}"\\nquery_embedder = "{mode}"\\n',
                  require_key=False)
kb = open_knowledge_base(cfg)
if onset == "1":
    kb.prepare()  # the visitor started speaking
    time.sleep(float(sys.argv[6]))
t0 = time.perf_counter(); first = kb.search(q1, 5); t1 = time.perf_counter()
second = kb.search(q2, 5); t2 = time.perf_counter()
kb.close()
print((t1 - t0) * 1000, (t2 - t1) * 1000, len(first), len(second))
"""


def first_search_ms(path: Path, mode: str, onset: bool, q1: str, q2: str) -> tuple[float, float]:
    cmd = [sys.executable, "-c", _FIRST_SEARCH, str(path), mode, "1" if onset else "0", q1, q2]
    cmd.append(str(SPEECH_S))
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True)
    first, second, _, _ = out.stdout.split()
    return float(first), float(second)


def _questions() -> list[str]:
    out: list[str] = []
    for set_name in bench_rag.SETS:
        for lang in ("en", "ja"):
            for q in bench_rag.load_questions(set_name, lang):
                out += [q["q"], q.get("rewrite") or q["q"]]
    return out


def _load() -> str:
    return f"load avg {os.getloadavg()[0]:.1f}"


def run(quick: bool) -> dict[str, Any]:
    if not bench_rag.corpus_files():
        return {"rows": [{"name": "search worker corpus", "value": "missing", "note": bench_rag.SETUP}]}
    rows: list[dict[str, Any]] = []
    details: dict[str, Any] = {}
    questions = _questions()
    with tempfile.TemporaryDirectory(prefix="kiosk-bench-worker-") as tmp:
        root = Path(tmp)
        memo = bench_rag.MemoEmbedder(MultilingualEmbedder(idle_unload_s=None))
        path = root / "index.sqlite"
        with SqliteIndex(path, embedder=memo) as built:
            if quick:
                ingest_paths(built, bench_rag.corpus_files())
            else:
                bench_rag._build_large(root, built)
            built.compact()
            chunks = built.stats().chunks
        floor = bench_rag.FLOOR
        indexes = {
            "worker": SqliteIndex(
                path, read_only=True, embedder=WorkerEmbedder(idle_unload_s=None),
                relevance_floor=floor,
            ),
            "in_process": SqliteIndex(
                path, read_only=True, embedder=MultilingualEmbedder(idle_unload_s=None),
                relevance_floor=floor,
            ),
        }  # fmt: skip
        try:
            differ = [
                q for q in questions
                if indexes["worker"].search(q, bench_rag.K)
                != indexes["in_process"].search(q, bench_rag.K)
            ]  # fmt: skip
            rows.append(
                {
                    "name": "search worker: hits equal to in-process",
                    "value": len(questions) - len(differ),
                    "goal": f">= {len(questions)}",
                    "note": f"of {len(questions)} questions (all sets, raw + rewrite), "
                    f"{chunks} chunks; ids, order and scores compared",
                }
            )
            details["questions_that_differ"] = differ[:20]
            wall: dict[str, list[float]] = {m: [] for m in MODES}
            tuning = [
                q["q"] for lang in ("en", "ja") for q in bench_rag.load_questions("tuning", lang)
            ]
            for _ in range(1 if quick else 3):
                for q in tuning:
                    for mode in MODES:
                        time.sleep(0.005)
                        t0 = time.perf_counter()
                        indexes[mode].search(q, bench_rag.K)
                        wall[mode].append((time.perf_counter() - t0) * 1000)
            load = _load()
        finally:
            for ix in indexes.values():
                ix.close()
        p95 = {m: bench_rag._p95(wall[m]) for m in MODES}
        for mode in MODES:
            rows.append(
                {
                    "name": f"search p95 warm hybrid, {mode}",
                    "value": round(p95[mode], 2),
                    "goal": "< 10",
                    "note": f"ms; p50 {statistics.median(wall[mode]):.2f}; {chunks} chunks, "
                    f"{len(tuning)} en+ja questions x{len(wall[mode]) // len(tuning)}, the two "
                    f"modes interleaved; {load}",
                }
            )
        rows.append(
            {
                "name": "search p95 warm, worker / in-process",
                "value": round(p95["worker"] / p95["in_process"], 2),
                "goal": "-",
                "note": "same run, interleaved",
            }
        )
        firsts: dict[str, list[tuple[float, float]]] = {}
        runs = 2 if quick else RUNS
        for i in range(runs):
            q1, q2 = tuning[(2 * i) % len(tuning)], tuning[(2 * i + 1) % len(tuning)]
            for onset in (False, True):
                for mode in MODES:
                    key = f"{mode}{', at onset' if onset else ''}"
                    firsts.setdefault(key, []).append(first_search_ms(path, mode, onset, q1, q2))
        load = _load()
        details["first_search_ms"] = firsts
        for key, pairs in firsts.items():
            cold = [p[0] for p in pairs]
            warm = [p[1] for p in pairs]
            when = f"{SPEECH_S} s after prepare() at speech onset" if "onset" in key else "cold"
            rows.append(
                {
                    "name": f"first search, {key}",
                    "value": round(statistics.median(cold), 1),
                    "goal": "-",
                    "note": f"ms median of {runs} fresh processes (max {max(cold):.0f}); {when}; "
                    f"the second search {statistics.median(warm):.1f} ms; {chunks} chunks; {load}",
                }
            )
    return {"rows": rows, "details": details}
