"""Symlinks cannot pull files from outside an added tree into the index (issue 12, item 2).

Real files, real symlinks, a real SQLite index and the real ``kiosk`` command in a
subprocess. The "secret" stands in for ``/etc/shadow``: a readable file outside the tree.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kiosk.rag.extract import UnreadableFile
from kiosk.rag.ingest import ingest_paths, read_regular_file, rebuild
from kiosk.rag.sqlite_index import SqliteIndex

SECRET = "root:$6$saltsalt$hashedpasswordvalue:19000:0:99999:7:::"


def kiosk(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kiosk.cli", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """docs/ with one real FAQ; outside/ holds a secret .md and a folder of them."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "faq.md").write_text("# FAQ\n\nThe lobby opens at seven.\n", encoding="utf-8")
    outside = tmp_path / "outside"
    (outside / "more").mkdir(parents=True)
    (outside / "shadow.md").write_text(SECRET + "\n", encoding="utf-8")
    (outside / "more" / "private.txt").write_text(SECRET + " private\n", encoding="utf-8")
    return docs


def sources(index: Path) -> list[str]:
    with SqliteIndex(index, create=False) as ix:
        return [d.source for d in ix.documents()]


def secret_found(index: Path) -> bool:
    proc = kiosk("search", "--index", str(index), "--json", "-k", "10", "hashedpasswordvalue")
    assert proc.returncode in (0, 1), proc.stderr  # 1: nothing found (relevance floor)
    return any("hashedpasswordvalue" in row["text"] for row in json.loads(proc.stdout))


def test_add_does_not_follow_links_out_of_the_tree_and_names_each_skipped_path(
    tmp_path: Path, tree: Path
) -> None:
    outside = tmp_path / "outside"
    (tree / "notes.md").symlink_to(outside / "shadow.md")
    (tree / "shared").symlink_to(outside / "more")
    (tree / "gone.md").symlink_to(tmp_path / "nowhere.md")
    (tree / "evil\x1b[2J\x07.md").symlink_to(outside / "shadow.md")
    index = tmp_path / "i.sqlite"

    proc = kiosk("index", "add", "--index", str(index), str(tree))

    assert proc.returncode == 1, proc.stderr  # done, with warnings
    assert sources(index) == [str(tree.resolve() / "faq.md")]
    assert not secret_found(index)
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 4, proc.stderr
    for name, why in [
        ("notes.md", "outside"),
        ("shared", "outside"),
        ("gone.md", "broken"),
        ("evil[2J.md", "outside"),
    ]:
        assert any(f"/{name}: " in w and why in w for w in warnings), (name, proc.stderr)
    assert "\x1b" not in proc.stderr and "\x07" not in proc.stderr
    assert "added 1" in proc.stdout


def test_links_inside_the_tree_to_files_inside_it_are_read_once_under_the_real_name(
    tmp_path: Path, tree: Path
) -> None:
    (tree / "sub").mkdir()
    (tree / "sub" / "hours.txt").write_text("Closed on Sundays.\n", encoding="utf-8")
    (tree / "hours-link.txt").symlink_to(tree / "sub" / "hours.txt")
    with SqliteIndex(tmp_path / "i.sqlite") as ix:
        report = ingest_paths(ix, [tree])
        assert not report.warnings
        assert sorted(d.source for d in ix.documents()) == [
            str(tree.resolve() / "faq.md"),
            str(tree.resolve() / "sub" / "hours.txt"),
        ]


def test_a_named_file_that_is_a_symlink_is_refused(tmp_path: Path, tree: Path) -> None:
    link = tree / "notes.md"
    link.symlink_to(tmp_path / "outside" / "shadow.md")
    with SqliteIndex(tmp_path / "i.sqlite") as ix:
        report = ingest_paths(ix, [link])
        assert report.added == []
        assert len(report.warnings) == 1 and "notes.md: a symlink" in report.warnings[0]


def test_rebuild_drops_a_file_replaced_by_a_symlink_instead_of_reading_it(
    tmp_path: Path, tree: Path
) -> None:
    index = tmp_path / "i.sqlite"
    (tree / "notes.md").write_text("# Notes\n\nVisitors sign in.\n", encoding="utf-8")
    assert kiosk("index", "add", "--index", str(index), str(tree)).returncode == 0
    notes = tree / "notes.md"
    notes.unlink()
    notes.symlink_to(tmp_path / "outside" / "shadow.md")

    proc = kiosk("index", "rebuild", "--index", str(index))

    assert proc.returncode == 1
    assert f"{tree.resolve()}/notes.md: replaced by a symlink" in proc.stderr
    assert "removed from the index" in proc.stderr
    assert sources(index) == [str(tree.resolve() / "faq.md")]
    assert not secret_found(index)


def test_rebuild_drops_files_whose_folder_became_a_symlink(tmp_path: Path, tree: Path) -> None:
    sub = tree / "more"
    sub.mkdir()
    (sub / "private.txt").write_text("Harmless text.\n", encoding="utf-8")
    with SqliteIndex(tmp_path / "i.sqlite") as ix:
        ingest_paths(ix, [tree])
        (sub / "private.txt").unlink()
        sub.rmdir()
        sub.symlink_to(tmp_path / "outside" / "more")  # same file name, secret content
        report = rebuild(ix)
        why = "private.txt: now reached through a symlinked folder"
        assert any(why in w for w in report.warnings)
        assert [d.source for d in ix.documents()] == [str(tree.resolve() / "faq.md")]
        assert ix.search("hashedpasswordvalue private", 5) == []


def test_remove_through_a_symlinked_root_removes_everything_added_under_it(
    tmp_path: Path, tree: Path
) -> None:
    index = tmp_path / "i.sqlite"
    alias = tmp_path / "docs-alias"
    alias.symlink_to(tree, target_is_directory=True)
    (tree / "sub").mkdir()
    (tree / "sub" / "b.txt").write_text("Second file.\n", encoding="utf-8")
    (tree / "sub" / "b-link.txt").symlink_to(tree / "sub" / "b.txt")
    (tree / "sub" / "notes.md").symlink_to(tmp_path / "outside" / "shadow.md")
    kiosk("index", "add", "--index", str(index), str(alias))
    assert len(sources(index)) == 2
    (tree / "sub" / "b.txt").unlink()  # gone from disk: still removed

    proc = kiosk("index", "remove", "--index", str(index), str(alias))

    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("removed ") == 2
    assert sources(index) == []


@pytest.mark.parametrize("action", ["add", "remove"])
def test_an_empty_path_is_a_usage_error_not_the_current_folder(
    tmp_path: Path, tree: Path, action: str
) -> None:
    index = tmp_path / "i.sqlite"
    if action == "remove":
        assert kiosk("index", "add", "--index", str(index), str(tree)).returncode == 0

    proc = kiosk("index", action, "--index", str(index), "", cwd=tree)

    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "empty PATH" in proc.stderr
    if action == "add":
        assert not index.exists()
    else:
        assert sources(index) == [str(tree.resolve() / "faq.md")]


def test_a_read_through_a_symlinked_folder_is_refused_even_after_the_checks(
    tmp_path: Path, tree: Path
) -> None:
    # As if the folder was swapped for a link between rebuild's check and the open:
    # O_NOFOLLOW only guards the last component; the opened file's real name is checked.
    sub = tree / "more"
    sub.symlink_to(tmp_path / "outside" / "more")
    with pytest.raises(UnreadableFile, match=r"more/private\.txt: reached through a symlink"):
        read_regular_file(sub / "private.txt")
    assert read_regular_file((tree / "faq.md").resolve()).startswith(b"# FAQ")
