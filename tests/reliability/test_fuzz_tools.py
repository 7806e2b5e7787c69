"""Hypothesis fuzzing of ToolRunner.run: the model's tool arguments are untrusted input.

Whatever the name and arguments, run() returns a ToolResult (never raises), keeps its
output within the character budget, and only ever cites chunk ids a search returned.
"""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiosk.rag.knowledge import Hit, KnowledgeError
from kiosk.rag.tools import MAX_ARGUMENT_CHARS, REPORT_GROUNDING, SEARCH, ToolResult, ToolRunner

FUZZ = settings(
    deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
MAX_RESULT_CHARS = 300
CORPUS = [
    Hit(f"doc{i}#{i}", f"Title {i}", f"/kb/doc{i}.md", text, float(10 - i))
    for i, text in enumerate(
        [
            "The restrooms are on the ground floor next to the lifts.",
            "駐車場は地下二階にあります。",
            "Opening hours: 9:00-18:00 on weekdays. " * 20,  # longer than the budget alone
            "Wi-Fi: network Lobby-Guest, no password.",
        ]
    )
]


class ListKnowledge:
    """A real-enough backend: substring match over a fixed corpus; some queries fail."""

    def search(self, query: str, k: int) -> list[Hit]:
        if "boom" in query:
            raise KnowledgeError("index unreadable")
        if "bug" in query:
            raise RuntimeError("backend bug")
        words = [w for w in query.lower().split() if w]
        hits = [h for h in CORPUS if any(w in h.text.lower() for w in words)]
        return hits[:k] or (CORPUS[:k] if "all" in words else [])


weird: st.SearchStrategy[object] = st.sampled_from(
    [None, True, 0, -1, 10**400, 1e308, float("nan"), "", [], {}]
)
json_values = st.recursive(
    st.one_of(weird, st.integers(), st.floats(), st.text(max_size=20)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)
queries = st.one_of(
    st.sampled_from(["restrooms", "駐車場", "all", "boom", "bug", "wifi password", " ", "x" * 600]),
    st.text(max_size=40),
    weird,
)
source_ids = st.one_of(
    st.sampled_from([h.chunk_id for h in CORPUS] + ["[doc0#0]", "nope", "x" * 150]),
    st.text(max_size=10),
)
arguments = st.one_of(
    st.fixed_dictionaries({}, optional={"query": queries, "extra": json_values}).map(json.dumps),
    st.fixed_dictionaries(
        {}, optional={"sources": st.one_of(st.lists(source_ids, max_size=25), weird)}
    ).map(json.dumps),
    json_values.map(json.dumps),
    st.text(max_size=60),  # not JSON
    st.sampled_from(
        [
            "",
            "{",
            "[]",
            "null",
            '{"query": "' + "a" * MAX_ARGUMENT_CHARS + '"}',
            "[" * 3000 + "]" * 3000,
        ]
    ),
)
names = st.one_of(
    st.sampled_from([SEARCH, REPORT_GROUNDING, SEARCH, REPORT_GROUNDING, "", "SEARCH", "rm -rf"]),
    st.text(max_size=50),
)


@settings(FUZZ, max_examples=1200)
@given(calls=st.lists(st.tuples(names, arguments), min_size=1, max_size=8))
def test_any_tool_call_sequence_returns_results_within_budget_and_cites_only_seen_ids(
    calls: list[tuple[str, str]],
) -> None:
    runner = ToolRunner(ListKnowledge(), top_k=3, max_result_chars=MAX_RESULT_CHARS)
    seen: set[str] = set()
    for name, args in calls:
        result = runner.run(name, args)
        assert isinstance(result, ToolResult)
        assert isinstance(result.output, str) and result.output
        assert len(result.output) <= MAX_RESULT_CHARS + 200
        if not result.ok:
            assert result.error and result.output.startswith("Error:")
        if name == SEARCH and result.ok:
            seen.update(c.chunk_id for c in runner.last_search_citations)
        assert {c.chunk_id for c in result.citations} <= seen


@settings(FUZZ, max_examples=3000)
@given(name=names, args=arguments)
def test_any_single_tool_call_never_raises(name: str, args: str) -> None:
    runner = ToolRunner(ListKnowledge(), top_k=5, max_result_chars=MAX_RESULT_CHARS)
    result = runner.run(name, args)
    assert isinstance(result, ToolResult)
    assert not result.citations  # nothing was searched before: nothing can be cited


def test_grounding_after_search_cites_the_searched_chunk() -> None:
    runner = ToolRunner(ListKnowledge(), top_k=3, max_result_chars=MAX_RESULT_CHARS)
    assert runner.run(SEARCH, json.dumps({"query": "restrooms"})).ok
    result = runner.run(REPORT_GROUNDING, json.dumps({"sources": ["doc0#0", "made-up"]}))
    assert result.ok and [c.chunk_id for c in result.citations] == ["doc0#0"]
