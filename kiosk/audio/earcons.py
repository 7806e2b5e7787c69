"""Earcons: short generated cues (PCM16 mono) for wake, end of listening, tools, errors, mute.

Owns the sounds and :func:`earcon_subscriber`, which writes them into the playback buffer
when an ``EarconRequested`` event comes by, with ``item_id=None``
(so they are never counted as answer audio for ``conversation.item.truncate``) and keeps
VAD/barge-in deaf while one plays; see :func:`earcon_ms` for how long that is.

The shapes follow what people know from voice devices: a rising two-note chime when the
device starts listening, the same notes falling when it stops, a soft tick while it looks
something up, a low falling buzz for errors, and a falling/rising glide for mute on/off.
Everything is synthesised with numpy at the requested rate (no files to ship, no
resampling), with 5 ms attack and a smooth release so nothing clicks.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

from kiosk.audio.playback import PlaybackBuffer
from kiosk.core.events import EarconRequested, State, StateChanged, ToolCallStarted

EARCON_NAMES = ("wake", "listening_end", "thinking", "error", "mute_on", "mute_off")

Floats = npt.NDArray[np.float64]

# Equal-tempered note frequencies (Hz): E5 and A5 are a bright fourth that carries over
# lobby noise without sounding like an alarm.
E5, A5, E4, A4 = 659.25, 880.0, 329.63, 440.0


def render_earcon(name: str, rate_hz: int = 24000, volume: float = 0.3) -> bytes:
    """PCM16 little-endian mono samples of earcon ``name``.

    Args:
        name: one of :data:`EARCON_NAMES`.
        rate_hz: the playback rate (24000 to match Realtime output audio).
        volume: peak amplitude as a fraction of full scale, 0..1 (``earcons.volume``).

    Raises:
        ValueError: unknown name, or rate/volume out of range.
    """
    if name not in EARCON_NAMES:
        raise ValueError(f"unknown earcon {name!r} (known: {', '.join(EARCON_NAMES)})")
    if not 8000 <= rate_hz <= 192000:
        raise ValueError(f"rate_hz must be 8000..192000, got {rate_hz}")
    if not 0.0 <= volume <= 1.0:
        raise ValueError(f"volume must be 0..1, got {volume}")
    return _render(name, rate_hz, round(volume, 4))


def earcon_ms(name: str, rate_hz: int = 24000) -> float:
    """Duration of an earcon in milliseconds (how long to keep VAD deaf)."""
    return len(render_earcon(name, rate_hz, 0.0)) / 2 / rate_hz * 1000


@lru_cache(maxsize=64)
def _render(name: str, rate_hz: int, volume: float) -> bytes:
    match name:
        case "wake":
            wave = _concat(_note(E5, 0.07, rate_hz), _note(A5, 0.11, rate_hz))
        case "listening_end":
            wave = _concat(_note(A5, 0.07, rate_hz), _note(E5, 0.11, rate_hz))
        case "thinking":
            # A soft, low tick followed by silence: loop it for a calm ~1.6 Hz "working" pulse.
            wave = np.concatenate([_tick(rate_hz), np.zeros(int(0.57 * rate_hz))])
        case "error":
            wave = _concat(_note(A4, 0.14, rate_hz, buzz=0.35), _note(E4, 0.22, rate_hz, buzz=0.35))
        case "mute_on":
            wave = _glide(A4, E4, 0.22, rate_hz)
        case "mute_off":
            wave = _glide(E4, A4, 0.22, rate_hz)
        case _:  # pragma: no cover - render_earcon checked the name
            raise ValueError(name)
    peak = float(np.max(np.abs(wave))) or 1.0
    pcm = np.round(wave / peak * volume * 32767).astype("<i2")
    return pcm.tobytes()


def _envelope(n: int, rate_hz: int, attack_s: float = 0.005, decay: float = 4.0) -> Floats:
    t = np.arange(n) / rate_hz
    env: Floats = np.exp(-decay * t / max(float(t[-1]), 1e-9))
    attack = max(int(attack_s * rate_hz), 1)
    env[:attack] *= np.linspace(0.0, 1.0, attack)
    release = max(int(0.01 * rate_hz), 1)
    env[-release:] *= np.linspace(1.0, 0.0, release)
    return env


def _note(freq_hz: float, dur_s: float, rate_hz: int, buzz: float = 0.0) -> Floats:
    n = int(dur_s * rate_hz)
    t = np.arange(n) / rate_hz
    # A touch of the octave makes a sine sound like a bell rather than a test tone.
    tone = np.sin(2 * np.pi * freq_hz * t) + 0.25 * np.sin(4 * np.pi * freq_hz * t)
    if buzz:
        tone += buzz * np.sign(np.sin(2 * np.pi * freq_hz * t)) * 0.5
    return tone * _envelope(n, rate_hz, decay=2.5)


def _glide(f0: float, f1: float, dur_s: float, rate_hz: int) -> Floats:
    n = int(dur_s * rate_hz)
    freq = np.geomspace(f0, f1, n)
    phase = 2 * np.pi * np.cumsum(freq) / rate_hz
    return (np.sin(phase) + 0.2 * np.sin(2 * phase)) * _envelope(n, rate_hz, decay=1.5)


def _tick(rate_hz: int) -> Floats:
    n = int(0.03 * rate_hz)
    t = np.arange(n) / rate_hz
    return np.sin(2 * np.pi * 1200.0 * t) * np.exp(-t / 0.006) * 0.6


def _concat(*parts: Floats) -> Floats:
    return np.concatenate(parts)


def earcon_subscriber(
    playback: PlaybackBuffer, volume: float, rate_hz: int
) -> Callable[[Any], None]:
    """Play requested earcons through the speaker's earcon lane (never counted as answer audio).

    Also the "thinking" cue: when a knowledge search starts and the answer has not begun
    (the kiosk is THINKING), a soft tick says "looking it up" instead of dead air; once per
    turn, since the model may search several times.
    """
    cache: dict[str, bytes] = {}
    state = State.IDLE
    ticked_turn = -1

    def play(name: str) -> None:
        if name not in cache:
            cache[name] = render_earcon(name, rate_hz=rate_hz, volume=volume)
        playback.write(cache[name], None)

    def on_event(event: Any) -> None:
        nonlocal state, ticked_turn
        if isinstance(event, EarconRequested):
            play(event.name)
        elif isinstance(event, StateChanged):
            state = event.new
        elif isinstance(event, ToolCallStarted):
            if state is State.THINKING and event.turn_id != ticked_turn:
                ticked_turn = event.turn_id
                play("thinking")

    return on_event
