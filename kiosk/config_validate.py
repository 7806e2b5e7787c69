"""Range and cross-field checks of the settings (each key's type is already checked by
:mod:`kiosk.config_parse`): ``_validate`` for a built :class:`~kiosk.config.Config`, and the
``[gpio]`` / ``[wake]`` checks their dataclasses run on construction."""

from __future__ import annotations

import dataclasses
import re
from typing import TYPE_CHECKING

from kiosk.config_parse import _printable, _suggest
from kiosk.endpoint_urls import check_endpoint
from kiosk.errors import ConfigError

if TYPE_CHECKING:
    from kiosk.config import Config, GpioSettings, RagSettings, WakeSettings

# Voices the Realtime models speak with (GA; the beta dialect knows all but marin and cedar).
REALTIME_VOICES = (
    "alloy", "ash", "ballad", "cedar", "coral", "echo", "marin", "sage", "shimmer", "verse",
)
_LANGUAGE = re.compile(r"[a-z]{2}")  # ISO-639-1, what input transcription accepts


def _check_range(key: str, value: float, lo: float, hi: float) -> None:
    if not lo <= value <= hi:
        raise ConfigError(key, f"must be between {lo:g} and {hi:g}, got {value:g}")


def _validate(cfg: Config) -> None:
    rt = cfg.realtime
    if rt.endpoint:
        check_endpoint("realtime.endpoint", rt.endpoint, rt.provider)
    elif rt.provider not in ("openai", "local"):
        hint = (
            "wss://host/realtime"
            if rt.provider == "voicerag"
            else "https://<resource>.openai.azure.com"
        )
        raise ConfigError(
            "realtime.endpoint", f"required for provider {rt.provider!r} (e.g. {hint})"
        )
    if rt.provider in ("azure", "azure-preview") and not rt.deployment:
        raise ConfigError("realtime.deployment", f"required for provider {rt.provider!r}")
    _check_range("realtime.temperature", rt.temperature, 0.6, 1.2)
    if rt.max_output_tokens < 0 or rt.max_output_tokens > 4096:
        raise ConfigError(
            "realtime.max_output_tokens", f"must be 0 (inf) to 4096, got {rt.max_output_tokens}"
        )
    v = cfg.vad
    _check_range("vad.aggressiveness", v.aggressiveness, 0, 3)
    _check_range("vad.min_speech_ms", v.min_speech_ms, 10, 5000)
    _check_range("vad.hangover_ms", v.hangover_ms, 100, 5000)
    _check_range("vad.preroll_ms", v.preroll_ms, 0, 2000)
    _check_range("vad.max_utterance_s", v.max_utterance_s, 1, 120)
    _check_range("vad.min_level_dbfs", v.min_level_dbfs, -96, 0)
    _check_range("vad.barge_in_margin_db", v.barge_in_margin_db, 0, 40)
    _check_range("vad.barge_in_pause_ms", v.barge_in_pause_ms, 10, 5000)
    _check_range("vad.barge_in_min_speech_ms", v.barge_in_min_speech_ms, 10, 5000)
    _check_range("vad.barge_in_min_level_dbfs", v.barge_in_min_level_dbfs, -96, 0)
    _check_range("vad.noise_window_s", v.noise_window_s, 1, 60)
    _check_range("vad.onset_margin_db", v.onset_margin_db, 0, 40)
    _check_range("vad.continue_margin_db", v.continue_margin_db, 0, 40)
    _check_range("vad.neural_threshold", v.neural_threshold, 0.05, 0.95)
    _check_range("vad.echo_tail_ms", v.echo_tail_ms, 0, 2000)
    _check_range("vad.complete_after_ms", v.complete_after_ms, 0, 60000)
    _check_range("vad.complete_hangover_ms", v.complete_hangover_ms, 100, 5000)
    _check_range("vad.complete_after_syllables", v.complete_after_syllables, 0, 100)
    _check_range("vad.complete_long_ms", v.complete_long_ms, 0, 60000)
    if v.complete_long_ms < v.complete_after_ms:
        raise ConfigError("vad.complete_long_ms", f"must be at least vad.complete_after_ms ({v.complete_after_ms}), got {v.complete_long_ms}")
    _check_range("realtime.connect_timeout_s", rt.connect_timeout_s, 0.5, 120)
    _check_range("audio.output_volume", cfg.audio.output_volume, 0, 4)
    _check_range("audio.silence_timeout_s", cfg.audio.silence_timeout_s, 0, 3600)
    if cfg.audio.echo_cancel != "none":
        if cfg.audio.echo_cancelled:
            raise ConfigError(
                "audio.echo_cancel", "the input is already echo-cancelled (audio.echo_cancelled = true)"
            )
        if cfg.audio.echo_cancel == "webrtc":
            from kiosk.audio.webrtc_apm import load_module as load_library
        else:
            from kiosk.audio.speexdsp import load_library

        load_library()  # one line naming audio.echo_cancel and the package when missing
    rates = (0, 8000, 16000, 22050, 24000, 32000, 44100, 48000)
    for name in ("capture_rate_hz", "playback_rate_hz"):
        if getattr(cfg.audio, name) not in rates:
            raise ConfigError(f"audio.{name}", f"unsupported rate {getattr(cfg.audio, name)}")
    for name in (
        "answer_timeout_s",
        "audio_stall_s",
        "max_answer_s",
        "error_hold_s",
        "idle_close_s",
    ):
        _check_range(f"turns.{name}", getattr(cfg.turns, name), 0.1, 3600)
    _check_range("turns.context_turns", cfg.turns.context_turns, 0, 50)
    _check_range("turns.new_visitor_after_s", cfg.turns.new_visitor_after_s, 0, 86400)
    c = cfg.connection
    _check_range("connection.max_new_per_minute", c.max_new_per_minute, 1, 600)
    _check_range("connection.backoff_initial_s", c.backoff_initial_s, 0.01, 600)
    _check_range("connection.backoff_max_s", c.backoff_max_s, c.backoff_initial_s, 3600)
    # The servers end a session at 30 (Azure) / 60 (OpenAI) minutes.
    _check_range("connection.session_max_s", c.session_max_s, 1, 3600)
    _check_range("connection.prewarm_s", c.prewarm_s, 0, 86400)
    _check_range("connection.ping_interval_s", c.ping_interval_s, 1, 300)
    _check_range("connection.ping_timeout_s", c.ping_timeout_s, 1, 300)
    _check_range("connection.max_quick_failures", c.max_quick_failures, 1, 100)
    _check_range("service.turn_log_days", cfg.service.turn_log_days, 0, 36500)
    for f in dataclasses.fields(cfg.cost):
        if f.name != "price_model":
            _check_range(f"cost.{f.name}", getattr(cfg.cost, f.name), 0, 1e12)
    _check_range("rag.top_k", cfg.rag.top_k, 1, 50)
    _check_range("rag.max_result_chars", cfg.rag.max_result_chars, 100, 100_000)
    _check_range("rag.tool_timeout_s", cfg.rag.tool_timeout_s, 0.1, 120)
    _check_range("rag.relevance_floor", cfg.rag.relevance_floor, 0.0, 1.0)
    _check_range("rag.max_tool_calls", cfg.rag.max_tool_calls, 1, 32)
    if cfg.rag.azure_endpoint:  # also used by `kiosk index push --azure` with another backend
        check_endpoint("rag.azure_endpoint", cfg.rag.azure_endpoint, "azure")
    _check_heading_vector_field(cfg.rag)
    if cfg.rag.backend == "azure":
        if not cfg.rag.azure_endpoint:
            raise ConfigError("rag.azure_endpoint", "required when rag.backend = 'azure'")
        if not cfg.rag.azure_index:
            raise ConfigError("rag.azure_index", "required when rag.backend = 'azure'")
    _check_range("gpio.led_brightness", cfg.gpio.led_brightness, 0, 1)
    if len(cfg.gpio.rgb_pins) != 3:
        raise ConfigError(
            "gpio.rgb_pins", f"needs exactly 3 pins (red, green, blue), got {cfg.gpio.rgb_pins}"
        )
    _check_range("earcons.volume", cfg.earcons.volume, 0, 1)
    if rt.provider != "voicerag" and rt.voice not in REALTIME_VOICES:
        problem = f"{rt.voice!r} is not a Realtime voice; {_suggest(rt.voice, REALTIME_VOICES)}"
        raise ConfigError("realtime.voice", problem)
    if rt.language and not _LANGUAGE.fullmatch(rt.language):
        raise ConfigError(
            "realtime.language",
            f'must be "" (auto) or an ISO-639-1 code such as "en" or "ja", got {rt.language!r}',
        )


def _check_gpio(gpio: GpioSettings) -> None:
    factories = ("", "mock", "lgpio", "rpigpio", "pigpio", "native")
    if gpio.pin_factory.strip().lower() not in factories:
        raise ConfigError(
            "gpio.pin_factory", f"must be one of {factories}, got {gpio.pin_factory!r}"
        )
    # BCM numbering on the 40-pin header: GPIO 2..27 (0 means "not connected").
    for key, pin, allow_zero in (
        ("gpio.led_pin", gpio.led_pin, gpio.led != "single"),
        ("gpio.button_pin", gpio.button_pin, True),
        ("gpio.mute_switch_pin", gpio.mute_switch_pin, True),
        *((f"gpio.rgb_pins[{i}]", p, gpio.led != "rgb") for i, p in enumerate(gpio.rgb_pins)),
        *((f"gpio.state_pins.{_printable(k)}", p, False) for k, p in gpio.state_pins.items()),
    ):
        if not (2 <= pin <= 27 or (allow_zero and pin == 0)):
            raise ConfigError(key, f"must be a BCM GPIO number 2..27, got {pin}")
    states = ("idle", "listening", "thinking", "speaking", "muted", "error")
    for name in gpio.state_pins:
        if name.lower() not in states:
            raise ConfigError(
                f"gpio.state_pins.{_printable(name)}",
                f"unknown state (known: {', '.join(states)})",
            )
    used = [p for p in (gpio.button_pin, gpio.mute_switch_pin) if p]
    used += [gpio.led_pin] if gpio.led == "single" else []
    used += list(gpio.rgb_pins) if gpio.led == "rgb" else []
    used += list(gpio.state_pins.values())
    if len(used) != len(set(used)):
        dup = sorted({p for p in used if used.count(p) > 1})
        raise ConfigError("gpio", f"pin(s) {dup} used twice")
    if not 0 < gpio.hold_s < gpio.long_press_s:
        raise ConfigError(
            "gpio.hold_s",
            f"need 0 < hold_s < long_press_s, got {gpio.hold_s:g} and {gpio.long_press_s:g}",
        )
    if not 0 <= gpio.debounce_ms < gpio.hold_s * 1000:
        raise ConfigError(
            "gpio.debounce_ms", f"must be 0..{gpio.hold_s * 1000:g}, got {gpio.debounce_ms}"
        )


def _check_wake(wake: WakeSettings) -> None:
    # Bundled in pymicro-wakeword (Apache-2.0 weights); or a custom microWakeWord .json.
    bundled = ("okay_nabu", "hey_jarvis", "hey_mycroft", "alexa")
    if wake.wakeword_model not in bundled and not wake.wakeword_model.endswith(".json"):
        raise ConfigError(
            "wake.wakeword_model",
            f"must be one of {bundled} or a path to a microWakeWord .json, "
            f"got {wake.wakeword_model!r}",
        )
    if not 0 <= wake.wakeword_threshold < 1:
        raise ConfigError(
            "wake.wakeword_threshold",
            f"must be 0 (model default) or between 0 and 1, got {wake.wakeword_threshold:g}",
        )
    if not 0 <= wake.refractory_s <= 60:
        raise ConfigError("wake.refractory_s", f"must be 0..60 s, got {wake.refractory_s:g}")


_AZURE_FIELD_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,127}")


def _check_heading_vector_field(rag: RagSettings) -> None:
    """``rag.azure_heading_vector_field`` holds the kiosk model's heading vectors, so the
    query must be embedded by that model too, beside the passage vectors it ranks with."""
    name = rag.azure_heading_vector_field
    key = "rag.azure_heading_vector_field"
    if not name:
        return
    if not _AZURE_FIELD_NAME.fullmatch(name):
        raise ConfigError(key, f"{name!r} is not an Azure field name (letters, digits, _)")
    if not rag.azure_vector_field:
        raise ConfigError(key, "needs rag.azure_vector_field (the passage vectors) as well")
    if rag.azure_query_vectors != "local":
        raise ConfigError(
            key,
            'needs rag.azure_query_vectors = "local": the heading vectors pushed there '
            "come from the kiosk's model, so the query must too",
        )
    others = (
        rag.azure_vector_field,
        rag.azure_id_field,
        rag.azure_content_field,
        rag.azure_title_field,
        rag.azure_source_field,
    )
    if name in others:
        raise ConfigError(key, f"{name!r} is already another rag.azure_*_field")
