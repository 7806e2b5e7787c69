"""The pipeline's echo front end (kiosk.hearing): a settings reload keeps the canceller that
has adapted to the room, and closing the old pipeline leaves it working."""

from __future__ import annotations

import dataclasses

from kiosk.app import KioskPipeline
from kiosk.audio.playback import PlaybackBuffer
from kiosk.config import load_config
from kiosk.core.bus import EventStream
from kiosk.net.endpoints import realtime_endpoint


def _pipeline(playback: PlaybackBuffer) -> KioskPipeline:
    cfg = load_config('[audio]\necho_cancel = "speex"\n', {}, require_key=False)
    cfg = dataclasses.replace(cfg, audio=dataclasses.replace(cfg.audio, echo_cancelled=False))
    return KioskPipeline(cfg, realtime_endpoint(cfg), EventStream(), playback, lambda f: False, lambda: 0.0)


async def test_a_reload_keeps_the_adapted_canceller_and_closing_the_old_pipeline_spares_it():
    playback = PlaybackBuffer(24000)
    old, new = _pipeline(playback), _pipeline(playback)
    adapted, built = old.echo_canceller, new.echo_canceller
    assert adapted is not None and built is not None
    listeners = len(playback._read_listeners)

    new.hearing.keep_canceller_of(old.hearing)
    assert new.echo_canceller is adapted and old.echo_canceller is None
    assert len(playback._read_listeners) == listeners - 1  # the new settings' own one let go
    await old.aclose()
    # Only the old raw guard's tap left; the kept canceller still hears what the speaker plays.
    assert len(playback._read_listeners) == listeners - 2
    assert new.echo_tap is adapted
    await new.aclose()
    assert playback._read_listeners == []


async def test_without_a_canceller_on_either_side_nothing_is_taken():
    playback = PlaybackBuffer(24000)
    cfg = load_config("", {}, require_key=False)
    old = KioskPipeline(cfg, realtime_endpoint(cfg), EventStream(), playback, lambda f: False, lambda: 0.0)
    new = _pipeline(playback)
    built = new.echo_canceller
    new.hearing.keep_canceller_of(old.hearing)
    assert new.echo_canceller is built
    await old.aclose()
    await new.aclose()
