"""Fixtures for every test directory."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from tests.integration.pulse import pulse_lock


@pytest.fixture(autouse=True)
def _one_pulseaudio_test_at_a_time(request: pytest.FixtureRequest) -> Iterator[None]:
    """PulseAudio-marked tests hold the machine-wide lock (tests/integration/pulse.py)."""
    if request.node.get_closest_marker("pulseaudio") is None:
        yield
        return
    with pulse_lock():
        yield


@pytest.fixture(autouse=True, scope="module")
def _embedding_models_dropped_after_each_module() -> Iterator[None]:
    """An embedding model (or embedding worker process) that a test module loaded is dropped
    when the module ends. Left alone, each waits out its 300 s idle timer and then drops
    itself inside some later test: a full gc and a heap trim in the suite's ~2 GB process,
    stalling real-time tests, and ~30 such watchers were alive by tests/reliability."""
    before = set(threading.enumerate())
    yield
    for thread in set(threading.enumerate()) - before:
        target = getattr(thread, "_target", None)  # alive threads still hold it
        owner = getattr(target, "__self__", None)
        name = getattr(target, "__name__", "")
        if name == "_unload_when_idle":  # kiosk.rag.multilingual.MultilingualEmbedder
            owner.unload()
        elif name == "_end_when_idle":  # kiosk.rag.embed_worker.WorkerEmbedder
            owner.close()
