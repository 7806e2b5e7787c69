import asyncio
import json
import threading

import pytest

from kiosk.core.events import Citation
from kiosk.rag.knowledge import Hit, KnowledgeError
from kiosk.rag.sqlite_index import SqliteIndex
from kiosk.rag.tools import (
    MAX_ARGUMENT_CHARS,
    NO_RESULTS,
    RESULT_SEPARATOR,
    ToolRunner,
    citations_from_middle_tier,
    format_hits,
)


class ListKnowledge:
    """A KnowledgeBase that returns fixed hits (a real-enough double)."""

    def __init__(self, hits: list[Hit]) -> None:
        self.hits = hits
        self.queries: list[tuple[str, int]] = []

    def search(self, query: str, k: int) -> list[Hit]:
        self.queries.append((query, k))
        return self.hits[:k]


class FailingKnowledge:
    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    def search(self, query: str, k: int) -> list[Hit]:
        raise self.exc


class BlockedKnowledge:
    def __init__(self) -> None:
        self.release = threading.Event()

    def search(self, query: str, k: int) -> list[Hit]:
        self.release.wait(10)
        return []


HITS = [
    Hit(f"c{i}", f"Title {i}", f"/docs/{i}.md", f"text number {i} " * 5, 10.0 - i) for i in range(5)
]


def runner(hits: list[Hit] = HITS, max_chars: int = 2000) -> ToolRunner:
    return ToolRunner(ListKnowledge(hits), top_k=5, max_result_chars=max_chars)


def test_schemas_validate_as_ga_and_beta_session_tools() -> None:
    from openai.types.beta.realtime.session_update_event import SessionTool
    from openai.types.realtime import RealtimeFunctionTool

    schemas = ToolRunner.schemas()
    assert [s["name"] for s in schemas] == ["search", "report_grounding"]
    for schema in schemas:
        for model in (RealtimeFunctionTool, SessionTool):
            parsed = model.model_validate(schema)
            assert set(schema) <= set(type(parsed).model_fields), "undeclared key"
        assert schema["parameters"]["additionalProperties"] is False
        json.dumps(schema)


def test_search_output_is_id_colon_text_blocks_separated_by_dashes() -> None:
    result = runner().run("search", json.dumps({"query": "parking"}))
    assert result.ok and result.citations == ()
    blocks = result.output.split(RESULT_SEPARATOR)
    assert len(blocks) == 5
    assert blocks[0] == f"[c0]: {HITS[0].text}"


def test_search_output_respects_the_character_budget() -> None:
    r = runner(max_chars=200)
    result = r.run("search", '{"query": "x"}')
    assert len(result.output) <= 200
    assert result.output.count("[c") == 2
    assert [c.chunk_id for c in r.last_search_citations] == ["c0", "c1"]


def test_first_hit_longer_than_the_budget_is_cut_not_dropped() -> None:
    long_hit = Hit("big", "Big", "/big.md", "y" * 5000, 1.0)
    text, shown = format_hits([long_hit], 300)
    assert len(text) <= 300 and text.startswith("[big]: yyy") and text.endswith("…")
    assert shown == [long_hit]


def test_search_with_no_hits_says_so() -> None:
    result = runner(hits=[]).run("search", '{"query": "unicorns"}')
    assert result.ok and result.output == NO_RESULTS


def test_report_grounding_maps_seen_ids_to_citations() -> None:
    r = runner()
    r.run("search", '{"query": "parking"}')
    result = r.run("report_grounding", json.dumps({"sources": ["c1", "[c0]", "c1"]}))
    assert result.ok
    assert result.citations == (
        Citation("c1", "Title 1", "/docs/1.md"),
        Citation("c0", "Title 0", "/docs/0.md"),
    )


def test_report_grounding_with_only_unknown_ids_is_an_error() -> None:
    r = runner()
    r.run("search", '{"query": "parking"}')
    result = r.run("report_grounding", '{"sources": ["made_up_1", "zz"]}')
    assert not result.ok and "unknown source ids: made_up_1, zz" in result.output
    assert result.citations == ()


def test_report_grounding_ignores_unknown_ids_next_to_known_ones() -> None:
    r = runner()
    r.run("search", '{"query": "parking"}')
    result = r.run("report_grounding", '{"sources": ["c2", "bogus"]}')
    assert result.ok and [c.chunk_id for c in result.citations] == ["c2"]
    assert "bogus" in result.output


def test_report_grounding_before_any_search_rejects_every_id() -> None:
    assert not runner().run("report_grounding", '{"sources": ["c0"]}').ok


@pytest.mark.parametrize(
    ("name", "arguments", "reason"),
    [
        ("search", "{not json", "not valid JSON"),
        ("search", "[1, 2]", "must be a JSON object"),
        ("search", '"just a string"', "must be a JSON object"),
        ("search", '{"query": 42}', "'query' must be a string"),
        ("search", '{"query": null}', "'query' must be a string"),
        ("search", '{"q": "parking"}', "'query' must be a string"),
        ("search", '{"query": "   "}', "'query' is empty"),
        ("search", json.dumps({"query": "x" * 2000}), "'query' too long"),
        ("search", "x" * (MAX_ARGUMENT_CHARS + 1), "arguments too long"),
        ("search", "[" * 100_000, "arguments too long"),
        ("search", "[" * 5000 + "]" * 5000, "arguments too long"),
        ("report_grounding", '{"sources": "c0"}', "must be a list"),
        ("report_grounding", '{"sources": [1, 2]}', "must be a list"),
        ("report_grounding", json.dumps({"sources": ["c"] * 50}), "too many sources"),
        ("report_grounding", json.dumps({"sources": ["x" * 500]}), "too long"),
        ("delete_everything", "{}", "unknown tool"),
    ],
)
def test_bad_tool_input_gives_a_short_error_output(name: str, arguments: str, reason: str) -> None:
    result = runner().run(name, arguments)
    assert not result.ok
    assert reason in result.error
    assert result.output.startswith("Error: ") and len(result.output) < 300
    assert result.citations == ()


def test_deeply_nested_json_within_the_size_limit_is_handled() -> None:
    result = runner().run("search", "[" * 4000 + "]" * 4000)
    assert not result.ok


def test_backend_failure_becomes_an_error_output() -> None:
    r = ToolRunner(FailingKnowledge(KnowledgeError("disk gone")), top_k=3, max_result_chars=500)
    result = r.run("search", '{"query": "parking"}')
    assert not result.ok and "unavailable" in result.output


def test_backend_bug_becomes_an_error_output() -> None:
    r = ToolRunner(FailingKnowledge(ZeroDivisionError()), top_k=3, max_result_chars=500)
    assert not r.run("search", '{"query": "parking"}').ok


async def test_run_async_times_out_with_an_error_result() -> None:
    slow = BlockedKnowledge()
    r = ToolRunner(slow, top_k=3, max_result_chars=500)
    try:
        result = await asyncio.wait_for(r.run_async("search", '{"query": "x"}', timeout_s=0.05), 5)
        assert not result.ok and "timed out" in result.output
    finally:
        slow.release.set()


async def test_run_async_returns_the_result_off_the_loop(index: SqliteIndex) -> None:
    r = ToolRunner(index, top_k=3, max_result_chars=1000)
    result = await asyncio.wait_for(r.run_async("search", '{"query": "駐車場"}', timeout_s=5), 10)
    assert result.ok and "地下二階" in result.output
    grounding = r.run(
        "report_grounding", json.dumps({"sources": [r.last_search_citations[0].chunk_id]})
    )
    assert grounding.citations[0].source.endswith("よくある質問.txt")


def test_middle_tier_report_grounding_result_becomes_citations() -> None:
    payload = json.dumps(
        {
            "sources": [
                {"chunk_id": "abc_1", "title": "Parking", "chunk": "..."},
                {"chunk_id": "abc_2", "title": "Hours"},
            ]
        }
    )
    assert citations_from_middle_tier("report_grounding", payload) == (
        Citation("abc_1", "Parking"),
        Citation("abc_2", "Hours"),
    )


@pytest.mark.parametrize(
    ("tool_name", "tool_result"),
    [
        ("search", '{"sources": [{"chunk_id": "a"}]}'),
        ("report_grounding", "not json"),
        ("report_grounding", "[" * 50_000),
        ("report_grounding", '{"sources": 5}'),
        ("report_grounding", '{"sources": [{"title": "no id"}, 7, null]}'),
        ("report_grounding", "null"),
    ],
)
def test_middle_tier_garbage_yields_no_citations(tool_name: str, tool_result: str) -> None:
    assert citations_from_middle_tier(tool_name, tool_result) == ()


def test_middle_tier_plain_id_list_is_accepted() -> None:
    assert citations_from_middle_tier("report_grounding", '{"sources": ["a_1", "a_1", "b_2"]}') == (
        Citation("a_1"),
        Citation("b_2"),
    )
