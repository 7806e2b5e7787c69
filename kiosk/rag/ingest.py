"""Put files into a :class:`~kiosk.rag.sqlite_index.SqliteIndex`: walk, hash, extract, chunk.

Owns the incremental rule: a file is identified by its resolved path, and re-adding it
with the same content hash (bytes + chunker/segmenter versions) is a no-op. A bad file
(unreadable, binary, empty, unsupported, too big, too slow) becomes a one-line warning
and the rest goes on. Progress is reported through a callback so the CLI decides how to
show it.

Symlinks: a walk never leaves the folder it was given. A link inside it to a supported
file that is also inside it (and not under a hidden folder) is read, stored under the
file's real path; every other link (outside the tree, to a folder, broken) is skipped
with a warning. A named file that is itself a symlink is refused (name the real file).
Files are opened without following a final symlink and must be regular files, and
``rebuild`` drops any stored path that is no longer the regular file it was (replaced by
a symlink, reached through a symlinked folder): the index only ever holds text from
inside the trees someone added, even when they change between runs.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
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
from kiosk.rag.extract import SUPPORTED_SUFFIXES, TimeBudget, UnreadableFile, extract
from kiosk.rag.sqlite_index import SqliteIndex
from kiosk.rag.text import SEGMENTER_VERSION

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 50 * 1024 * 1024  # a kiosk FAQ is not this big; refuse before reading it
# Wall-clock limit for reading, extracting and chunking one file. Parsing is linear, so a
# legitimate 50 MiB file takes a few seconds; this only stops what was not foreseen.
DOCUMENT_BUDGET_S = 60.0


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
    """Files to ingest (real paths): named files as given, folders walked for supported types.

    Hidden files and folders (``.git``) are skipped in walks; links are handled as the
    module says. A named path that is empty, missing or not a file or folder, or a named
    file that is a symlink, adds a warning (one line per skipped path).
    """
    for raw in paths:
        if not str(raw).strip():
            warnings.append("'': an empty path names no file or folder, skipped")
            continue
        path = Path(raw).expanduser()
        if path.is_dir():  # a named folder may be a link: the user chose that tree
            yield from sorted(_walk(Path(os.path.realpath(path)), warnings))
        elif path.is_symlink():
            target = os.path.realpath(path)
            warnings.append(f"{path}: a symlink (to {target}), not followed: name the file itself")
        elif path.is_file():
            yield Path(os.path.realpath(path))
        elif path.exists():
            warnings.append(f"{path}: not a regular file or folder, skipped")
        else:
            warnings.append(f"{path}: no such file or folder, skipped")


def _walk(root: Path, warnings: list[str]) -> Iterator[Path]:
    """Supported regular files under ``root`` (a real path), without leaving it."""
    folders = [root]
    while folders:
        folder = folders.pop()
        try:
            with os.scandir(folder) as it:
                entries = list(it)
        except OSError as exc:
            warnings.append(f"{folder}: cannot list ({exc.strerror or exc}), skipped")
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            supported = Path(entry.name).suffix.lower() in SUPPORTED_SUFFIXES
            if entry.is_symlink():
                target = _link_target_inside(Path(entry.path), root)
                if target is not None and supported:
                    yield target
                elif supported or entry.is_dir():
                    warnings.append(f"{entry.path}: {_why_link_skipped(entry, root)}, skipped")
            elif entry.is_dir(follow_symlinks=False):
                folders.append(Path(entry.path))
            elif supported and entry.is_file(follow_symlinks=False):
                yield Path(entry.path)


def _link_target_inside(link: Path, root: Path) -> Path | None:
    """The real file ``link`` leads to when it is a regular file in ``root``'s walk."""
    target = Path(os.path.realpath(link))
    if not target.is_relative_to(root) or target == root:
        return None
    if any(part.startswith(".") for part in target.relative_to(root).parts):
        return None
    try:
        st = os.stat(target, follow_symlinks=False)
    except OSError:
        return None
    return target if stat.S_ISREG(st.st_mode) else None


def _why_link_skipped(entry: os.DirEntry[str], root: Path) -> str:
    target = Path(os.path.realpath(entry.path))
    if not target.exists():
        return "a broken symlink"
    if not target.is_relative_to(root):
        return f"a symlink leading outside {root}, not followed"
    if target.is_dir():
        return "a symlink to a folder, not followed"
    return "a symlink to a hidden or special file, not followed"


def read_regular_file(path: Path, limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of ``path`` if it is a regular file (not a symlink) of at most ``limit``.

    ``path`` must be a real path (no symlinked folders in it): ``O_NOFOLLOW`` refuses a
    final symlink at open time and the kernel's name of the opened file must be ``path``,
    so swapping a folder for a symlink between a check and the open cannot redirect the
    read. ``O_NONBLOCK`` keeps a FIFO from blocking the open.

    Raises:
        OSError: cannot open or read (ELOOP for a symlink).
        UnreadableFile: not a regular file, reached through a symlink, or over ``limit``.
    """
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    fd = os.open(path, flags)
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnreadableFile(f"{path}: not a regular file, skipped")
        opened = _opened_path(fd)
        if opened is not None and opened != str(path):
            raise UnreadableFile(f"{path}: reached through a symlink (it is {opened}), skipped")
        if st.st_size > limit:
            raise UnreadableFile(f"{path}: larger than {limit // 2**20} MiB, skipped")
        data = f.read(limit + 1)  # the file may grow after fstat
    if len(data) > limit:
        raise UnreadableFile(f"{path}: larger than {limit // 2**20} MiB, skipped")
    return data


def _opened_path(fd: int) -> str | None:
    """Where the kernel says ``fd`` is (Linux ``/proc``), or None when it cannot say."""
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None


def changed_into_something_else(source: str) -> str | None:
    """Why the indexed path ``source`` must not be read again, or None if it may be.

    It was stored as the real path of a regular file; a symlink in its place, or in
    place of one of its folders, could lead anywhere (``/etc/shadow``).
    """
    try:
        st = os.lstat(source)
    except FileNotFoundError:
        return "gone from disk"
    except OSError:
        return None  # unreadable now: ingest_file warns and keeps the old text
    if stat.S_ISLNK(st.st_mode):
        return f"replaced by a symlink (to {os.path.realpath(source)})"
    if not stat.S_ISREG(st.st_mode):
        return "no longer a regular file"
    if os.path.realpath(source) != source:
        return f"now reached through a symlinked folder (to {os.path.realpath(source)})"
    return None


def ingest_file(
    index: SqliteIndex,
    path: Path,
    report: IngestReport,
    *,
    force: bool = False,
    chunk_chars: int = DEFAULT_CHUNK_CHARS,
    overlap_chars: int = DEFAULT_OVERLAP_CHARS,
    budget_s: float = DOCUMENT_BUDGET_S,
) -> str:
    """Add or refresh one file; returns its outcome ("added", "updated", "unchanged", "skipped")."""
    source = str(path)
    budget = TimeBudget(source, budget_s)
    try:
        data = read_regular_file(path)
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
        doc = extract(path, data, budget)
        chunks = chunk_document(doc, chunk_chars=chunk_chars, overlap_chars=overlap_chars)
        budget.check()
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
    budget_s: float = DOCUMENT_BUDGET_S,
) -> IngestReport:
    """Ingest files and folders; never raises for a bad file (see ``report.warnings``)."""
    started = time.perf_counter()
    report = IngestReport()
    files = list(dict.fromkeys(iter_files(paths, report.warnings)))
    for n, path in enumerate(files, start=1):
        outcome = ingest_file(
            index,
            path,
            report,
            force=force,
            chunk_chars=chunk_chars,
            overlap_chars=overlap_chars,
            budget_s=budget_s,
        )
        if progress is not None:
            progress(Progress(n, len(files), str(path), outcome))
    for warning in report.warnings:
        log.debug("skipped: %s", warning)
    index.write_postings()  # now, for searches by this same object (close would do it too)
    report.seconds = time.perf_counter() - started
    return report


def rebuild(index: SqliteIndex, progress: Callable[[Progress], None] | None = None) -> IngestReport:
    """Re-read every indexed file from disk and compact.

    Files that are gone, or are no longer the regular file that was added (see
    :func:`changed_into_something_else`), are forgotten with a warning, never read.
    """
    report = IngestReport()
    started = time.perf_counter()
    sources = [d.source for d in index.documents()]
    index.adopt_embedder()
    for n, source in enumerate(sources, start=1):
        problem = changed_into_something_else(source)
        if problem is None:
            outcome = ingest_file(index, Path(source), report, force=True)
        else:
            index.remove_document(source)
            report.warnings.append(f"{source}: {problem}, removed from the index")
            outcome = "skipped"
        if progress is not None:
            progress(Progress(n, len(sources), source, outcome))
    index.set_segmenter_current()
    index.compact()
    report.seconds = time.perf_counter() - started
    return report
