"""The extractive answer: which sentence of the retrieved passages answers the question."""

from __future__ import annotations

import pytest

from kiosk.local.answer import (
    NO_ANSWER,
    Passage,
    extract_answer,
    language_of,
    parse_search_output,
    sentences,
)

SEARCH_OUTPUT = """[park_en]: ## Parking

The visitor car park is behind the building and has 40 spaces, including 4 accessible
spaces. Parking is free for up to 3 hours; register your car at the reception desk.
-----
[park_ja]: 来客用駐車場は建物の裏にあり、40台まで停められます（うち車椅子用4台）。3時間まで無料です。受付で車両を登録してください。
-----
[hours_en]: The building is open Monday to Friday from 8:00 to 19:00 and on Saturday from 9:00 to 13:00.
It is closed on Sundays and public holidays."""


def test_search_output_blocks_come_back_in_rank_order_with_their_ids():
    passages = parse_search_output(SEARCH_OUTPUT)
    assert [p.chunk_id for p in passages] == ["park_en", "park_ja", "hours_en"]
    assert passages[1].text.startswith("来客用駐車場")


@pytest.mark.parametrize("output", ["", "No results.", "Error: the knowledge base is unavailable"])
def test_no_passages_in_an_error_or_empty_result(output):
    assert parse_search_output(output) == []


def test_sentences_undo_headings_and_line_wraps():
    text = parse_search_output(SEARCH_OUTPUT)[0].text
    assert sentences(text) == [
        "The visitor car park is behind the building and has 40 spaces, including 4 accessible spaces.",
        "Parking is free for up to 3 hours; register your car at the reception desk.",
    ]
    assert sentences("お手洗いは1階です。多目的トイレは\n正面玄関の隣です。") == ["お手洗いは1階です。", "多目的トイレは正面玄関の隣です。"]


@pytest.mark.parametrize(
    ("text", "language"),
    [("Where is the restroom?", "en"), ("お手洗いはどこですか", "ja"), ("Wi-Fiのパスワードは？", "ja"), ("", "en")],
)
def test_language_of(text, language):
    assert language_of(text) == language


@pytest.mark.parametrize(
    ("question", "fact", "chunk"),
    [
        ("How many parking spaces are there?", "40 spaces", "park_en"),
        ("How long is parking free?", "3 hours", "park_en"),
        ("What time does the building close on Saturday?", "13:00", "hours_en"),
        ("駐車場は何台まで停められますか", "40台", "park_ja"),
        ("駐車場は何時間無料ですか", "3時間まで無料", "park_ja"),
        # What the recogniser really heard for 駐車場 (a homophone): still the parking passage.
        ("中車場は何台まで止められますか。", "40台", "park_ja"),
    ],
)
def test_the_answer_is_the_sentence_that_states_the_fact_in_the_question_language(question, fact, chunk):
    answer = extract_answer(question, parse_search_output(SEARCH_OUTPUT), language_of(question))
    assert fact in answer.text
    assert answer.chunk_id == chunk
    assert answer.language == language_of(question)
    # Extractive: the answer is the passage's own words, never made up.
    passage = next(p for p in parse_search_output(SEARCH_OUTPUT) if p.chunk_id == chunk)
    assert answer.text.replace(" ", "") in passage.text.replace("\n", "").replace(" ", "")


def test_a_question_in_a_language_the_knowledge_base_lacks_gets_the_other_language():
    passages = [Passage("hours_en", "The building is open from 8:00 to 19:00.")]
    answer = extract_answer("何時に開きますか", passages, "ja")
    assert answer.chunk_id == "hours_en" and "8:00" in answer.text


def test_no_passage_means_i_dont_know_in_the_question_language_with_nothing_to_cite():
    for language in ("en", "ja"):
        answer = extract_answer("anything", [], language)
        assert answer.text == NO_ANSWER[language] and answer.chunk_id == ""
