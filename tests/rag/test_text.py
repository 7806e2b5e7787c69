from kiosk.rag.text import (
    conversational,
    mostly_cjk,
    query_terms,
    segment,
    without_kana_mixes,
)


def test_segment_japanese_run_becomes_overlapping_bigrams() -> None:
    assert segment("駐車場") == "駐車 車場"


def test_segment_keeps_latin_words_and_folds_full_width_and_case() -> None:
    assert segment("ＤＥＢＩＡＮの安定版 Wifi") == "debian の安 安定 定版 wifi"


def test_segment_lone_cjk_character_stays_a_unigram() -> None:
    assert segment("B2 階 floor") == "b2 階 floor"


def test_segment_half_width_katakana_is_normalised_to_full_width() -> None:
    assert segment("ﾊﾟｽﾜｰﾄﾞ") == segment("パスワード")


def test_query_terms_drop_stopwords_and_duplicates() -> None:
    assert query_terms("Where is the parking? Where is PARKING") == ["parking"]


def test_query_terms_are_capped() -> None:
    assert len(query_terms(" ".join(f"word{i}" for i in range(500)), max_terms=10)) == 10


def test_query_terms_of_fts_syntax_are_plain_words() -> None:
    assert query_terms('NEAR("a" b*) AND ^c:e') == ["near", "b", "c", "e"]


def test_query_terms_drop_hiragana_only_bigrams_when_others_remain() -> None:
    assert query_terms("駐車場はどこですか") == ["駐車", "車場", "場は"]


def test_query_terms_keep_hiragana_bigrams_when_nothing_else_is_left() -> None:
    assert query_terms("ありがとう") == ["あり", "りが", "がと", "とう"]


def test_kana_mixes_are_dropped_but_never_everything() -> None:
    terms = query_terms("パッケージを更新しないように保留したい")
    assert "留し" in terms and "新し" in terms
    assert without_kana_mixes(terms) == ["パッ", "ッケ", "ケー", "ージ", "更新", "保留"]
    assert without_kana_mixes(["壊れ"]) == ["壊れ"]  # nothing else left: kept
    assert without_kana_mixes(["debian", "sid"]) == ["debian", "sid"]


def test_mostly_cjk_tells_japanese_passages_from_english_ones() -> None:
    assert mostly_cjk("パッケージを保留するには apt-mark hold を使います。")
    assert not mostly_cjk("Japanese (日本語) is one of the supported languages of the installer.")


def test_conversational_tells_a_spoken_japanese_question_from_keywords() -> None:
    assert conversational("家族にも自分用のログインを作ってあげたいんだけど")
    assert conversational("パソコンの電源をちゃんと切るにはどうしたらいいですか")
    assert not conversational("ユーザーアカウント 追加")  # the model's keyword query
    assert not conversational("システム シャットダウン 方法")
    assert not conversational("sidって何？")  # too short to tell: treated as keywords
    assert not conversational("how do I turn the computer off properly, is there a way")
