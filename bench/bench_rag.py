"""Knowledge retrieval benchmark: recall@5 / MRR on two question sets, abstention, latency.

Corpus (Debian packages nobody here wrote; install once):

    apt-get install debian-faq debian-faq-ja debian-reference-en debian-reference-ja

* One index holds the Debian FAQ and the Debian Reference, English and Japanese (HTML),
  as a bilingual kiosk would have it (~2,800 chunks).
* Two question sets, reported side by side every run:
  - ``tuning``: ``bench/data/debian_faq_{en,ja}.jsonl`` (FAQ questions plus 12
    unanswerable lobby questions per language). Every ranking decision is made on it.
  - ``everyday``: ``bench/data/everyday_{en,ja}.jsonl`` (33 en / 53 ja Debian Reference
    questions in everyday words, the visitor saying what they want to do and the section
    naming the mechanism, plus 20 / 21 unanswerable lobby and other-product questions,
    many sharing words with the corpus: "iPhone backup", "stop Windows updates"). Written
    for issue 14 from the Reference's headings and text, without reading the held-out
    files, because
    ``tuning`` has FAQ questions only. Tuning side: decisions are made on it too.
  - ``held-out``: ``bench/data/heldout_{en,ja}.jsonl``, written by someone who never
    saw the code (``bench/data/HELDOUT.md``). Reported only; its misses are never printed.
  Each question is asked twice: the visitor's words (``q``) and the keyword query a
  model would write (``rewrite``). A hit is relevant when it comes from the named
  document (FAQ or Reference), in the question's language, and its title
  (``<chapter> > <n.n.> <heading>``) carries the section number. Unanswerable
  questions count as correct when the search returns nothing.
* Rankings: ``fts5`` (plain FTS5 ``bm25()`` over the same tokens, every query term, no
  weights), ``bm25`` (the index without vectors) and ``hybrid`` (BM25 fused with the
  multilingual embedding model, with the configured relevance floor).
* Speed: the corpus replicated under distinct paths until the index holds >= 10k
  chunks; p50/p95 of single paced queries (every tuning question, both languages),
  warm, and with the page cache dropped before each query (root only).

``run(quick)`` returns rows {name, value, goal, note}; ``python bench/bench_rag.py``
prints them plus every missed TUNING question.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kiosk.config import RagSettings
from kiosk.rag.embedding import Embedder, Vectors, load_embedder
from kiosk.rag.ingest import ingest_paths
from kiosk.rag.knowledge import Hit
from kiosk.rag.sqlite_index import SqliteIndex
from kiosk.rag.sqlite_search import one_per_section
from kiosk.rag.text import query_terms

FAQ_DIR = Path("/usr/share/doc/debian/FAQ")
REFERENCE_DIR = Path("/usr/share/debian-reference")
DATA_DIR = Path(__file__).parent / "data"
SETUP = "apt-get install debian-faq debian-faq-ja debian-reference-en debian-reference-ja"
K = 5
LATENCY_MIN_CHUNKS = 10_000
COLD_QUERIES = 24
SETS = {
    "tuning": "debian_faq_{lang}.jsonl",
    "everyday": "everyday_{lang}.jsonl",
    "held-out": "heldout_{lang}.jsonl",
}
FLOOR = RagSettings().relevance_floor

Search = Callable[[str], list[Hit]]


def load_questions(set_name: str, lang: str) -> list[dict[str, Any]]:
    path = DATA_DIR / SETS[set_name].format(lang=lang)
    return [
        json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    ]


def corpus_files() -> list[Path]:
    faq = sorted(FAQ_DIR.glob("*.en.html")) + sorted((FAQ_DIR / "ja").glob("*.ja.html"))
    ref = sorted(REFERENCE_DIR.glob("*.en.html")) + sorted(REFERENCE_DIR.glob("*.ja.html"))
    return faq + ref


def relevant(hit: Hit, q: dict[str, Any], lang: str) -> bool:
    kind = "faq" if "/FAQ/" in hit.source else "reference"
    hit_lang = "ja" if ".ja." in Path(hit.source).name else "en"
    if kind != q.get("source", "faq") or hit_lang != lang:
        return False
    return any(f"> {s}. " in hit.title for s in q["sections"])


def evaluate(search: Search, qs: list[dict[str, Any]], lang: str, field: str) -> dict[str, Any]:
    """recall@K and MRR over answerable questions, empty rate over unanswerable ones."""
    found = 0
    rr = 0.0
    answerable = 0
    empty = 0
    unanswerable = 0
    misses: list[str] = []
    for q in qs:
        hits = search(q[field])
        if not q["sections"]:
            unanswerable += 1
            empty += not hits
            if hits:
                misses.append(f"NOT EMPTY {q[field]!r} got {hits[0].title!r} {hits[0].score:.2f}")
            continue
        answerable += 1
        rank = next((i for i, h in enumerate(hits, start=1) if relevant(h, q, lang)), None)
        if rank is None:
            top = hits[0].title if hits else "(nothing)"
            misses.append(f"MISS {q[field]!r} want {q['sections']} got {top!r}")
            continue
        found += 1
        rr += 1.0 / rank
    return {
        "recall": found / answerable,
        "mrr": rr / answerable,
        "empty": empty / unanswerable if unanswerable else None,
        "answerable": answerable,
        "unanswerable": unanswerable,
        "misses": misses,
    }


def plain_fts5(index: SqliteIndex) -> Search:
    """FTS5's own bm25() over every query term (no column weights, no term pruning)."""

    def search(query: str) -> list[Hit]:
        terms = query_terms(query, max_terms=64)
        if not terms:
            return []
        match = " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)
        with index._connection() as conn:
            assert conn is not None
            rows = conn.execute(
                "SELECT rowid, bm25(chunks_fts) FROM chunks_fts WHERE chunks_fts MATCH ? "
                "ORDER BY bm25(chunks_fts) LIMIT ?",
                (match, K * 6),
            ).fetchall()
            return one_per_section(conn, [(r[0], -r[1]) for r in rows], K)

    return search


class MemoEmbedder:
    """Wraps an embedder and remembers texts: the replicas of the 10k-chunk index repeat
    the corpus verbatim, so each distinct chunk is embedded once (query cost unchanged)."""

    def __init__(self, inner: Embedder) -> None:
        self._inner = inner
        self.name = inner.name
        self.dim = inner.dim
        self.multilingual = getattr(inner, "multilingual", False)
        self._memo: dict[str, Any] = {}
        self.remember = True  # off once built: queries are always embedded

    def embed(self, texts: list[str]) -> Vectors:
        import numpy as np

        if not self.remember:
            return self._inner.embed(texts)
        missing = [t for t in dict.fromkeys(texts) if t not in self._memo]
        if missing:
            for t, v in zip(missing, self._inner.embed(missing), strict=True):
                self._memo[t] = v
        return np.stack([self._memo[t] for t in texts]) if texts else self._inner.embed([])


def _p95(values: list[float]) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * 0.95))]


def _drop_caches() -> bool:
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def _latency_ms(index: SqliteIndex, queries: list[str], repeats: int, cold: bool = False) -> dict:
    """p50/p95 wall and p95 CPU in ms. CPU time is reported too because this 2-core
    machine is shared: wall time swings 2-3x with the load, the process's CPU time less."""
    wall = []
    cpu = []
    for _ in range(repeats):
        for q in queries:
            if cold and not _drop_caches():
                return {}
            time.sleep(0.005)  # paced single queries, as a kiosk asks them
            t0 = time.perf_counter()
            c0 = time.process_time()
            index.search(q, K)
            cpu.append((time.process_time() - c0) * 1000)
            wall.append((time.perf_counter() - t0) * 1000)
    return {"p50": statistics.median(wall), "p95": _p95(wall), "cpu95": _p95(cpu)}


def _load() -> str:
    return f"load avg {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"


def _rss_mib() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


_RSS_PROBE = """
import sys, time
from pathlib import Path
def rss():
    status = dict(
        line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines()
    )
    mib = [int(status[k].split()[0]) / 1024 for k in ("VmRSS", "RssAnon", "RssFile")]
    return "%.1f (%.1f anon, %.1f file)" % tuple(mib)
from kiosk.rag.backends import open_knowledge_base
from kiosk.config import load_config
cfg = load_config(
    f'[rag]\\nindex_path = "{sys.argv[1]}"\\nquery_embedder = "in_process"\\n',
    env={}, require_key=False,
)
kb = open_knowledge_base(cfg)
idle = rss()
kb.search(sys.argv[2], 5)
first = rss()
for q in sys.argv[3:]:
    kb.search(q, 5)
after = rss()
kb._embedder.unload()  # what the 5-minute idle drop does
print(idle, first, after, rss(), sep="|")
"""


def search_rss(index_path: Path, queries: list[str]) -> tuple[str, str, str, str] | None:
    """RSS (MiB) of a fresh process holding the knowledge base the daemon opens: idle,
    after the first search (the model loads), after all ``queries``, after the model's
    idle drop."""
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-c", _RSS_PROBE, str(index_path), *queries],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if proc.returncode != 0:
        return None
    idle, first, after, dropped = proc.stdout.strip().split("|")
    return idle, first, after, dropped


def _build_large(root: Path, index: SqliteIndex) -> int:
    """Ingest replicas until >= LATENCY_MIN_CHUNKS; returns the number of copies."""
    copies = 0
    while index.stats().chunks < LATENCY_MIN_CHUNKS and copies < 20:
        copies += 1
        dest = root / f"copy{copies}"
        dest.mkdir()
        for src in corpus_files():
            shutil.copyfile(src, dest / f"{src.parent.name}-{src.name}")
        ingest_paths(index, [dest])
    return copies


def _row(name: str, value: Any, goal: str, note: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "value": value, "goal": goal, "note": note, **extra}


def quality(index: SqliteIndex, mode: str, search: Search) -> tuple[list[dict], dict]:
    rows: list[dict[str, Any]] = []
    details: dict[str, Any] = {}
    for set_name in SETS:
        held_out = set_name == "held-out"
        for lang in ("en", "ja"):
            qs = load_questions(set_name, lang)
            for field in ("q", "rewrite"):
                r = evaluate(search, qs, lang, field)
                label = f"{set_name} {lang} {'raw' if field == 'q' else 'rewrite'} {mode}"
                note = f"{r['answerable']} answerable + {r['unanswerable']} unanswerable"
                recall_goal = ">= 0.9" if held_out and mode == "hybrid" else "-"
                mrr_goal = ">= 0.75" if held_out and mode == "hybrid" else "-"
                rows.append(_row(f"recall@5 {label}", round(r["recall"], 3), recall_goal, note))
                rows.append(_row(f"MRR@5 {label}", round(r["mrr"], 3), mrr_goal, note))
                if r["empty"] is not None:
                    empty_goal = ">= 0.8" if held_out and mode == "hybrid" else "-"
                    rows.append(
                        _row(
                            f"unanswerable empty {label}",
                            round(r["empty"], 3),
                            empty_goal,
                            f"{r['unanswerable']} questions; floor {FLOOR}"
                            if mode == "hybrid"
                            else "no floor without vectors",
                        )
                    )
                if not held_out:
                    details[label] = r["misses"]
    return rows, details


def _modes() -> list[tuple[str, Embedder | None]]:
    embedder = load_embedder()
    modes: list[tuple[str, Embedder | None]] = [("bm25", None)]
    if embedder is not None:
        modes.append(("hybrid", embedder))
    return modes


def run(quick: bool) -> dict[str, Any]:
    if not corpus_files():
        return {"rows": [_row("rag corpus", "missing", "-", SETUP)]}
    rows: list[dict[str, Any]] = []
    details: dict[str, Any] = {"relevance_floor": FLOOR}
    modes = _modes()
    if len(modes) == 1:
        rows.append(_row("rag hybrid", "off", "-", "pip install the embedding extras"))
    all_q = [q["q"] for lang in ("en", "ja") for q in load_questions("tuning", lang)]
    with tempfile.TemporaryDirectory(prefix="kiosk-bench-rag-") as tmp:
        root = Path(tmp)
        for mode, embedder in modes:
            floor = FLOOR if embedder is not None else 0.0
            with SqliteIndex(
                root / f"corpus-{mode}.sqlite", embedder=embedder, relevance_floor=floor
            ) as index:
                rss0 = _rss_mib()
                report = ingest_paths(index, corpus_files())
                chunks = index.stats().chunks
                rows.append(
                    _row(
                        f"ingest {mode}",
                        f"{report.chunks_written / report.seconds:.0f} chunks/s",
                        "-",
                        f"{chunks} chunks, FAQ + Reference en+ja HTML, "
                        f"{report.bytes_read / 1e6 / report.seconds:.2f} MB/s; {_load()}",
                    )
                )
                if mode == "bm25":
                    fts_rows, fts_details = quality(index, "fts5", plain_fts5(index))
                    rows += fts_rows
                    details.update(fts_details)
                mode_rows, mode_details = quality(index, mode, lambda q: index.search(q, K))
                rows += mode_rows
                details.update(mode_details)
                if embedder is not None:
                    details["rss_growth_after_ingest_and_search_mib"] = round(_rss_mib() - rss0, 1)
                    probe = search_rss(
                        root / f"corpus-{mode}.sqlite", all_q[:: max(1, len(all_q) // 40)]
                    )
                    if probe is not None:
                        idle, first, after, dropped = probe
                        rows.append(
                            _row(
                                "search process RSS idle / 1st search / 40 searches / dropped",
                                f"{idle} / {first} / {after} / {dropped} MiB",
                                "-",
                                f"a fresh process opening the {chunks}-chunk index as the daemon "
                                "does (open_knowledge_base) with the model in-process "
                                '(query_embedder = "in_process"; the default "worker" is '
                                "bench_search_worker's); the model loads at the 1st search; "
                                "file-backed growth is the memory-mapped token table's touched "
                                "pages; dropped = after the model's idle unload",
                            )
                        )
        if quick or not REFERENCE_DIR.is_dir():
            return {"rows": rows, "details": details}
        for mode, embedder in modes:
            big = root / f"big-{mode}"
            big.mkdir()
            memo = MemoEmbedder(embedder) if embedder is not None else None
            floor = FLOOR if embedder is not None else 0.0
            with SqliteIndex(big / "index.sqlite", embedder=memo, relevance_floor=floor) as large:
                copies = _build_large(big, large)
                if memo is not None:
                    memo.remember = False
                large.compact()
                stats = large.stats()
                large.search("warm up", K)
                warm = _latency_ms(large, all_q, repeats=3)
                load = _load()
                cold = _latency_ms(large, all_q[:COLD_QUERIES], repeats=1, cold=True)
            setting = f"{stats.chunks} chunks (corpus x{copies}), {len(all_q)} en+ja questions"
            rows.append(
                _row(
                    f"search p95 warm {mode}",
                    round(warm["p95"], 2),
                    "< 10",
                    f"ms; p50 {warm['p50']:.2f}, CPU p95 {warm['cpu95']:.2f}; {setting} x3; {load}",
                )
            )
            if cold:
                rows.append(
                    _row(
                        f"search p95 cold page cache {mode}",
                        round(cold["p95"], 2),
                        "-",
                        f"ms; p50 {cold['p50']:.2f}; drop_caches before each of "
                        f"{COLD_QUERIES} queries, process warm",
                    )
                )
            else:
                rows.append(
                    _row(f"search p95 cold {mode}", "not run", "-", "needs root for drop_caches")
                )
            rows.append(
                _row(
                    f"index size {mode}",
                    f"{stats.file_bytes / 2**20:.1f} MiB",
                    "-",
                    f"{stats.chunks} chunks, "
                    f"{stats.file_bytes / stats.chunks / 1024:.1f} KiB/chunk after compact",
                )
            )
    details["max_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return {"rows": rows, "details": details}


def main() -> None:
    import sys

    result = run("--quick" in sys.argv)
    for label, misses in result.get("details", {}).items():
        if isinstance(misses, list):
            for line in misses:
                print(label, line)
    for row in result["rows"]:
        print(f"{row['name']:48} {row['value']!s:>12}  goal {row['goal']:>8}  {row['note']}")


if __name__ == "__main__":
    main()
