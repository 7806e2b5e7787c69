import os
from pathlib import Path

from kiosk.rag.ingest import Progress, ingest_paths, rebuild
from kiosk.rag.sqlite_index import SqliteIndex


def test_first_ingest_adds_every_supported_file(tmp_path: Path, corpus: Path) -> None:
    (corpus / "notes.docx").write_bytes(b"PK\x03\x04")  # unsupported types are not walked
    seen: list[Progress] = []
    with SqliteIndex(tmp_path / "i.sqlite") as ix:
        report = ingest_paths(ix, [corpus], progress=seen.append)
        assert len(report.added) == 3
        assert report.chunks_written == ix.stats().chunks > 0
    assert [p.done for p in seen] == [1, 2, 3]
    assert all(p.total == 3 and p.outcome == "added" for p in seen)


def test_re_adding_unchanged_files_is_a_no_op(tmp_path: Path, corpus: Path) -> None:
    with SqliteIndex(tmp_path / "i.sqlite") as ix:
        ingest_paths(ix, [corpus])
        before = {d.source: d.added_at for d in ix.documents()}
        ids_before = [h.chunk_id for h in ix.iter_chunks()]
        report = ingest_paths(ix, [corpus])
        assert report.added == [] and report.updated == [] and report.chunks_written == 0
        assert len(report.unchanged) == 3
        assert {d.source: d.added_at for d in ix.documents()} == before
        assert [h.chunk_id for h in ix.iter_chunks()] == ids_before


def test_changed_file_is_updated_and_old_text_is_gone(tmp_path: Path, corpus: Path) -> None:
    with SqliteIndex(tmp_path / "i.sqlite") as ix:
        ingest_paths(ix, [corpus])
        faq = corpus / "visitor-faq.md"
        faq.write_text(
            "# Visitor FAQ\n\n## Parking\nParking moved to the north lot.\n", encoding="utf-8"
        )
        report = ingest_paths(ix, [corpus])
        assert report.updated == [str(faq.resolve())]
        assert len(report.unchanged) == 2
        assert "north lot" in ix.search("where is parking", 1)[0].text
        assert not any("basement garage" in h.text for h in ix.search("basement garage", 5))


def test_force_re_ingests_unchanged_files(tmp_path: Path, corpus: Path) -> None:
    with SqliteIndex(tmp_path / "i.sqlite") as ix:
        ingest_paths(ix, [corpus])
        assert len(ingest_paths(ix, [corpus], force=True).updated) == 3


def test_bad_files_warn_by_name_and_the_rest_is_ingested(tmp_path: Path, corpus: Path) -> None:
    (corpus / "empty.md").write_text("", encoding="utf-8")
    (corpus / "blank.txt").write_text("   \n\n  ", encoding="utf-8")
    (corpus / "image.txt").write_bytes(b"\x89PNG\x00\x00\x00\rIHDR")
    (corpus / "latin1.txt").write_bytes("caf\xe9 \x81\x82\xfe".encode("latin-1"))
    (corpus / "only-nav.html").write_text("<nav>Home</nav><script>x()</script>", encoding="utf-8")
    os.symlink(tmp_path / "nowhere.md", corpus / "dangling.md")
    with SqliteIndex(tmp_path / "i.sqlite") as ix:
        report = ingest_paths(ix, [corpus, tmp_path / "missing-folder"])
        assert len(report.added) == 3
        assert ix.search("parking", 1)
    text = "\n".join(report.warnings)
    for name in (
        "empty.md",
        "blank.txt",
        "image.txt",
        "latin1.txt",
        "only-nav.html",
        "missing-folder",
    ):
        assert name in text, name
    assert all("\n" not in w for w in report.warnings)


def test_rebuild_forgets_deleted_files_and_keeps_the_rest(tmp_path: Path, corpus: Path) -> None:
    with SqliteIndex(tmp_path / "i.sqlite") as ix:
        ingest_paths(ix, [corpus])
        (corpus / "cafeteria.html").unlink()
        report = rebuild(ix)
        assert len(report.updated) == 2
        assert any("cafeteria.html: gone from disk" in w for w in report.warnings)
        assert ix.stats().documents == 2
        assert ix.search("駐車場", 1)
