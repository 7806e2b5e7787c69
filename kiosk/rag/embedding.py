"""Sentence embeddings for the optional hybrid ranking of the local index.

Owns the embedding model seam (:class:`Embedder`) and its one adapter,
:class:`WordLlamaEmbedder`: WordLlama's ``l2_supercat`` static token embeddings
(256 dims, 16 MB), whose weights ship inside the ``wordllama`` wheel, so nothing is
downloaded at run time (``disable_download=True`` makes sure). It is numpy only: a
query embeds in well under a millisecond on a Pi-class CPU.

Measured on the Debian FAQ bench (``bench/bench_rag.py``): fused with BM25 it lifts
English recall@5 from 0.86 to 0.95, but on its own it is poor for Japanese (recall@5
0.70 vs BM25's 0.91), so :mod:`kiosk.rag.sqlite_index` uses it for non-CJK queries only.

Optional: without ``pip install wordllama`` :func:`load_embedder` returns None and the
index is BM25 only.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

log = logging.getLogger(__name__)

Vectors = npt.NDArray[np.float32]


class Embedder(Protocol):
    """Turns texts into L2-normalised float32 rows of ``dim`` columns."""

    name: str  # recorded in the index: vectors from another model are not comparable
    dim: int

    def embed(self, texts: list[str]) -> Vectors: ...


class WordLlamaEmbedder:
    """WordLlama ``l2_supercat`` (256-d) from the weights bundled in the wheel."""

    name = "wordllama-l2_supercat-256"
    dim = 256

    def __init__(self) -> None:
        import wordllama  # type: ignore[import-untyped]

        package_dir = Path(wordllama.__file__).parent
        # wordllama 0.4 looks for its bundled tokenizer under "tokenizer/" but ships it
        # in "tokenizers/", the layout of its cache dir: pointing the cache at the
        # package finds both files; downloads stay off.
        self._model: Any = wordllama.WordLlama.load(
            config="l2_supercat", dim=self.dim, cache_dir=package_dir, disable_download=True
        )

    def embed(self, texts: list[str]) -> Vectors:
        vectors = self._model.embed(texts, norm=True)
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), self.dim)


def load_embedder() -> Embedder | None:
    """The bundled WordLlama model, or None when wordllama is not installed or broken."""
    try:
        return WordLlamaEmbedder()
    except ImportError:
        log.debug("wordllama not installed: local search is BM25 only")
    except Exception as exc:  # a broken optional extra must not stop the kiosk
        log.warning("embedding model unavailable (%s): local search is BM25 only", exc)
    return None
