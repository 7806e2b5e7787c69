"""The embedded local answer engine: no key, no network, no cost.

On-device speech recognition (Whisper base, :mod:`kiosk.local.asr`) -> the kiosk's own
``search`` tool over the local index -> an extractive answer (:mod:`kiosk.local.answer`) ->
on-device speech synthesis (:mod:`kiosk.local.tts`), served behind the Realtime protocol
(GA dialect) on loopback (:mod:`kiosk.local.server`), so the kiosk's turn logic is the
same for the cloud and for this engine.

:func:`serve_local_engine` starts it and yields the config pointed at it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from kiosk.config import Config

NOTICE = (
    "no API key configured: answering on this device with the local engine "
    "(speech recognition, knowledge-base search and speech synthesis; no network, 0 tokens)"
)


def point_at_local(cfg: Config, url: str) -> Config:
    """``cfg`` with ``realtime.provider = "local"`` at the engine's loopback ``url``."""
    rt = dataclasses.replace(cfg.realtime, provider="local", endpoint=url)
    return dataclasses.replace(cfg, realtime=rt)


@asynccontextmanager
async def serve_local_engine(cfg: Config, *, on_demand: bool = False) -> AsyncIterator[Config]:
    """Run the local engine on loopback for the duration; yields the config aimed at it.

    ``on_demand`` (the fallback engine): only the port is reserved now; the engine's code
    loads when the first connection arrives (:mod:`kiosk.local.on_demand`).

    Raises:
        SynthesizerUnavailable: eSpeak NG is not installed (one line with the apt command).
    """
    if on_demand:
        from kiosk.local.on_demand import OnDemandLocalServer

        async with OnDemandLocalServer() as reserved:
            yield point_at_local(cfg, reserved.url)
        return
    from kiosk.local.engine import LocalEngine
    from kiosk.local.server import LocalRealtimeServer

    engine = LocalEngine()
    engine.check()
    async with LocalRealtimeServer(engine) as server:
        yield point_at_local(cfg, server.url)
