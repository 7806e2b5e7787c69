"""The index under contention and on read-only storage (issue 12, item 8).

Real SQLite locks held by another connection, the real ``kiosk`` command in a
subprocess, a file made immutable with ``chattr +i`` and a read-only bind mount in a
user namespace (``unshare``): the situations an installer or a second shell produce.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from kiosk.config import load_config
from kiosk.rag import open_knowledge_base, sqlite_index
from kiosk.rag.ingest import ingest_paths
from kiosk.rag.knowledge import KnowledgeError
from kiosk.rag.sqlite_index import SqliteIndex


def kiosk(*argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kiosk.cli", *argv], capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture
def built(tmp_path: Path, corpus: Path) -> Path:
    """An index of the lobby FAQ, closed (no -wal/-shm left), and a new file to add."""
    path = tmp_path / "state" / "index.sqlite"
    with SqliteIndex(path) as ix:
        ingest_paths(ix, [corpus])
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "hours.txt").write_text("The cafe closes at noon.\n", encoding="utf-8")
    return path


@contextmanager
def hold_write_lock(path: Path, seconds: float) -> Iterator[None]:
    """Another writer: BEGIN IMMEDIATE on its own connection for ``seconds``."""
    locked, release = threading.Event(), threading.Event()

    def writer() -> None:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute("BEGIN IMMEDIATE")
        locked.set()
        release.wait(seconds)
        conn.execute("COMMIT")
        conn.close()

    thread = threading.Thread(target=writer)
    thread.start()
    assert locked.wait(10)
    try:
        yield
    finally:
        release.set()
        thread.join()


def test_index_add_waits_for_a_writer_that_holds_the_lock_for_6_s(
    tmp_path: Path, built: Path
) -> None:
    with hold_write_lock(built, 6.0):  # SQLite's default busy timeout gives up after 5 s
        proc = kiosk("index", "add", "--index", str(built), str(tmp_path / "new"))
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "added 1" in proc.stdout


def test_index_add_gives_up_on_a_lock_with_one_line(tmp_path: Path, built: Path) -> None:
    with hold_write_lock(built, 120.0):
        proc = kiosk(
            "index", "add", "--lock-wait", "1", "--index", str(built), str(tmp_path / "new")
        )
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[-1] == (
        f"error: {built}: the index is locked by another process (waited 1 s); "
        "try again when it has finished"
    )
    assert "Traceback" not in proc.stderr
    with SqliteIndex(built, read_only=True) as ix:
        assert ix.stats().documents == 3  # nothing half-written


def test_a_daemon_that_opens_a_locked_index_finds_it_once_unlocked(
    built: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_index, "REOPEN_INTERVAL_S", 0.0)
    # An exclusive-mode writer locks out readers too (WAL cannot help here).
    holder = sqlite3.connect(built, isolation_level=None)
    holder.execute("PRAGMA locking_mode = EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    cfg = load_config(f'[rag]\nindex_path = "{built}"\n', require_key=False)
    kb = open_knowledge_base(cfg)  # as the daemon does at start-up and on SIGHUP
    try:
        assert kb is not None
        with pytest.raises(KnowledgeError, match="locked by another process"):
            kb.search("where can I park", 3)
        holder.execute("COMMIT")
        holder.close()
        hits = kb.search("where can I park", 3)
        assert hits and "basement" in hits[0].text
    finally:
        holder.close()
        getattr(kb, "close", lambda: None)()


def test_a_read_only_index_file_is_searched_without_writing_it(built: Path) -> None:
    if shutil.which("chattr") is None:
        pytest.skip("needs chattr (e2fsprogs)")
    before = built.read_bytes()
    made = subprocess.run(["chattr", "+i", str(built)], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"chattr +i not possible here: {made.stderr.strip()}")
    try:
        proc = kiosk("search", "--index", str(built), "parking")
        listed = kiosk("index", "list", "--index", str(built))
    finally:
        subprocess.run(["chattr", "-i", str(built)], check=True)
    assert proc.returncode == 0, proc.stderr
    assert "basement" in proc.stdout
    assert listed.returncode == 0 and "3 documents" in listed.stdout, listed.stderr
    assert built.read_bytes() == before


def test_an_index_on_a_read_only_filesystem_is_searched(built: Path) -> None:
    folder = built.parent
    mount = f"mount --bind {folder} {folder} && mount -o remount,bind,ro {folder}"
    probe = subprocess.run(
        ["unshare", "-rm", "sh", "-c", f"{mount} && ! touch {folder}/probe"],
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0:
        pytest.skip(f"no read-only bind mount in a user namespace here: {probe.stderr.strip()}")
    argv = [sys.executable, "-m", "kiosk.cli", "search", "--index", str(built), "parking"]
    proc = subprocess.run(
        ["unshare", "-rm", "sh", "-c", f'{mount} && exec "$@"', "sh", *argv],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "basement" in proc.stdout
