"""Text normalisation and tokenisation shared by indexing and querying.

Why bigrams: Japanese writes words without spaces, so a word tokenizer sees a whole
sentence as one token. Indexing overlapping character bigrams of every CJK run (the
approach of Lucene's CJKBigramFilter) makes two-character words, the most common
length in Japanese (駐車, 料金, 安定), matchable, which FTS5's ``trigram`` tokenizer
cannot do (it needs >= 3 characters per query term). Bigrams are written into the FTS
column as space-separated tokens so one ``unicode61`` + ``porter`` table serves both
languages: Latin words keep English stemming, CJK runs become bigrams. Queries go
through the same function, so both sides always agree. A lone CJK character (a run of
length 1) is kept as a unigram; single-character queries inside longer runs fall back
to a substring scan in :mod:`kiosk.rag.sqlite_index`.

Pure functions, no I/O.
"""

from __future__ import annotations

import re
import unicodedata

# Bumped whenever segment() changes: an index built with another version is rebuilt.
SEGMENTER_VERSION = 1

# Han (incl. ext. A and compatibility), Hiragana, Katakana (incl. the prolonged sound
# mark), Hangul. After NFKC, half-width katakana are already full-width.
_CJK_RUN = re.compile(
    r"[\u3040-\u309f\u30a0-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]+"
)
_WORD = re.compile(r"\w+", re.UNICODE)

# Query-side only: words that carry no meaning in a question. Dropping them keeps
# OR-queries short (and fast); documents keep them so phrases still read naturally.
STOPWORDS = frozenset(
    """
    a an and are as at be by can could do does did for from have has how i if in into is
    it its me my of on or our should so than that the their them then there these they this
    to was we were what when where which who whom why will with would you your about any
    some please tell know want need get between being been one also just exactly really
    out up all don doesn didn isn aren won t s ll ve re d m
    """.split()  # noqa: SIM905 - a word list reads best as text
)
_HIRAGANA_ONLY = re.compile(r"[\u3040-\u309f]+")
_HIRAGANA = re.compile(r"[\u3040-\u309f]")


def normalize(text: str) -> str:
    """NFKC (full-width ASCII -> ASCII, half-width kana -> full-width) and case-fold."""
    return unicodedata.normalize("NFKC", text).casefold()


def _bigrams(run: str) -> list[str]:
    if len(run) == 1:
        return [run]
    return [run[i : i + 2] for i in range(len(run) - 1)]


def segment(text: str) -> str:
    """The string written to (and matched in) the FTS column for ``text``.

    >>> segment("Debianの安定版")
    'debian の安 安定 定版'
    """
    norm = normalize(text)
    out: list[str] = []
    pos = 0
    for m in _CJK_RUN.finditer(norm):
        if m.start() > pos:
            out.append(norm[pos : m.start()])
        out.append(" " + " ".join(_bigrams(m.group())) + " ")
        pos = m.end()
    out.append(norm[pos:])
    return " ".join("".join(out).split())


def query_terms(query: str, max_terms: int = 48) -> list[str]:
    """Distinct search terms of a free-text question, in order, stopwords dropped.

    Terms are what the FTS tokenizer would see (words and CJK bigrams); the caller
    quotes them, so no FTS5 query syntax from the user ever reaches SQLite.

    Bigrams of hiragana alone (です, ます, はど) are the grammar of the question, not
    its topic; they are dropped unless nothing else is left (bench: recall@5 on the
    Japanese FAQ set 0.875 -> 0.911).
    """
    seen: dict[str, None] = {}
    for tok in _WORD.findall(segment(query)):
        tok = tok.strip("_")
        if not tok or tok in STOPWORDS:
            continue
        seen.setdefault(tok, None)
        if len(seen) >= max_terms:
            break
    terms = list(seen)
    topical = [t for t in terms if not _HIRAGANA_ONLY.fullmatch(t)]
    return topical or terms


def without_kana_mixes(terms: list[str]) -> list[str]:
    """``terms`` without bigrams of one hiragana and one other character (の入, 留し).

    They straddle word boundaries or split a verb from its ending, so they match
    unrelated passages. With embeddings carrying the question's meaning, BM25 does
    better on the pure kanji/katakana bigrams alone (tuning set, hybrid recall@5 on
    Japanese questions 0.91 -> 0.95, keyword queries 0.89 -> 0.91); BM25 alone needs
    them (0.86 -> 0.86, MRR 0.70 -> 0.68), so only the hybrid path drops them.
    """
    kept = [
        t
        for t in terms
        if not (len(t) == 2 and _HIRAGANA.search(t) and not _HIRAGANA_ONLY.fullmatch(t))
    ]
    return kept or terms


# A Japanese question said aloud (see conversational): this many CJK characters, this
# share of them hiragana.
CONVERSATIONAL_MIN_CHARS = 10
CONVERSATIONAL_HIRAGANA = 0.3


def conversational(query: str) -> bool:
    """Whether ``query`` is a Japanese sentence as a visitor says it (家族にも自分用の
    ログインを作ってあげたいんだけど), not a list of key terms (ユーザーアカウント 追加).

    Said aloud, a question is mostly grammar written in hiragana around a few everyday
    words; a keyword query (what the model writes) is kanji, katakana and Latin terms.
    Japanese tuning and everyday sets: 135 of 142 questions as said pass (the rest are
    short or mostly terms: 無線ネットワークカードが動きません, Javaは使えますか), 1 of
    their 142 keyword rewrites does (使っている Debian のバージョン 確認); the rankings
    came out the same for every threshold between 8-14 characters and 25-40 % hiragana.
    """
    cjk = sum(len(m) for m in _CJK_RUN.findall(query))
    hiragana = len(_HIRAGANA.findall(query))
    return cjk >= CONVERSATIONAL_MIN_CHARS and hiragana >= CONVERSATIONAL_HIRAGANA * cjk


def is_cjk(text: str) -> bool:
    return bool(_CJK_RUN.search(text))


def mostly_cjk(text: str) -> bool:
    """Whether a passage is written in CJK script (a Japanese page quoting commands
    is; an English page naming one Japanese word is not)."""
    cjk = sum(len(m) for m in _CJK_RUN.findall(text))
    letters = sum(1 for c in text if c.isalpha())
    return cjk >= 20 or (cjk > 0 and cjk >= 0.1 * letters)
