"""``kiosk index add|list|remove|rebuild|push`` and ``kiosk search``.

Owns argument parsing and terminal output for the knowledge commands; the work is done
by :mod:`kiosk.rag.ingest`, :mod:`kiosk.rag.sqlite_index` and
:mod:`kiosk.rag.azure_search`. Each handler returns an exit code: 0 done, 1 done with
warnings (a file skipped) or nothing found to act on, 2 bad settings or arguments.
Progress and warnings go to stderr, results to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from kiosk.config import Config, load_config_file
from kiosk.errors import ConfigError
from kiosk.rag.embedding import load_embedder
from kiosk.rag.knowledge import Hit, KnowledgeBase, KnowledgeError
from kiosk.rag.sqlite_index import SqliteIndex
from kiosk.rag.sqlite_open import WRITE_LOCK_WAIT_S
from kiosk.textsafe import printable

if TYPE_CHECKING:  # the ingest side (extractors, html.parser, chunking) loads when used:
    # `kiosk run` builds this parser too and never ingests.
    from kiosk.rag.ingest import IngestReport, Progress

Handler = Callable[[argparse.Namespace], int]


def register(subparsers: argparse._SubParsersAction[Any], parent: argparse.ArgumentParser) -> None:
    """Add the ``index`` and ``search`` subcommands; ``parent`` carries ``--config``."""
    index_opt = argparse.ArgumentParser(add_help=False)
    index_opt.add_argument(
        "--index",
        metavar="PATH",
        help="SQLite index file (default: rag.index_path from the config)",
    )

    wait_opt = argparse.ArgumentParser(add_help=False)
    wait_opt.add_argument(
        "--lock-wait",
        type=float,
        default=WRITE_LOCK_WAIT_S,
        metavar="SECONDS",
        help=f"wait this long for another process's lock (default {WRITE_LOCK_WAIT_S:g})",
    )

    p_index = subparsers.add_parser(
        "index",
        parents=[parent],
        help="manage the local knowledge index",
        description="Manage the local knowledge index (SQLite FTS5; rag.index_path or --index).",
    )
    actions = p_index.add_subparsers(dest="index_action", metavar="ACTION", required=True)

    p = actions.add_parser(
        "add",
        parents=[parent, index_opt, wait_opt],
        help="ingest files or folders",
        description="Ingest .md .txt .html .pdf files, or every such file under folders (links "
        "out of a folder are not followed). Unchanged files are skipped. Exit codes: 0 every "
        "file ingested or unchanged; 1 a file could not be ingested or was refused (each is "
        "named); 2 bad usage or configuration.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help=".md .txt .html .pdf files or folders")
    p.add_argument("--force", action="store_true", help="re-ingest files even when unchanged")
    p.set_defaults(func=cmd_index_add)

    p = actions.add_parser(
        "list",
        parents=[parent, index_opt],
        help="list ingested documents",
        description="List ingested documents with their chunk counts. Exit codes: 0 listed "
        "(an empty index too); 1 the index cannot be opened; 2 bad usage or configuration.",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_index_list)

    p = actions.add_parser(
        "remove",
        parents=[parent, index_opt, wait_opt],
        help="forget files (or everything under a folder)",
        description="Forget files, or everything ingested under a folder. Exit codes: 0 all "
        "removed; 1 a path was not in the index (named) or the index cannot be opened; 2 bad "
        "usage or configuration.",
    )
    p.add_argument(
        "paths", nargs="+", metavar="PATH", help="files or folders as given to `index add`"
    )
    p.set_defaults(func=cmd_index_remove)

    p = actions.add_parser(
        "rebuild",
        parents=[parent, index_opt, wait_opt],
        help="re-read every ingested file and compact",
        description="Re-read every ingested file (dropping those gone or no longer safe to "
        "read) and compact the index. Exit codes: 0 done; 1 a file failed or the index cannot "
        "be opened; 2 bad usage or configuration.",
    )
    p.set_defaults(func=cmd_index_rebuild)

    p = actions.add_parser(
        "push",
        parents=[parent, index_opt],
        help="upload the local index to Azure AI Search",
        description="Upload the local index's chunks to Azure AI Search (rag.azure_endpoint, "
        "rag.azure_index, AZURE_SEARCH_API_KEY). Exit codes: 0 uploaded; 1 the upload failed; "
        "2 bad usage or configuration.",
    )
    p.add_argument(
        "--azure", action="store_true", required=True, help="target: Azure AI Search (rag.azure_*)"
    )
    p.add_argument(
        "--batch-size", type=int, default=500, help="documents per upload request (1-1000)"
    )
    p.set_defaults(func=cmd_index_push)

    p = subparsers.add_parser(
        "search",
        parents=[parent, index_opt],
        help="try retrieval from a shell",
        description="Search the knowledge base as the kiosk's search tool does. Exit codes: 0 "
        "results found; 1 nothing found (--json prints []) or the index cannot be opened; 2 bad "
        "usage (empty query, -k < 1) or configuration.",
    )
    p.add_argument("query", help="what a visitor might ask, or keywords (quote it)")
    p.add_argument("-k", type=int, default=None, help="results, 1-100 (default: rag.top_k)")
    p.add_argument(
        "--json", action="store_true", help="a JSON list of {chunk_id, title, source, score, text}"
    )
    p.set_defaults(func=cmd_search)


# --- helpers -------------------------------------------------------------------------

def _empty_path_refused(paths: list[str], action: str) -> bool:
    """True (after saying so) when a PATH is empty: "" would mean the current folder."""
    if all(p.strip() for p in paths):
        return False
    print(
        f"index {action}: an empty PATH is not a folder (say . for the current one)",
        file=sys.stderr,
    )
    return True


def _config(args: argparse.Namespace) -> Config:
    return load_config_file(getattr(args, "config", None), require_key=False)


def _index_path(args: argparse.Namespace, cfg: Config) -> Path:
    return Path(args.index or cfg.rag.index_path)


def _guard(func: Callable[[argparse.Namespace], int]) -> Handler:
    """Settings problems -> message + exit 2; backend failures -> message + exit 1."""

    def wrapper(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except ConfigError as exc:
            print(exc, file=sys.stderr)
            return 2
        except KnowledgeError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        except OSError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1

    wrapper.__name__ = func.__name__
    wrapper.__doc__ = func.__doc__
    return wrapper


class _ProgressPrinter:
    """One line per file for small ingests, else one line a second (and the last)."""

    def __init__(self, out: TextIO, interval_s: float = 1.0) -> None:
        self._out = out
        self._interval_s = interval_s
        self._last = 0.0

    def __call__(self, p: Progress) -> None:
        now = time.monotonic()
        if p.total <= 20 or p.done == p.total or now - self._last >= self._interval_s:
            self._last = now
            line = f"[{p.done}/{p.total}] {p.outcome:9} {printable(p.path)}"
            print(line, file=self._out, flush=True)


def _print_report(report: IngestReport, index_path: Path) -> int:
    for warning in report.warnings:
        print(f"warning: {printable(warning)}", file=sys.stderr)
    mib = report.bytes_read / 2**20
    print(
        f"added {len(report.added)}, updated {len(report.updated)}, "
        f"unchanged {len(report.unchanged)}, "
        f"skipped {len(report.warnings)}; {report.chunks_written} chunks from {mib:.1f} MiB "
        f"in {report.seconds:.1f} s -> {index_path}"
    )
    return 1 if report.warnings else 0


# --- handlers ------------------------------------------------------------------------


@_guard
def cmd_index_add(args: argparse.Namespace) -> int:
    if _empty_path_refused(args.paths, "add"):
        return 2
    cfg = _config(args)
    path = _index_path(args, cfg)
    from kiosk.rag.ingest import ingest_paths

    with SqliteIndex(path, embedder=load_embedder(), lock_wait_s=args.lock_wait) as index:
        report = ingest_paths(
            index, args.paths, force=args.force, progress=_ProgressPrinter(sys.stderr)
        )
    return _print_report(report, path)


@_guard
def cmd_index_list(args: argparse.Namespace) -> int:
    cfg = _config(args)
    path = _index_path(args, cfg)
    if not path.exists():
        print(f"no index at {path} (create one with `kiosk index add PATH`)", file=sys.stderr)
        return 1
    with SqliteIndex(path, read_only=True) as index:
        docs = index.documents()
        stats = index.stats()
    if args.json:
        rows = [
            {
                "source": d.source,
                "title": d.title,
                "chunks": d.chunks,
                "bytes": d.size_bytes,
                "added_at": d.added_at,
            }
            for d in docs
        ]
        print(json.dumps(rows, ensure_ascii=False, indent=1))
        return 0
    for d in docs:
        print(f"{d.chunks:5d}  {printable(d.source)}  ({printable(d.title)})")
    print(
        f"{stats.documents} documents, {stats.chunks} chunks, "
        f"{stats.file_bytes / 2**20:.1f} MiB: {path}"
    )
    return 0


@_guard
def cmd_index_remove(args: argparse.Namespace) -> int:
    if _empty_path_refused(args.paths, "remove"):
        return 2
    cfg = _config(args)
    path = _index_path(args, cfg)
    if not path.exists():
        print(f"no index at {path}", file=sys.stderr)
        return 1
    missing = 0
    with SqliteIndex(path, create=False, lock_wait_s=args.lock_wait) as index:
        sources = [d.source for d in index.documents()]
        for raw in args.paths:
            matched = sources_under(sources, raw)
            if not matched:
                print(f"warning: {printable(raw)}: not in the index", file=sys.stderr)
                missing += 1
            for source in matched:
                chunks = index.remove_document(source)
                print(f"removed {printable(source)} ({chunks} chunks)")
    return 1 if missing else 0


def sources_under(sources: list[str], raw: str) -> list[str]:
    """The indexed sources that are ``raw`` or lie under it.

    Sources are real paths, so ``raw`` is matched both as written (absolute) and
    resolved: a folder that is (or was) reached through a symlink still removes what
    was added from it, even files gone from disk since.
    """
    given = Path(raw).expanduser()
    roots = {os.path.abspath(given), os.path.realpath(given)}
    prefixes = tuple(r.rstrip("/") + "/" for r in roots)
    return [s for s in sources if s in roots or s.startswith(prefixes)]


@_guard
def cmd_index_rebuild(args: argparse.Namespace) -> int:
    cfg = _config(args)
    path = _index_path(args, cfg)
    if not path.exists():
        print(f"no index at {path}", file=sys.stderr)
        return 1
    from kiosk.rag.ingest import rebuild

    with SqliteIndex(path, embedder=load_embedder(), lock_wait_s=args.lock_wait) as index:
        report = rebuild(index, progress=_ProgressPrinter(sys.stderr))
    return _print_report(report, path)


@_guard
def cmd_index_push(args: argparse.Namespace) -> int:
    from kiosk.rag.azure_push import push_chunks  # the SDK import is slow; only here

    cfg = _config(args)
    path = _index_path(args, cfg)
    if not 1 <= args.batch_size <= 1000:
        print("--batch-size must be between 1 and 1000", file=sys.stderr)
        return 2
    if not cfg.rag.azure_endpoint or not cfg.rag.azure_index:
        print(
            "config: rag.azure_endpoint and rag.azure_index are required for push", file=sys.stderr
        )
        return 2
    if not path.exists():
        print(f"no index at {path}", file=sys.stderr)
        return 1
    with SqliteIndex(path, read_only=True) as index:
        total = index.stats().chunks
        model, vectors = index.stored_vectors() if cfg.rag.azure_vector_field else ("", {})
        _, headings = (
            index.stored_vectors(headings=True)
            if vectors and cfg.rag.azure_heading_vector_field
            else ("", {})
        )
        result = push_chunks(
            cfg.rag,
            cfg.credentials.azure_search_api_key.reveal(),
            index.iter_chunks(),
            vectors=vectors or None,
            heading_vectors=headings or None,
            batch_size=args.batch_size,
            progress=lambda n: print(f"[{n}/{total}] uploaded", file=sys.stderr, flush=True),
        )
    with_vectors = f" with {model} vectors" if result.vectors else ""
    if result.heading_vectors:
        with_vectors += f" ({len(headings)} section headings' too)"
    print(
        f"pushed {result.uploaded} chunks{with_vectors}, deleted {result.deleted} no longer "
        f"in the local index: {cfg.rag.azure_endpoint} index {cfg.rag.azure_index}"
    )
    return 0


def _search_backend(args: argparse.Namespace, cfg: Config) -> KnowledgeBase | None:
    if args.index is None and cfg.rag.backend == "azure":
        from kiosk.rag.azure_search import AzureSearchIndex

        return AzureSearchIndex(cfg.rag, cfg.credentials.azure_search_api_key.reveal())
    path = _index_path(args, cfg)
    if not path.exists():
        print(f"no index at {path} (create one with `kiosk index add PATH`)", file=sys.stderr)
        return None
    return SqliteIndex(
        path, read_only=True, embedder=load_embedder(), relevance_floor=cfg.rag.relevance_floor
    )


def hit_to_json(hit: Hit) -> dict[str, Any]:
    return {
        "chunk_id": hit.chunk_id,
        "title": hit.title,
        "source": hit.source,
        "score": hit.score,
        "text": hit.text,
    }


@_guard
def cmd_search(args: argparse.Namespace) -> int:
    if not args.query.strip():
        print("search: the query is empty", file=sys.stderr)
        return 2
    if args.k is not None and not 1 <= args.k <= 100:
        print(f"search: -k must be between 1 and 100, got {args.k}", file=sys.stderr)
        return 2
    cfg = _config(args)
    k = args.k if args.k is not None else cfg.rag.top_k
    backend = _search_backend(args, cfg)
    if backend is None:
        return 1
    try:
        hits = backend.search(args.query, k)
    finally:
        close = getattr(backend, "close", None)
        if close is not None:
            close()
    if args.json:
        print(json.dumps([hit_to_json(h) for h in hits], ensure_ascii=False, indent=1))
        return 0 if hits else 1  # one rule for both forms: nothing found is exit 1, like grep
    if not hits:
        print("no results")
        return 1
    for rank, h in enumerate(hits, start=1):
        text = " ".join(h.text.split())
        print(f"{rank}. [{h.chunk_id}] {printable(h.title)}  (score {h.score:.2f})")
        print(f"   {printable(h.source)}")
        print(f"   {printable(text[:300])}{'…' if len(text) > 300 else ''}")
    return 0
