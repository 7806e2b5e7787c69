"""The offline message: shipped clips load, and the notice plays them (not too often) when
the service cannot be reached — including through the running pipeline on a 401."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from kiosk.audio.playback import PlaybackBuffer
from kiosk.audio.wav import read_wav_mono
from kiosk.core.events import ErrorReported
from kiosk.offline import CLIP_RATE_HZ, OfflineNotice, clip_path, load_offline_message
from kiosk.testing.fake_realtime import FakeRealtimeServer, FakeScript

from .rig import PipelineRig, rig_config


@pytest.mark.parametrize("language", ["en", "ja"])
def test_shipped_clip_is_short_24khz_mono_pcm16_speech(language: str) -> None:
    with wave.open(str(clip_path(language)), "rb") as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (24000, 1, 2)
        seconds = w.getnframes() / w.getframerate()
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    assert 2.0 < seconds < 10.0
    assert np.sqrt(np.mean(pcm.astype(np.float64) ** 2)) > 1000  # audible, not silence


def test_message_without_language_is_english_then_japanese() -> None:
    en, ja, both = load_offline_message("en"), load_offline_message("ja"), load_offline_message("")
    assert both.startswith(en) and both.endswith(ja) and len(both) > len(en) + len(ja)


def test_unreachable_error_plays_message_once_per_interval_and_other_errors_do_not() -> None:
    playback = PlaybackBuffer(CLIP_RATE_HZ)
    now = [0.0]
    notice = OfflineNotice(
        playback, lambda: now[0], message=b"\x01\x00" * 2400, min_interval_s=20.0
    )
    notice(ErrorReported(0.0, "tool failed", "tool_error"))
    assert playback.is_idle
    notice(ErrorReported(0.0, "cannot connect", "upstream_unavailable"))
    assert not playback.is_idle and notice.played == 1
    now[0] = 10.0
    notice(ErrorReported(10.0, "cannot connect", "upstream_unavailable"))
    assert notice.played == 1
    now[0] = 25.0
    notice(ErrorReported(25.0, "daily cap", "budget_exhausted"))
    assert notice.played == 2


def test_missing_clip_is_logged_once_and_stays_silent(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def broken_install(language: str) -> bytes:
        return read_wav_mono(tmp_path / f"offline_{language}.wav", CLIP_RATE_HZ).tobytes()

    playback = PlaybackBuffer(CLIP_RATE_HZ)
    notice = OfflineNotice(playback, lambda: 0.0, min_interval_s=0.0, loader=broken_install)
    notice(ErrorReported(0.0, "x", "upstream_unavailable"))
    notice(ErrorReported(1.0, "x", "upstream_unavailable"))
    assert playback.is_idle and notice.played == 0
    assert sum("offline message unavailable" in r.getMessage() for r in caplog.records) == 1


async def test_refused_handshake_makes_the_kiosk_say_it_cannot_reach_the_service() -> None:
    script = FakeScript(realtime_pacing=False, call_search=False, call_grounding=False)
    async with FakeRealtimeServer("ga", script=script) as server:
        rig = PipelineRig(rig_config(server.url), server)
        notice = OfflineNotice(rig.playback, rig.clock, language="en")
        rig.bus.subscribe(notice)
        try:
            server.fail_handshakes(503)
            summary = await rig.turn()
        finally:
            await rig.aclose()
    assert summary is not None and summary.outcome == "error"
    assert notice.played == 1
