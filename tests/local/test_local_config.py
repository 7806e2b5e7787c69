"""realtime.provider = "local", and the local engine as the default when no key is configured."""

from __future__ import annotations

import pytest

from kiosk.config import load_config
from kiosk.errors import ConfigError
from kiosk.local import point_at_local
from kiosk.net.endpoints import realtime_endpoint


def test_local_needs_no_key_and_no_endpoint():
    cfg = load_config('[realtime]\nprovider = "local"\n', {})
    assert cfg.uses_local_engine and not cfg.api_key


@pytest.mark.parametrize(
    ("toml", "env", "local"),
    [
        ("", {}, True),  # nothing configured: answer on the device
        ("", {"OPENAI_API_KEY": "sk-x"}, False),
        # An endpoint was asked for: no silent swap (its missing key is an error instead).
        ('[realtime]\nprovider = "azure"\nendpoint = "https://r.openai.azure.com"\ndeployment = "d"\n', {}, False),
        ('[realtime]\nprovider = "voicerag"\nendpoint = "wss://tier.example/realtime"\n', {}, False),
    ],
)
def test_the_local_engine_answers_when_no_key_is_configured(toml, env, local):
    assert load_config(toml, env, require_key=False).uses_local_engine is local


def test_the_endpoint_is_the_running_engine_on_loopback_in_the_ga_dialect():
    cfg = point_at_local(load_config("", {}, require_key=False), "ws://127.0.0.1:4567")
    endpoint = realtime_endpoint(cfg)
    assert endpoint.url == "ws://127.0.0.1:4567/v1/realtime?model=kiosk-local"
    assert endpoint.dialect == "ga" and endpoint.headers == {} and not endpoint.middle_tier


def test_an_engine_that_is_not_running_is_a_one_line_error():
    cfg = load_config('[realtime]\nprovider = "local"\n', {})
    with pytest.raises(ConfigError, match="realtime.endpoint: the local engine is not running"):
        realtime_endpoint(cfg)


def test_a_local_endpoint_off_loopback_is_refused():
    with pytest.raises(ConfigError, match="only allowed on loopback"):
        load_config('[realtime]\nprovider = "local"\nendpoint = "ws://10.0.0.5:1"\n', {})


def test_the_knowledge_base_headings_become_the_recogniser_prompt(tmp_path):
    from kiosk.core.realtime import RealtimeSession
    from kiosk.net.engine import session_options
    from kiosk.rag import ToolRunner
    from kiosk.rag.ingest import ingest_paths
    from kiosk.rag.sqlite_index import SqliteIndex
    from kiosk.simulate import demo_corpus_dir

    index = SqliteIndex(tmp_path / "i.sqlite")
    ingest_paths(index, [demo_corpus_dir()])
    runner = ToolRunner(index, top_k=5, max_result_chars=2000)
    words = runner.vocabulary().split(", ")
    assert {"Restrooms", "Parking", "お手洗い", "駐車場"} <= set(words)
    options = session_options(load_config('[realtime]\nprovider = "local"\n', {}), runner)
    event = RealtimeSession("ga", options).session_update_event()
    assert event["session"]["audio"]["input"]["transcription"]["prompt"] == runner.vocabulary()
