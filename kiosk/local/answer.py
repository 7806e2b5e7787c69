"""The extractive answer: the sentence(s) of the retrieved passages that answer the question.

Pure functions (no I/O). Input is what the kiosk's ``search`` tool returned (``[chunk_id]:
text`` blocks separated by ``-----`` lines, see :func:`kiosk.rag.tools.format_hits`) and the
recognised question; output is one or two sentences of one passage, in the question's
language when the knowledge base has that language, and the id of the passage they came
from (the citation). Nothing here invents text: apart from the fixed "I don't know" and
"say that again" phrases, every answer is a substring of a passage.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

Language = str  # "en" | "ja"

# A sentence this short (characters) is padded with the next one: "Yes." answers little.
_SHORT_SENTENCE = {"en": 60, "ja": 25}
_MAX_ANSWER_CHARS = {"en": 260, "ja": 120}
_SEPARATOR = re.compile(r"^\s*-----\s*$", re.MULTILINE)
_BLOCK = re.compile(r"^\s*\[([^\]\n]{1,200})\]:\s?(.*)\Z", re.DOTALL)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[A-Z0-9])|(?<=[。！？])")
_EN_WORD = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")
_JA_CHAR = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uff66-\uff9f]")
_EN_STOP = frozenset(
    "a an the is are was were be been am do does did can could would should will shall may "
    "might must i you he she it we they me my your our their its this that these those there "
    "here what which who whom whose where when why how of to in on at by for with from about "
    "as into and or but if so not no yes please excuse sorry hello hi tell know get got "
    "any some much many".split()
)
# Function words and politeness that say nothing about the topic.
_JA_STOP = ("すみません", "ください", "ですか", "ますか", "でしょうか", "ありますか", "教えて",
            "どこ", "何", "いつ", "です", "ます", "は", "が", "を", "に", "の", "で", "か", "と", "も")

# What kind of fact a question asks for, and how a sentence that states it looks.
_CUES = (
    (re.compile(r"\bhow (many|much)\b|何台|何人|何名|何個|いくら|何階"), re.compile(r"\d")),
    (
        re.compile(r"\bhow long\b|何時間|何分"),
        re.compile(r"\d+\s*(hours?|minutes?|時間|分)"),
    ),
    (
        re.compile(r"\bwhen\b|\bwhat time\b|\bhours\b|いつ|何時"),
        re.compile(r"\d{1,2}[:時]|\d{1,2}\s*(am|pm)\b"),
    ),
    (
        re.compile(r"\bwhere\b|どこ|場所"),
        re.compile(r"floor|left|right|next to|behind|opposite|room \w|階|左|右|隣|裏|向かい|室"),
    ),
)
_CUE_BONUS = 0.6
# The search's own ranking counts too (it saw synonyms and embeddings that term overlap misses).
_RANK_BONUS = 0.5

NO_ANSWER = {
    "en": "Sorry, I don't know. The knowledge base has nothing on that.",
    "ja": "申し訳ありません。その情報は見つかりませんでした。",
}
OFFLINE_NOTICE = {  # said first when the device answers for an unreachable cloud
    "en": "Offline mode.",
    "ja": "オフラインモードです。",
}
NOT_HEARD = {
    "en": "Sorry, I didn't catch that. Please say it again.",
    "ja": "すみません、聞き取れませんでした。もう一度お願いします。",
}


@dataclass(frozen=True, slots=True)
class Passage:
    chunk_id: str
    text: str


@dataclass(frozen=True, slots=True)
class Answer:
    text: str
    language: Language
    chunk_id: str = ""  # "" for the fixed phrases (nothing to cite)


def language_of(text: str) -> Language:
    """"ja" when a fair share of the letters are kana or kanji, else "en"."""
    letters = [c for c in text if c.isalnum()]
    if not letters:
        return "en"
    japanese = sum(1 for c in letters if _JA_CHAR.match(c))
    return "ja" if japanese / len(letters) >= 0.3 else "en"


def parse_search_output(output: str) -> list[Passage]:
    """The ``[id]: text`` blocks of a search result, in rank order (errors/no results: [])."""
    passages: list[Passage] = []
    for block in _SEPARATOR.split(output or ""):
        match = _BLOCK.match(block.strip())
        if match and match.group(2).strip():
            passages.append(Passage(match.group(1).strip(), match.group(2).strip()))
    return passages


def sentences(text: str) -> list[str]:
    """Sentences of a passage; markdown headings, bullets and line wraps are undone."""
    lines = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            lines.append("\n")  # a heading or blank line ends the sentence before it
            continue
        lines.append(re.sub(r"^([-*+]|\d+[.)])\s+", "", line))
    joined = ""
    for line in lines:
        if line == "\n":
            joined += "\n"
        elif joined and not joined.endswith("\n") and _joins_without_space(joined[-1], line[0]):
            joined += line
        else:
            joined += (" " if joined and not joined.endswith("\n") else "") + line
    out: list[str] = []
    for para in joined.split("\n"):
        out.extend(s.strip() for s in _SENTENCE_END.split(para) if s and s.strip())
    return out


def _joins_without_space(left: str, right: str) -> bool:
    return bool(_JA_CHAR.match(left) or _JA_CHAR.match(right))


def terms(text: str, language: Language) -> set[str]:
    """What a question or sentence is about: content words (en) or kana/kanji bigrams (ja)."""
    text = unicodedata.normalize("NFKC", text).lower()
    words = _EN_WORD.findall(text)
    found = {_stem(w) for w in words if w not in _EN_STOP}
    # "rest rooms" / "restrooms", "wi fi" / "wifi": adjacent words also count joined.
    found.update(_stem(a + b) for a, b in zip(words, words[1:], strict=False))
    if language == "ja" or _JA_CHAR.search(text):
        for stop in _JA_STOP:
            text = text.replace(stop, " ")
        for run in re.findall(r"[\u3040-\u30ff\u3400-\u9fff\uff66-\uff9f]+", text):
            if len(run) == 1:
                found.add(run)
            found.update(run[i : i + 2] for i in range(len(run) - 1))
    return found


def _stem(word: str) -> str:
    for suffix in ("ing", "es", "s"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def extract_answer(question: str, passages: list[Passage], language: Language) -> Answer:
    """One or two sentences from the best passage, in ``language`` when one is available.

    Scoring: the share of the question's terms a sentence contains (rarer terms across the
    passages weigh more), plus a small bonus for the search rank; a passage in another
    language than the question only wins when no passage is in the question's language.
    """
    if not passages:
        return Answer(NO_ANSWER[language], language)
    same = [p for p in passages if language_of(p.text) == language]
    pool = same or passages
    q_terms = terms(question, language)
    candidates: list[tuple[float, int, int, list[str]]] = []
    doc_freq: dict[str, int] = {}
    split = [(rank, p, sentences(p.text)) for rank, p in enumerate(pool)]
    for _, _, sents in split:
        for s in sents:
            for t in terms(s, language) & q_terms:
                doc_freq[t] = doc_freq.get(t, 0) + 1
    lowered = unicodedata.normalize("NFKC", question).lower()
    wanted = [shape for asks, shape in _CUES if asks.search(lowered)]
    for rank, _, sents in split:
        for i, s in enumerate(sents):
            matched = terms(s, language) & q_terms
            # Terms shared by several sentences count less (they name the topic, not the fact).
            score = sum(1.0 / doc_freq[t] ** 0.25 for t in matched)
            plain = unicodedata.normalize("NFKC", s).lower()
            score += sum(_CUE_BONUS for shape in wanted if shape.search(plain))
            candidates.append((score + _RANK_BONUS / (rank + 1), -rank, i, sents))
    if not candidates:
        return Answer(NO_ANSWER[language], language)
    best = max(candidates, key=lambda c: (c[0], c[1], -c[2]))
    _, neg_rank, index, sents = best
    passage = pool[-neg_rank]
    answer_lang = language_of(passage.text)
    text = sents[index]
    if len(text) < _SHORT_SENTENCE[answer_lang] and index + 1 < len(sents):
        text = _join(text, sents[index + 1], answer_lang)
    limit = _MAX_ANSWER_CHARS[answer_lang]
    if len(text) > limit:
        text = text[:limit].rsplit(" ", 1)[0] if answer_lang == "en" else text[:limit]
    return Answer(text, answer_lang, passage.chunk_id)


def _join(first: str, second: str, language: Language) -> str:
    return first + second if language == "ja" else f"{first} {second}"
