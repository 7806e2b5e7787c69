"""The index/search commands through a parser built like kiosk/cli.py builds it."""

import argparse
import json
from pathlib import Path

import pytest

from kiosk.config import load_config
from kiosk.rag import open_knowledge_base
from kiosk.rag.azure_search import AzureSearchIndex
from kiosk.rag.backends import LazyKnowledge
from kiosk.rag.cli import register
from kiosk.rag.knowledge import KnowledgeError
from kiosk.rag.sqlite_index import SqliteIndex
from kiosk.rag.tools import ToolRunner

from .azure_emulator import AzureSearchEmulator


def run(*argv: str) -> int:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--config")
    parser = argparse.ArgumentParser(prog="kiosk")
    sub = parser.add_subparsers(dest="command", required=True)
    register(sub, parent)
    args = parser.parse_args(list(argv))
    code: int = args.func(args)
    return code


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "kiosk.toml"
    path.write_text(
        f'[rag]\nindex_path = "{tmp_path / "state" / "index.sqlite"}"\n', encoding="utf-8"
    )
    return path


def test_add_then_search_json_lists_best_first(
    tmp_path: Path, corpus: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ix = str(tmp_path / "a.sqlite")
    assert run("index", "add", "--index", ix, str(corpus)) == 0
    out, err = capsys.readouterr()
    assert "added 3" in out and "[3/3]" in err
    assert run("search", "--index", ix, "-k", "2", "--json", "駐車場はどこ") == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) <= 2
    assert set(rows[0]) == {"chunk_id", "title", "source", "score", "text"}
    assert "地下二階" in rows[0]["text"]
    assert rows[0]["source"] == str((corpus / "よくある質問.txt").resolve())
    assert [r["score"] for r in rows] == sorted((r["score"] for r in rows), reverse=True)


def test_second_add_of_unchanged_files_reports_unchanged(
    tmp_path: Path, corpus: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ix = str(tmp_path / "a.sqlite")
    run("index", "add", "--index", ix, str(corpus))
    capsys.readouterr()
    assert run("index", "add", "--index", ix, str(corpus)) == 0
    assert "added 0, updated 0, unchanged 3" in capsys.readouterr().out


def test_add_with_a_bad_file_warns_and_exits_1(
    tmp_path: Path, corpus: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (corpus / "broken.txt").write_bytes(b"\x00\x01\x02binary")
    assert run("index", "add", "--index", str(tmp_path / "a.sqlite"), str(corpus)) == 1
    out, err = capsys.readouterr()
    assert "warning:" in err and "broken.txt" in err and "added 3" in out


def test_index_path_comes_from_the_config_file(config: Path, tmp_path: Path, corpus: Path) -> None:
    assert run("index", "add", "--config", str(config), str(corpus / "visitor-faq.md")) == 0
    assert (tmp_path / "state" / "index.sqlite").exists()


def test_list_remove_and_rebuild(
    tmp_path: Path, corpus: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ix = str(tmp_path / "a.sqlite")
    run("index", "add", "--index", ix, str(corpus))
    capsys.readouterr()
    assert run("index", "list", "--index", ix, "--json") == 0
    assert len(json.loads(capsys.readouterr().out)) == 3
    assert run("index", "remove", "--index", ix, str(corpus / "cafeteria.html")) == 0
    assert "removed" in capsys.readouterr().out
    assert run("index", "remove", "--index", ix, str(corpus / "cafeteria.html")) == 1
    assert run("index", "rebuild", "--index", ix) == 0
    assert run("index", "list", "--index", ix) == 0
    assert "2 documents" in capsys.readouterr().out
    assert run("index", "remove", "--index", ix, str(corpus)) == 0  # a folder removes all under it
    with SqliteIndex(ix, create=False) as index:
        assert index.stats().documents == 0


def test_search_without_an_index_says_how_to_make_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("search", "--index", str(tmp_path / "none.sqlite"), "parking") == 1
    assert "kiosk index add" in capsys.readouterr().err


def test_bad_config_prints_one_line_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[rag]\ntop_k = 500\n", encoding="utf-8")
    assert run("search", "--config", str(bad), "parking") == 2
    err = capsys.readouterr().err
    assert "rag.top_k" in err and err.count("\n") == 1


def test_push_uploads_to_the_configured_azure_index(
    tmp_path: Path,
    corpus: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ix = str(tmp_path / "a.sqlite")
    run("index", "add", "--index", ix, str(corpus))
    with AzureSearchEmulator() as emu:
        cfg = tmp_path / "azure.toml"
        cfg.write_text(
            f'[rag]\nazure_endpoint = "{emu.endpoint}"\nazure_index = "kiosk"\n', encoding="utf-8"
        )
        monkeypatch.setenv("AZURE_SEARCH_API_KEY", "test-key")
        assert (
            run(
                "index", "push", "--azure", "--config", str(cfg), "--index", ix, "--batch-size", "3"
            )
            == 0
        )
        with SqliteIndex(ix, create=False) as local:
            assert len(emu.state.documents["kiosk"]) == local.stats().chunks
    assert "pushed" in capsys.readouterr().out


def test_push_mirrors_vectors_and_removals_of_the_local_index(
    tmp_path: Path,
    corpus: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ix = str(tmp_path / "a.sqlite")
    run("index", "add", "--index", ix, str(corpus))
    monkeypatch.setenv("AZURE_SEARCH_API_KEY", "test-key")
    with AzureSearchEmulator() as emu:
        cfg = tmp_path / "azure.toml"
        cfg.write_text(
            f'[rag]\nazure_endpoint = "{emu.endpoint}"\nazure_index = "kiosk"\n'
            'azure_vector_field = "vec"\n',
            encoding="utf-8",
        )
        push = ("index", "push", "--azure", "--config", str(cfg), "--index", ix)
        assert run(*push) == 0
        docs = emu.state.documents["kiosk"]
        model, vectors = SqliteIndex(ix, create=False).stored_vectors()
        assert model and len(vectors) == len(docs)
        assert all(len(d["vec"]) == len(next(iter(vectors.values()))) for d in docs.values())
        assert f"with {model} vectors" in capsys.readouterr().out
        first = sorted(Path(corpus).iterdir())[0]
        assert run("index", "remove", "--index", ix, str(first)) == 0
        assert run(*push) == 0
        with SqliteIndex(ix, create=False) as local:
            assert set(emu.state.documents["kiosk"]) == {h.chunk_id for h in local.iter_chunks()}
    assert "deleted" in capsys.readouterr().out and "deleted 0" not in capsys.readouterr().out


def test_push_without_azure_settings_exits_2(
    tmp_path: Path, corpus: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ix = str(tmp_path / "a.sqlite")
    run("index", "add", "--index", ix, str(corpus))
    empty = tmp_path / "empty.toml"
    empty.write_text("", encoding="utf-8")
    capsys.readouterr()
    assert run("index", "push", "--azure", "--index", ix, "--config", str(empty)) == 2
    assert "rag.azure_endpoint" in capsys.readouterr().err


def test_open_knowledge_base_follows_the_backend_setting(tmp_path: Path) -> None:
    assert open_knowledge_base(load_config('[rag]\nbackend = "none"\n', require_key=False)) is None
    missing = tmp_path / "missing.sqlite"
    kb = open_knowledge_base(load_config(f'[rag]\nindex_path = "{missing}"\n', require_key=False))
    assert isinstance(kb, SqliteIndex) and kb.search("parking", 3) == []
    assert not missing.exists()
    azure = load_config(
        '[rag]\nbackend = "azure"\nazure_index = "i"\n'
        'azure_endpoint = "https://x.search.windows.net"\n',
        {"AZURE_SEARCH_API_KEY": "k"},
        require_key=False,
    )
    kb = open_knowledge_base(azure)
    assert isinstance(kb, LazyKnowledge)  # the SDK is loaded at the first search, not at start
    assert isinstance(kb.backend, AzureSearchIndex)
    kb.close()


def test_unopenable_backends_answer_with_knowledge_errors_instead_of_crashing(
    tmp_path: Path,
) -> None:
    corrupt = tmp_path / "corrupt.sqlite"
    corrupt.write_bytes(b"garbage" * 1000)
    kb = open_knowledge_base(load_config(f'[rag]\nindex_path = "{corrupt}"\n', require_key=False))
    assert kb is not None
    with pytest.raises(KnowledgeError, match="not a usable kiosk index"):
        kb.search("parking", 3)
    no_key = load_config(
        '[rag]\nbackend = "azure"\nazure_index = "i"\n'
        'azure_endpoint = "https://x.search.windows.net"\n',
        {},
        require_key=False,
    )
    tools = ToolRunner(open_knowledge_base(no_key), top_k=3, max_result_chars=500)  # type: ignore[arg-type]
    result = tools.run("search", '{"query": "parking"}')
    assert not result.ok and "unavailable" in result.output


def test_search_that_finds_nothing_exits_1_in_text_and_json_alike(
    tmp_path: Path, corpus: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ix = str(tmp_path / "a.sqlite")
    assert run("index", "add", "--index", ix, str(corpus)) == 0
    capsys.readouterr()
    assert run("search", "--index", ix, "--json", "ぬゑぬゑ") == 1
    assert json.loads(capsys.readouterr().out) == []
    assert run("search", "--index", ix, "ぬゑぬゑ") == 1
    assert "no results" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["   "], ["-k", "0", "parking"], ["-k", "101", "parking"]])
def test_search_usage_errors_exit_2_with_one_line(
    tmp_path: Path, corpus: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    ix = str(tmp_path / "a.sqlite")
    run("index", "add", "--index", ix, str(corpus))
    capsys.readouterr()
    assert run("search", "--index", ix, *argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1 and "search:" in err


def test_lazy_azure_backend_opens_once_on_prepare_or_first_search_and_reports_failure_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    opened: list[int] = []

    def open_failing() -> object:
        opened.append(1)
        raise KnowledgeError("no AZURE_SEARCH_API_KEY")

    kb = LazyKnowledge(open_failing)  # type: ignore[arg-type]
    assert opened == []
    kb.prepare()
    for _ in range(2):
        with pytest.raises(KnowledgeError, match="no AZURE_SEARCH_API_KEY"):
            kb.search("parking", 3)
    assert opened == [1]
    assert caplog.text.count("knowledge base unavailable") == 1
