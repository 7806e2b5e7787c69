"""Providers and models on their way out get one warning line, current ones none."""

from __future__ import annotations

import logging

import pytest

from kiosk.config import load_config
from kiosk.net import endpoints
from kiosk.net.endpoints import deprecation_note, realtime_endpoint

KEYS = {"OPENAI_API_KEY": "sk-test-dep", "AZURE_OPENAI_API_KEY": "az-test-dep"}
AZURE = "[realtime]\nendpoint = 'https://res.openai.azure.com'\ndeployment = 'gpt-realtime'\n"


@pytest.mark.parametrize(
    ("toml", "words"),
    [
        (AZURE.replace("[realtime]\n", "[realtime]\nprovider = 'azure-preview'\n"), "deprecated"),
        ("[realtime]\nmodel = 'gpt-4o-realtime-preview-2024-12-17'\n", "shut down"),
    ],
)
def test_outgoing_protocols_and_models_warn_once(
    toml: str, words: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(endpoints, "_noted", set())
    cfg = load_config(toml, KEYS)
    assert words in deprecation_note(cfg)
    with caplog.at_level(logging.WARNING, logger="kiosk.net.endpoints"):
        realtime_endpoint(cfg)
        realtime_endpoint(cfg)
    assert len([r for r in caplog.records if words in r.getMessage()]) == 1
    assert "test-dep" not in caplog.text


@pytest.mark.parametrize(
    "toml",
    ["", AZURE.replace("[realtime]\n", "[realtime]\nprovider = 'azure'\n"),
     "[realtime]\nmodel = 'gpt-realtime-2.1-mini'\n"],
)
def test_current_providers_and_models_have_no_note(toml: str) -> None:
    assert deprecation_note(load_config(toml, KEYS)) == ""
