"""Sentence embeddings for the optional hybrid ranking of the local index.

Owns the embedding model seam (:class:`Embedder`) and its one adapter,
:class:`WordLlamaEmbedder`: WordLlama's ``l2_supercat`` static token embeddings
(256 dims, 16 MB of float16), whose weights and tokenizer ship inside the ``wordllama``
wheel, so nothing is downloaded at run time. A query is a tokenizer call and a mean of
token rows: well under a millisecond on a Pi-class CPU.

Measured on the Debian FAQ bench (``bench/bench_rag.py``): fused with BM25 it lifts
English recall@5 from 0.86 to 0.95, but on its own it is poor for Japanese (recall@5
0.70 vs BM25's 0.91), so :mod:`kiosk.rag.sqlite_index` uses it for non-CJK queries only.

Optional: without ``pip install wordllama`` :func:`load_embedder` returns None and the
index is BM25 only.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import json
import logging
import struct
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from kiosk.service.memory import trim_heap

log = logging.getLogger(__name__)

Vectors = npt.NDArray[np.float32]


class EmbedderUnavailable(RuntimeError):
    """The model could not embed this query (an embedding worker died, hung or is still
    starting; already logged): search without vectors."""


class Embedder(Protocol):
    """Turns texts into L2-normalised float32 rows of ``dim`` columns."""

    name: str  # recorded in the index: vectors from another model are not comparable
    dim: int

    def embed(self, texts: list[str]) -> Vectors: ...


class WordLlamaEmbedder:
    """WordLlama ``l2_supercat`` (256-d) from the files bundled in the wheel, loaded lean.

    The same vectors as ``wordllama.WordLlama.load(...).embed(texts, norm=True)`` (a test
    compares them), without importing wordllama (it pulls in requests and safetensors) or
    copying its token table to float32 (32 MB): the float16 table is memory-mapped, so a
    query pages in only the rows of its tokens, and the tokenizer is read at the first
    :meth:`embed`. An idle kiosk pays nothing; measured in bench/bench_footprint.py.
    """

    name = "wordllama-l2_supercat-256"
    dim = 256

    def __init__(self, package_dir: Path | None = None) -> None:
        if package_dir is None:
            spec = importlib.util.find_spec("wordllama")
            if spec is None or spec.origin is None:
                raise ImportError("wordllama is not installed")
            package_dir = Path(spec.origin).parent
        # wordllama 0.4 ships these two files; nothing is downloaded.
        self._weights_path = package_dir / "weights" / f"l2_supercat_{self.dim}.safetensors"
        self._tokenizer_path = package_dir / "tokenizers" / "l2_supercat_tokenizer_config.json"
        for path in (self._weights_path, self._tokenizer_path):
            if not path.is_file():
                raise FileNotFoundError(f"wordllama file missing: {path}")
        self._table: npt.NDArray[np.float16] | None = None
        self._tokenizer: Any = None
        self._load_lock = threading.Lock()

    def _load(self) -> tuple[npt.NDArray[np.float16], Any]:
        with self._load_lock:
            if self._table is None:
                from tokenizers import Tokenizer  # wordllama's own dependency

                tokenizer = Tokenizer.from_file(str(self._tokenizer_path))
                tokenizer.no_padding()
                tokenizer.no_truncation()
                self._table = _map_safetensor(self._weights_path, "embedding.weight", self.dim)
                self._tokenizer = tokenizer
        return self._table, self._tokenizer

    def embed(self, texts: list[str]) -> Vectors:
        table, tokenizer = self._load()
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        encodings = tokenizer.encode_batch(texts, add_special_tokens=False)
        for row, encoding in enumerate(encodings):
            ids = np.clip(np.asarray(encoding.ids, dtype=np.int64), 0, table.shape[0] - 1)
            if not len(ids):
                continue
            # Step for step as wordllama (same float32 rounding): mean of the token rows,
            # then L2-normalised.
            vectors = table[ids].astype(np.float32)[np.newaxis]
            pooled = np.sum(vectors, axis=1, dtype=np.float32) / np.float32(len(ids))
            norm = np.linalg.norm(pooled, axis=1, keepdims=True)
            out[row] = (pooled / norm)[0] if norm[0, 0] > 0 else pooled[0]
        return out


def _map_safetensor(path: Path, key: str, dim: int) -> npt.NDArray[np.float16]:
    """One float16 2-D tensor of a .safetensors file, memory-mapped read-only.

    The format: an 8-byte little-endian header length, a JSON header naming each tensor's
    dtype, shape and byte range, then the data.
    """
    with path.open("rb") as f:
        (header_len,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(header_len))
    info = header.get(key)
    if not info or info.get("dtype") != "F16" or len(info.get("shape", [])) != 2:
        raise ValueError(f"{path.name}: no float16 matrix {key!r}")
    rows, cols = info["shape"]
    start, end = info["data_offsets"]
    if cols != dim or end - start != rows * cols * 2:
        raise ValueError(f"{path.name}: {key} is {rows}x{cols}, expected {dim} columns")
    return np.memmap(path, dtype=np.float16, mode="r", offset=8 + header_len + start,
                     shape=(rows, cols))  # fmt: skip


def prepare_embedder(embedder: object) -> None:
    """Start the embedder's worker process now, if it has one (a visitor started speaking).
    Never raises: a failure is logged where it happened, and the search tries again."""
    start = getattr(embedder, "prepare", None)
    if start is not None:
        with contextlib.suppress(EmbedderUnavailable):
            start()


def close_embedder(embedder: object) -> None:
    """End the embedder's worker process, if it has one."""
    close = getattr(embedder, "close", None)
    if close is not None:
        close()


def trim_heap_after_unload(release: Callable[[], None]) -> None:
    """Run ``release`` (which frees a model) so that glibc gives the memory back.

    Unless the thresholds were already pinned (the daemon pins them after READY,
    :mod:`kiosk.service.memory`), glibc has raised its trim threshold by the time the model
    is dropped, and a thread arena's free top is only returned above it: the model's
    ~27 MB tokenizer, loaded on the search thread, stayed resident after the drop (ad hoc,
    2,765-chunk index, 10 searches on a tool thread, then the drop: RSS anon 21.5 idle ->
    37.8 / 45.2 MB; 32.6 freed this way). So ``release`` frees with the trim threshold at
    128 KB, and the thresholds are then pinned as the daemon pins them.
    """
    from kiosk.service.memory import M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES, pin_malloc_thresholds

    try:
        libc: Any = ctypes.CDLL("libc.so.6")
        libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
    except (OSError, AttributeError):
        libc = None
    try:
        release()
        trim_heap()
    finally:
        if libc is not None:
            pin_malloc_thresholds(libc)


# OpenBLAS's thread-count setter as the libraries numpy loads name it (numpy's wheels:
# libscipy_openblas64_ with scipy_openblas_set_num_threads64_; Debian: libopenblas), the
# affixes threadpoolctl tries.
OPENBLAS_FILE_PREFIXES = ("libopenblas", "libscipy_openblas", "openblas")
OPENBLAS_SETTERS = tuple(
    f"{prefix}openblas_set_num_threads{suffix}"
    for prefix in ("", "scipy_")
    for suffix in ("", "64_", "_64")
)


def one_blas_thread() -> None:
    """Keep OpenBLAS to one thread for the whole process.

    A query's products are tiny: waking a BLAS thread pool for them on a busy 2-core
    machine took query p95 from 7 ms to 230 ms (``bench/bench_rag.py``). The daemon
    does no other BLAS work; ``kiosk index add`` embeds a little slower.

    OpenBLAS's own setter when numpy's OpenBLAS is found, else threadpoolctl (MKL, BLIS,
    other systems). threadpoolctl inspects every loaded library (and starts Silero's OpenMP
    runtime doing so): the daemon kept ~0.4 MB more after its first search with it (ad hoc,
    idle5: 51.2 -> 50.8 MB after a conversation).
    """
    setter = _openblas_setter()
    if setter is not None:
        setter(1)
        return
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1, user_api="blas")
    except Exception as exc:  # optional speed-up, never a reason to fail
        log.debug("BLAS threads not limited: %s", exc)


def _openblas_setter() -> Callable[[int], Any] | None:
    """``openblas_set_num_threads`` of the OpenBLAS this process has loaded (from
    /proc/self/maps: Linux), or None."""
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            paths = {fields[5] for line in maps if len(fields := line.split(None, 5)) == 6}
    except OSError:
        return None
    for path in sorted(paths):
        if not Path(path.strip()).name.startswith(OPENBLAS_FILE_PREFIXES):
            continue
        try:
            library = ctypes.CDLL(path.strip())  # already loaded: only a reference more
        except OSError:
            continue
        for name in OPENBLAS_SETTERS:
            setter: Callable[[int], Any] | None = getattr(library, name, None)
            if setter is not None:
                return setter
    return None


def _multilingual() -> Embedder:
    from kiosk.rag.multilingual import MultilingualEmbedder

    return MultilingualEmbedder()


def _multilingual_worker() -> Embedder:
    from kiosk.rag.embed_worker import WorkerEmbedder

    return WorkerEmbedder()


def load_embedder(worker: bool = False) -> Embedder | None:
    """The bundled multilingual model (:mod:`kiosk.rag.multilingual`), else WordLlama
    (English only), or None when neither is installed or both are broken.

    Cheap: the models' files are only opened at the first :meth:`Embedder.embed`. With
    ``worker``, the multilingual model runs in a child process
    (:mod:`kiosk.rag.embed_worker`: the daemon's choice, ``rag.query_embedder``).
    """
    first = _multilingual_worker if worker else _multilingual
    for factory in (first, WordLlamaEmbedder):
        try:
            return factory()
        except ImportError as exc:
            log.debug("embedding model not installed: %s", exc)
        except Exception as exc:  # a broken optional extra must not stop the kiosk
            log.warning("embedding model unavailable (%s)", exc)
    log.debug("no embedding model: local search is BM25 only")
    return None
