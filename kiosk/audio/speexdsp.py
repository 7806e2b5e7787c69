"""SpeexDSP's acoustic echo canceller (and its residual echo suppressor) through ctypes.

Owns loading ``libspeexdsp.so.1`` (Debian / Raspberry Pi OS package ``libspeexdsp1``,
BSD-3-Clause) and the handful of calls the kiosk needs: ``speex_echo_state_init``,
``speex_echo_cancellation`` and, optionally, the preprocessor's residual echo suppression
(``speex_preprocess_run`` with ``SPEEX_PREPROCESS_SET_ECHO_STATE``; its denoiser, AGC and
VAD stay off: the kiosk's endpointer judges levels itself). No compiled extension: the
library is the distribution's.

Not thread-safe: one :class:`SpeexEcho` per microphone stream, called from one thread.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from typing import Any

from kiosk.errors import ConfigError

LIBRARY = "libspeexdsp.so.1"
APT_PACKAGE = "libspeexdsp1"

# speex/speex_echo.h, speex/speex_preprocess.h
_ECHO_SET_SAMPLING_RATE = 24
_PP_SET_DENOISE = 0
_PP_SET_AGC = 2
_PP_SET_VAD = 4
_PP_SET_DEREVERB = 8
_PP_SET_ECHO_SUPPRESS = 20
_PP_SET_ECHO_SUPPRESS_ACTIVE = 22
_PP_SET_ECHO_STATE = 24
_PP_SET_NOISE_SUPPRESS = 18

_lib: Any = None


def load_library() -> Any:
    """The loaded library (cached).

    Raises:
        ConfigError: naming ``audio.echo_cancel`` and the apt package when it is missing.
    """
    global _lib
    if _lib is not None:
        return _lib
    names = [LIBRARY]
    found = ctypes.util.find_library("speexdsp")
    if found and found not in names:
        names.append(found)
    errors = []
    for name in names:
        try:
            lib = ctypes.CDLL(name)
            break
        except OSError as exc:
            errors.append(str(exc))
    else:
        raise ConfigError(
            "audio.echo_cancel", f'"speex" needs {LIBRARY} (sudo apt install {APT_PACKAGE})'
        )
    vp, i16p = ctypes.c_void_p, ctypes.POINTER(ctypes.c_int16)
    lib.speex_echo_state_init.restype = vp
    lib.speex_echo_state_init.argtypes = [ctypes.c_int, ctypes.c_int]
    lib.speex_echo_state_destroy.argtypes = [vp]
    lib.speex_echo_state_reset.argtypes = [vp]
    lib.speex_echo_cancellation.argtypes = [vp, i16p, i16p, i16p]
    lib.speex_echo_ctl.argtypes = [vp, ctypes.c_int, vp]
    lib.speex_preprocess_state_init.restype = vp
    lib.speex_preprocess_state_init.argtypes = [ctypes.c_int, ctypes.c_int]
    lib.speex_preprocess_state_destroy.argtypes = [vp]
    lib.speex_preprocess_ctl.argtypes = [vp, ctypes.c_int, vp]
    lib.speex_preprocess_run.argtypes = [vp, i16p]
    _lib = lib
    return lib


def available() -> bool:
    try:
        load_library()
    except ConfigError:
        return False
    return True


class SpeexEcho:
    """One echo canceller: ``cancel(mic, ref)`` on frames of ``frame_samples`` int16.

    Args:
        frame_samples: samples per call (20 ms at 16 kHz = 320).
        filter_samples: the echo path it can model (delay + room tail), in samples.
        rate_hz: sample rate of both signals.
        suppress_db: residual echo suppression by the preprocessor (dB, negative, e.g.
            -40); None: the linear canceller only.
    """

    def __init__(
        self,
        frame_samples: int,
        filter_samples: int,
        rate_hz: int,
        *,
        suppress_db: int | None = None,
        suppress_active_db: int | None = None,
        denoise: bool = False,
        noise_suppress_db: int | None = None,
    ) -> None:
        lib = load_library()
        self._lib = lib
        self.frame_samples = frame_samples
        # close() may come from another thread than the frames (a pipeline closed at shutdown
        # while the microphone's last frame is in flight): SpeexDSP on a freed or NULL state
        # crashes the process (seen: segfault in speex_echo_cancellation), so both hold this.
        self._lock = threading.Lock()
        self._echo = lib.speex_echo_state_init(frame_samples, filter_samples)
        if not self._echo:
            raise MemoryError("speex_echo_state_init failed")
        rate = ctypes.c_int(rate_hz)
        lib.speex_echo_ctl(self._echo, _ECHO_SET_SAMPLING_RATE, ctypes.byref(rate))
        self._pp = None
        if suppress_db is not None:
            self._pp = lib.speex_preprocess_state_init(frame_samples, rate_hz)
            off = ctypes.c_int(0)
            self_off = (_PP_SET_AGC, _PP_SET_DEREVERB) + (() if denoise else (_PP_SET_DENOISE,))
            for request in self_off:
                lib.speex_preprocess_ctl(self._pp, request, ctypes.byref(off))
            lib.speex_preprocess_ctl(self._pp, _PP_SET_ECHO_STATE, ctypes.c_void_p(self._echo))
            if noise_suppress_db is not None:
                ns = ctypes.c_int(noise_suppress_db)
                lib.speex_preprocess_ctl(self._pp, _PP_SET_NOISE_SUPPRESS, ctypes.byref(ns))
            level = ctypes.c_int(suppress_db)
            lib.speex_preprocess_ctl(self._pp, _PP_SET_ECHO_SUPPRESS, ctypes.byref(level))
            active = ctypes.c_int(suppress_active_db if suppress_active_db is not None else suppress_db)
            lib.speex_preprocess_ctl(self._pp, _PP_SET_ECHO_SUPPRESS_ACTIVE, ctypes.byref(active))
        frame_type = ctypes.c_int16 * frame_samples
        self._out = frame_type()
        self._bytes = frame_samples * 2
        # The last frame as the linear filter left it, before residual suppression (the
        # suppressor squashes a visitor's first syllable under the echo with the echo).
        self.linear_output = b""

    def cancel(self, mic: bytes, ref: bytes) -> bytes:
        """The microphone frame with the echo of ``ref`` (what the speaker played) removed."""
        if len(mic) != self._bytes or len(ref) != self._bytes:
            raise ValueError(f"frames must be {self._bytes} bytes, got {len(mic)} and {len(ref)}")
        i16p = ctypes.POINTER(ctypes.c_int16)
        rec = ctypes.cast(ctypes.c_char_p(mic), i16p)
        play = ctypes.cast(ctypes.c_char_p(ref), i16p)
        with self._lock:
            if not self._echo:  # closed: a last frame after the pipeline closed passes as it is
                self.linear_output = mic
                return mic
            self._lib.speex_echo_cancellation(self._echo, rec, play, self._out)
            self.linear_output = bytes(self._out)
            if self._pp is None:
                return self.linear_output
            self._lib.speex_preprocess_run(self._pp, self._out)
            return bytes(self._out)

    def reset(self) -> None:
        with self._lock:
            if self._echo:
                self._lib.speex_echo_state_reset(self._echo)

    def close(self) -> None:
        """Free the native state (idempotent; frames after it pass through unchanged)."""
        with self._lock:
            if self._pp is not None:
                self._lib.speex_preprocess_state_destroy(self._pp)
                self._pp = None
            if self._echo:
                self._lib.speex_echo_state_destroy(self._echo)
                self._echo = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass
