"""Pure parts of hybrid ranking: a nearest-neighbour matrix and reciprocal-rank fusion.

No I/O: :mod:`kiosk.rag.sqlite_index` loads the vectors and decides when to fuse.
Reciprocal-rank fusion (Cormack et al., 2009) needs no score calibration between BM25
and cosine similarity, which live on unrelated scales; ``k = 60`` is the paper's value.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

RRF_K = 60


class VectorMatrix:
    """Row ids and their L2-normalised vectors, searched by brute-force dot product.

    Brute force is the right tool at kiosk scale: 10k chunks x 256 dims is one 10 MB
    matrix-vector product, about a millisecond, with no index to build or keep in sync.
    """

    def __init__(self, ids: Sequence[int], vectors: npt.NDArray[np.float32]) -> None:
        if len(ids) != vectors.shape[0]:
            raise ValueError("one vector per id")
        self.ids = np.asarray(ids, dtype=np.int64)
        self.vectors = vectors

    def __len__(self) -> int:
        return len(self.ids)

    def top(self, query: npt.NDArray[np.float32], n: int) -> list[int]:
        """Ids of the ``n`` rows most similar to ``query``, best first."""
        if not len(self) or n <= 0:
            return []
        # einsum, not `@`: a matrix-vector product this small is memory-bound, and
        # OpenBLAS waking its thread pool for it added 10-20 ms p95 under load.
        scores = np.einsum("ij,j->i", self.vectors, query)
        n = min(n, len(scores))
        best = np.argpartition(-scores, n - 1)[:n]
        best = best[np.argsort(-scores[best], kind="stable")]
        return [int(i) for i in self.ids[best]]


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[int]], weights: Sequence[float], k: int = RRF_K
) -> list[tuple[int, float]]:
    """Ids ordered by sum of ``weight / (k + rank)`` over the rankings, with that score."""
    scores: dict[int, float] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + weight / (k + rank)
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
