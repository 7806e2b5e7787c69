"""Put files into a :class:`~kiosk.rag.sqlite_index.SqliteIndex`: walk, hash, extract, chunk.

Owns the incremental rule: a file is identified by its resolved path, and re-adding it
with the same content hash (bytes + chunker/segmenter versions) is a no-op. A bad file
(unreadable, binary, empty, unsupported) becomes a one-line warning and the rest goes
on. Progress is reported through a callback so the CLI decides how to show it.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from kiosk.rag.chunking import (
    CHUNKER_VERSION,
    DEFAULT_CHUNK_CHARS,
    DEFAULT_OVERLAP_CHARS,
    chunk_document,
)
from kiosk.rag.extract import SUPPORTED_SUFFIXES, UnreadableFile, extract
from kiosk.rag.sqlite_index import SqliteIndex
from kiosk.rag.text import SEGMENTER_VERSION

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 50 * 1024 * 1024  # a kiosk FAQ is not this big; refuse before reading it


@dataclass(frozen=True, slots=True)
class Progress:
    done: int  # files handled so far, this one included
    total: int
    path: str
    outcome: str  # "added", "updated", "unchanged", "skipped"


@dataclass(slots=True)
class IngestReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # one line each, naming the file
    chunks_written: int = 0
    bytes_read: int = 0
    seconds: float = 0.0


def content_hash(data: bytes) -> str:
    """Hash of the bytes and of the code versions that turn them into index rows."""
    h = hashlib.sha256(data)
    h.update(f"|chunker={CHUNKER_VERSION}|segmenter={SEGMENTER_VERSION}".encode())
    return h.hexdigest()


def iter_files(paths: Iterable[Path | str], warnings: list[str]) -> Iterator[Path]:
    """Files to ingest: named files as given, folders walked for supported types.

    Hidden files and folders (``.git``) are skipped in walks; a named path that does not
    exist, or a named file of an unsupported type, adds a warning.
    """
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                rel = child.relative_to(path).parts
                if any(part.startswith(".") for part in rel):
                    continue
                if child.is_file() and child.suffix.lower() in SUPPORTED_SUFFIXES:
                    yield child.resolve()
        elif path.is_file():
            yield path.resolve()
        else:
            warnings.append(f"{path}: no such file or folder, skipped")


def ingest_file(
    index: SqliteIndex,
    path: Path,
    report: IngestReport,
    *,
    force: bool = False,
    chunk_chars: int = DEFAULT_CHUNK_CHARS,
    overlap_chars: int = DEFAULT_OVERLAP_CHARS,
) -> str:
    """Add or refresh one file; returns its outcome ("added", "updated", "unchanged", "skipped")."""
    source = str(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise UnreadableFile(f"{source}: larger than {MAX_FILE_BYTES // 2**20} MiB, skipped")
        data = path.read_bytes()
    except OSError as exc:
        report.warnings.append(f"{source}: cannot read ({exc.strerror or exc}), skipped")
        return "skipped"
    except UnreadableFile as exc:
        report.warnings.append(str(exc))
        return "skipped"
    report.bytes_read += len(data)
    digest = content_hash(data)
    existing = index.document(source)
    if existing is not None and existing.content_hash == digest and not force:
        report.unchanged.append(source)
        return "unchanged"
    try:
        if not data.strip():
            raise UnreadableFile(f"{source}: empty, skipped")
        doc = extract(path, data)
        chunks = chunk_document(doc, chunk_chars=chunk_chars, overlap_chars=overlap_chars)
        if not chunks:
            raise UnreadableFile(f"{source}: no text found, skipped")
    except UnreadableFile as exc:
        report.warnings.append(str(exc))
        return "skipped"
    index.replace_document(source, doc.title, digest, len(data), chunks)
    report.chunks_written += len(chunks)
    if existing is None:
        report.added.append(source)
        return "added"
    report.updated.append(source)
    return "updated"


def ingest_paths(
    index: SqliteIndex,
    paths: Iterable[Path | str],
    *,
    force: bool = False,
    progress: Callable[[Progress], None] | None = None,
    chunk_chars: int = DEFAULT_CHUNK_CHARS,
    overlap_chars: int = DEFAULT_OVERLAP_CHARS,
) -> IngestReport:
    """Ingest files and folders; never raises for a bad file (see ``report.warnings``)."""
    started = time.perf_counter()
    report = IngestReport()
    files = list(dict.fromkeys(iter_files(paths, report.warnings)))
    for n, path in enumerate(files, start=1):
        outcome = ingest_file(
            index, path, report, force=force, chunk_chars=chunk_chars, overlap_chars=overlap_chars
        )
        if progress is not None:
            progress(Progress(n, len(files), str(path), outcome))
    for warning in report.warnings:
        log.debug("skipped: %s", warning)
    report.seconds = time.perf_counter() - started
    return report


def rebuild(index: SqliteIndex, progress: Callable[[Progress], None] | None = None) -> IngestReport:
    """Re-read every indexed file from disk (forgetting the ones that are gone) and compact."""
    report = IngestReport()
    started = time.perf_counter()
    sources = [d.source for d in index.documents()]
    index.adopt_embedder()
    for n, source in enumerate(sources, start=1):
        path = Path(source)
        if path.is_file():
            outcome = ingest_file(index, path, report, force=True)
        else:
            index.remove_document(source)
            report.warnings.append(f"{source}: gone from disk, removed from the index")
            outcome = "skipped"
        if progress is not None:
            progress(Progress(n, len(sources), source, outcome))
    index.set_segmenter_current()
    index.compact()
    report.seconds = time.perf_counter() - started
    return report
