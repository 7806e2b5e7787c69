"""kiosk.config: every bad setting is one ConfigError naming its key; env overrides and
systemd credentials; secrets never show; the example config/kiosk.toml stays in step.

``load_config`` is pure, so most tests hand it TOML text and an env dict.
"""

from __future__ import annotations

import pytest

from kiosk.config import (
    Config,
    load_config,
)
from kiosk.errors import ConfigError, KioskError
from tests.unit.config_loading import AZURE, KEY, config_error, load


def test_empty_text_gives_all_defaults() -> None:
    assert load("") == Config()


def test_config_error_is_kiosk_error_and_value_error() -> None:
    err = ConfigError("vad.hangover_ms", "too long")
    assert isinstance(err, KioskError) and isinstance(err, ValueError)
    assert (err.key, str(err)) == ("vad.hangover_ms", "config: vad.hangover_ms: too long")


# --- unknown names and wrong shapes --------------------------------------------------------------


def test_unknown_key_names_the_key_and_lists_known_ones() -> None:
    err = config_error("[vad]\nhangover = 500\n")
    assert err.key == "vad.hangover"
    assert "hangover_ms" in err.problem


def test_unknown_section_names_it() -> None:
    assert config_error("[vda]\nhangover_ms = 500\n").key == "vda"


def test_credentials_section_in_toml_is_unknown() -> None:
    # Keys never live in the file; and the refusal must not echo the value.
    err = config_error(f'[credentials]\nopenai_api_key = "{KEY}"\n')
    assert err.key == "credentials"
    assert KEY not in str(err)


def test_section_that_is_not_a_table_names_it() -> None:
    assert config_error('vad = "loud"\n').key == "vad"


def test_invalid_toml_names_the_file() -> None:
    err = config_error("[realtime\nprovider = 'openai'\n")
    assert err.key == "(file)"
    assert "line 1" in err.problem


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ("[realtime]\nvoice = 7\n", "realtime.voice"),  # str
        ("[vad]\nhangover_ms = 700.0\n", "vad.hangover_ms"),  # int given a float
        ('[vad]\nhangover_ms = "700"\n', "vad.hangover_ms"),  # int given a string
        ("[vad]\nhangover_ms = true\n", "vad.hangover_ms"),  # int given a bool
        ('[turns]\nanswer_timeout_s = "12"\n', "turns.answer_timeout_s"),  # float
        ("[turns]\nanswer_timeout_s = false\n", "turns.answer_timeout_s"),  # float given a bool
        ('[audio]\necho_cancelled = "yes"\n', "audio.echo_cancelled"),  # bool
        ("[audio]\necho_cancelled = 1\n", "audio.echo_cancelled"),  # bool given an int
        ('[realtime]\nprovider = "anthropic"\n', "realtime.provider"),  # Literal of str
        ("[audio]\nframe_ms = 25\n", "audio.frame_ms"),  # Literal of int
        ('[audio]\nframe_ms = "20"\n', "audio.frame_ms"),  # Literal of int given a str
        ("[audio]\nframe_ms = 20.0\n", "audio.frame_ms"),  # Literal of int given a float
        ('[gpio]\nrgb_pins = "5,6,13"\n', "gpio.rgb_pins"),  # list
        ('[gpio]\nled = "rgb"\nrgb_pins = [5, "six", 13]\n', "gpio.rgb_pins[1]"),  # list item
        ("[gpio]\nstate_pins = 21\n", "gpio.state_pins"),  # dict
        ('[gpio.state_pins]\nerror = "21"\n', "gpio.state_pins.error"),  # dict value
    ],
)
def test_wrong_type_names_the_key(toml: str, key: str) -> None:
    err = config_error(toml)
    assert err.key == key
    assert "must be" in err.problem


def test_device_index_written_as_number_is_accepted() -> None:
    assert load("[audio]\ninput_device = 2\n").audio.input_device == "2"


# --- ranges --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ("[vad]\naggressiveness = 7\n", "vad.aggressiveness"),
        ("[vad]\nmin_speech_ms = 0\n", "vad.min_speech_ms"),
        ("[vad]\nhangover_ms = 50\n", "vad.hangover_ms"),
        ("[vad]\npreroll_ms = -1\n", "vad.preroll_ms"),
        ("[vad]\nmax_utterance_s = 0.5\n", "vad.max_utterance_s"),
        ("[vad]\nmin_level_dbfs = 3.0\n", "vad.min_level_dbfs"),
        ("[vad]\nbarge_in_min_speech_ms = -100\n", "vad.barge_in_min_speech_ms"),
        ("[vad]\nbarge_in_min_level_dbfs = 10.0\n", "vad.barge_in_min_level_dbfs"),
        ("[realtime]\ntemperature = 2.0\n", "realtime.temperature"),
        ("[realtime]\nmax_output_tokens = -1\n", "realtime.max_output_tokens"),
        ("[realtime]\nconnect_timeout_s = 0\n", "realtime.connect_timeout_s"),
        ("[audio]\noutput_volume = nan\n", "audio.output_volume"),
        ("[audio]\ncapture_rate_hz = 12345\n", "audio.capture_rate_hz"),
        ("[audio]\nplayback_rate_hz = -5\n", "audio.playback_rate_hz"),
        ("[turns]\nanswer_timeout_s = 0\n", "turns.answer_timeout_s"),
        ("[turns]\nerror_hold_s = inf\n", "turns.error_hold_s"),
        ("[connection]\nmax_new_per_minute = 0\n", "connection.max_new_per_minute"),
        ("[connection]\nbackoff_initial_s = -1.0\n", "connection.backoff_initial_s"),
        ("[connection]\nbackoff_max_s = 0.5\n", "connection.backoff_max_s"),
        ("[connection]\nsession_max_s = inf\n", "connection.session_max_s"),
        ("[connection]\nping_interval_s = 0\n", "connection.ping_interval_s"),
        ("[connection]\nmax_quick_failures = 0\n", "connection.max_quick_failures"),
        ("[cost]\nprice_audio_in = -1.0\n", "cost.price_audio_in"),
        ("[cost]\ndaily_token_cap = -5\n", "cost.daily_token_cap"),
        ("[rag]\ntop_k = 0\n", "rag.top_k"),
        ("[rag]\nmax_result_chars = 10\n", "rag.max_result_chars"),
        ("[rag]\ntool_timeout_s = -1.0\n", "rag.tool_timeout_s"),
        ("[rag]\nrelevance_floor = 1.5\n", "rag.relevance_floor"),
        ('[rag]\nazure_query_vectors = "mine"\n', "rag.azure_query_vectors"),
        ("[gpio]\nled_brightness = 1.5\n", "gpio.led_brightness"),
        ("[gpio]\nled_pin = 40\n", "gpio.led_pin"),
        ("[gpio]\nbutton_pin = 12\n", "gpio"),  # the LED's pin, used twice
        ("[gpio]\nhold_s = 4.0\n", "gpio.hold_s"),
        ('[gpio]\nled = "rgb"\nrgb_pins = [5, 6]\n', "gpio.rgb_pins"),
        ("[wake]\nwakeword_threshold = 1.0\n", "wake.wakeword_threshold"),
        ('[wake]\nwakeword_model = "hey_kiosk"\n', "wake.wakeword_model"),
        ("[wake]\nrefractory_s = 61.0\n", "wake.refractory_s"),
        ('[gpio]\npin_factory = "wiringpi"\n', "gpio.pin_factory"),
        ("[gpio]\ndebounce_ms = 600\n", "gpio.debounce_ms"),
        ("[gpio.state_pins]\nasleep = 21\n", "gpio.state_pins.asleep"),
        ("[earcons]\nvolume = 2.0\n", "earcons.volume"),
    ],
)
def test_out_of_range_names_the_key(toml: str, key: str) -> None:
    assert config_error(toml).key == key


def test_rag_azure_backend_needs_endpoint_and_index() -> None:
    assert config_error('[rag]\nbackend = "azure"\n').key == "rag.azure_endpoint"
    toml = '[rag]\nbackend = "azure"\nazure_endpoint = "https://s.search.windows.net"\n'
    assert config_error(toml).key == "rag.azure_index"


# --- providers, keys and endpoints ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ("", "credentials.openai_api_key"),
        (AZURE, "credentials.azure_openai_api_key"),
        (AZURE.replace('"azure"', '"azure-preview"'), "credentials.azure_openai_api_key"),
    ],
    ids=["openai", "azure", "azure-preview"],
)
def test_missing_api_key_names_the_credential(toml: str, key: str) -> None:
    err = config_error(toml, require_key=True)
    assert err.key == key
    assert key.split(".")[1].upper() in err.problem  # says which variable to set


def test_keys_of_another_provider_do_not_count() -> None:
    assert (
        config_error(AZURE, {"OPENAI_API_KEY": KEY}, require_key=True).key
        == "credentials.azure_openai_api_key"
    )


def test_provider_key_from_env_is_used() -> None:
    assert load("", {"OPENAI_API_KEY": KEY}, require_key=True).api_key.reveal() == KEY
    cfg = load(AZURE, {"AZURE_OPENAI_API_KEY": KEY}, require_key=True)
    assert cfg.api_key.reveal() == KEY


def test_voicerag_needs_no_key() -> None:
    cfg = load(
        '[realtime]\nprovider = "voicerag"\nendpoint = "wss://rag.example.com/realtime"\n',
        require_key=True,
    )
    assert not cfg.api_key


@pytest.mark.parametrize("provider", ["azure", "azure-preview", "voicerag"])
def test_missing_endpoint_names_it(provider: str) -> None:
    err = config_error(f'[realtime]\nprovider = "{provider}"\ndeployment = "rt"\n')
    assert err.key == "realtime.endpoint"


def test_azure_without_deployment_names_it() -> None:
    toml = '[realtime]\nprovider = "azure"\nendpoint = "https://res.openai.azure.com"\n'
    assert config_error(toml).key == "realtime.deployment"


@pytest.mark.parametrize(
    "url",
    [
        "ws://rag.example.com/realtime",
        "ws://10.0.0.5:8765/realtime",
        "ws://localhost.evil.com/realtime",
        "ws://0.0.0.0/realtime",
    ],
)
def test_unencrypted_ws_to_non_loopback_host_is_refused(url: str) -> None:
    err = config_error(f'[realtime]\nprovider = "voicerag"\nendpoint = "{url}"\n')
    assert err.key == "realtime.endpoint"
    assert "wss://" in err.problem


@pytest.mark.parametrize(
    "url",
    [
        "ws://127.0.0.1:8765/realtime",
        "ws://[::1]:8765/realtime",
        "ws://localhost:8765/realtime",
        "wss://rag.example.com/realtime",
    ],
)
def test_ws_on_loopback_or_wss_anywhere_is_allowed(url: str) -> None:
    assert load(f'[realtime]\nprovider = "voicerag"\nendpoint = "{url}"\n').realtime.endpoint == url


def test_http_endpoint_to_azure_is_refused_but_allowed_on_loopback() -> None:
    toml = AZURE.replace("https://res.openai.azure.com", "http://res.openai.azure.com")
    assert config_error(toml).key == "realtime.endpoint"
    assert (
        load(
            AZURE.replace("https://res.openai.azure.com", "http://127.0.0.1:9000")
        ).realtime.provider
        == "azure"
    )


@pytest.mark.parametrize(
    "url",
    [
        "https://rag.example.com/realtime",  # voicerag speaks websockets only
        "rag.example.com",
        "wss:///realtime",
        "ws://[::1/realtime",  # urlsplit raises on this one
        "ws://127.0.0.1:99999/realtime",  # port out of range
    ],
)
def test_malformed_voicerag_endpoint_is_config_error(url: str) -> None:
    assert (
        config_error(f'[realtime]\nprovider = "voicerag"\nendpoint = "{url}"\n').key
        == "realtime.endpoint"
    )


# --- env overrides -------------------------------------------------------------------------------


def test_env_overrides_are_parsed_per_type() -> None:
    cfg = load(
        "[vad]\nhangover_ms = 500\n",
        {
            "KIOSK_VAD_HANGOVER_MS": "900",  # int; env wins over the file
            "KIOSK_TURNS_ANSWER_TIMEOUT_S": "7.5",  # float
            "KIOSK_AUDIO_ECHO_CANCELLED": "yes",  # bool
            "KIOSK_EARCONS_ENABLED": "0",
            "KIOSK_AUDIO_FRAME_MS": "30",  # Literal of int
            "KIOSK_REALTIME_TURN_DETECTION": "semantic_vad",  # Literal of str
            "KIOSK_GPIO_LED": "rgb",
            "KIOSK_GPIO_RGB_PINS": "17, 27, 22",  # list of int
            "KIOSK_REALTIME_VOICE": "marin",  # str
            "KIOSK_TEST_TIMEOUT_FACTOR": "3",  # not a section: not ours
            "PATH": "/usr/bin",
        },
    )
    assert cfg.vad.hangover_ms == 900
    assert cfg.turns.answer_timeout_s == 7.5
    assert cfg.audio.echo_cancelled is True
    assert cfg.earcons.enabled is False
    assert cfg.audio.frame_ms == 30
    assert cfg.realtime.turn_detection == "semantic_vad"
    assert cfg.gpio.rgb_pins == [17, 27, 22]
    assert cfg.realtime.voice == "marin"


@pytest.mark.parametrize(
    ("var", "value", "key"),
    [
        ("KIOSK_VAD_HANGOVER_MS", "long", "KIOSK_VAD_HANGOVER_MS"),
        ("KIOSK_TURNS_ANSWER_TIMEOUT_S", "soon", "KIOSK_TURNS_ANSWER_TIMEOUT_S"),
        ("KIOSK_AUDIO_ECHO_CANCELLED", "maybe", "KIOSK_AUDIO_ECHO_CANCELLED"),
        ("KIOSK_AUDIO_FRAME_MS", "25", "KIOSK_AUDIO_FRAME_MS"),
        ("KIOSK_GPIO_RGB_PINS", "5,x,13", "KIOSK_GPIO_RGB_PINS[1]"),
        # Range checks run after loading: they too name the variable the value came from.
        ("KIOSK_VAD_AGGRESSIVENESS", "9", "KIOSK_VAD_AGGRESSIVENESS"),
        ("KIOSK_REALTIME_API_KEY", KEY, "KIOSK_REALTIME_API_KEY"),
    ],
)
def test_bad_env_override_names_the_variable_not_the_file(var: str, value: str, key: str) -> None:
    err = config_error("", {var: value})
    assert err.key == key
    if var == "KIOSK_REALTIME_API_KEY":
        assert KEY not in str(err)


def test_same_bad_value_in_the_file_names_the_key() -> None:
    assert config_error("[vad]\naggressiveness = 9\n").key == "vad.aggressiveness"


@pytest.mark.parametrize(
    ("toml", "env", "hint"),
    [
        ("[vad]\nhangover = 700\n", {}, "did you mean hangover_ms?"),
        ("[realtim]\nvoice = 'ash'\n", {}, "did you mean realtime?"),
        ("", {"KIOSK_VAD_AGRESIVENESS": "2"}, "did you mean KIOSK_VAD_AGGRESSIVENESS?"),
        ("[realtime]\nvoice = 'alloi'\n", {}, "did you mean alloy?"),
    ],
)
def test_unknown_names_get_a_did_you_mean(toml: str, env: dict[str, str], hint: str) -> None:
    assert hint in str(config_error(toml, env))


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ("[realtime]\nvoice = 'Samantha'\n", "realtime.voice"),
        ("[realtime]\nlanguage = 'English'\n", "realtime.language"),
        ("[realtime]\nlanguage = 'ja-JP'\n", "realtime.language"),
    ],
)
def test_voice_and_language_are_validated(toml: str, key: str) -> None:
    assert config_error(toml).key == key


def test_voice_is_free_for_voicerag_whose_middle_tier_chooses() -> None:
    cfg = load_config(
        "[realtime]\nprovider = 'voicerag'\nendpoint = 'wss://tier.example/realtime'\n"
        "voice = 'custom'\n",
        {},
    )
    assert cfg.realtime.voice == "custom"


@pytest.mark.parametrize(
    "toml",
    ['[vad]\n"hang\\nover" = 1\n', '["v\\nad"]\nx = 1\n', '[gpio.state_pins]\n"err\\nor" = 21\n'],
    ids=["key", "section", "table_key"],
)
def test_name_with_newline_still_gives_one_line_error(toml: str) -> None:
    err = config_error(toml)
    assert "\\n" in err.key


def test_rag_azure_backend_with_endpoint_and_index_loads() -> None:
    toml = (
        '[rag]\nbackend = "azure"\nazure_endpoint = "https://s.search.windows.net"\n'
        'azure_index = "kb"\n'
    )
    assert load(toml).rag.azure_index == "kb"


def test_env_override_of_int_choice_with_text_names_the_variable() -> None:
    assert config_error("", {"KIOSK_AUDIO_FRAME_MS": "twenty"}).key == "KIOSK_AUDIO_FRAME_MS"
