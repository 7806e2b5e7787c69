"""Settings: one frozen :class:`Config`, loaded from TOML, then env overrides, validated.

``load_config(toml_text, env)`` is pure (no file or environment access) so it can be
unit-tested; :func:`load_config_file` is the thin adapter that reads the file, the
process environment and systemd credentials.

Every problem raises :class:`~kiosk.errors.ConfigError` whose message is one line naming
the dotted key (``vad.aggressiveness: must be between 0 and 3, got 7``). Each default is
stated once, in the dataclasses below; ``config/kiosk.toml`` documents them.

Env overrides: ``KIOSK_<SECTION>_<KEY>=value`` (e.g. ``KIOSK_REALTIME_PROVIDER=azure``),
parsed to the key's type. Secrets never live in the TOML: ``OPENAI_API_KEY`` /
``AZURE_OPENAI_API_KEY`` / ``AZURE_SEARCH_API_KEY`` from the environment or from files
of the same name (or lower-case) in ``$CREDENTIALS_DIRECTORY`` (systemd ``LoadCredential=``).
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from kiosk.api_keys import SECRET_NAMES, clean_api_key  # SECRET_NAMES re-exported
from kiosk.endpoint_urls import check_endpoint, is_loopback_host  # re-exported
from kiosk.errors import ConfigError

DEFAULT_CONFIG_PATH = Path("/etc/kiosk/kiosk.toml")

# "local": the on-device engine (kiosk.local) behind the same protocol; needs no key.
Provider = Literal["openai", "azure", "azure-preview", "voicerag", "local"]
PROVIDERS: tuple[str, ...] = get_args(Provider)


class Secret:
    """A string that never shows itself in repr/str/logs/exceptions."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret('***')" if self._value else "Secret('')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True, slots=True)
class RealtimeSettings:
    """Which Realtime endpoint to talk to and how the model should behave."""

    provider: Provider = "openai"
    # openai/azure/azure-preview: the service's base URL (kiosk adds path and query);
    # voicerag: the full ws(s)://host/realtime URL. "" = the provider's default (openai only).
    endpoint: str = ""
    model: str = "gpt-realtime"  # openai: model name
    deployment: str = ""  # azure / azure-preview: deployment name
    api_version: str = "2024-10-01-preview"  # azure-preview only
    instructions: str = (
        "You are a helpful kiosk assistant in a building lobby. Answer briefly, in the language "
        "the visitor speaks. Always use the 'search' tool before answering and answer only from "
        "what it returns; call 'report_grounding' with the sources you used. If the knowledge base "
        "has no answer, say you don't know."
    )
    voice: str = "alloy"
    language: str = ""  # transcription language hint, e.g. "en" or "ja"; "" = auto
    temperature: float = 0.8  # beta dialect only (GA sessions have no temperature)
    max_output_tokens: int = 0  # 0 = "inf"
    # "local" = webrtcvad endpointing on the kiosk (turn_detection: null); or the server's VAD.
    turn_detection: Literal["local", "server_vad", "semantic_vad"] = "local"
    transcription_model: str = "whisper-1"  # "" = no input transcription
    connect_timeout_s: float = 10.0
    # When the cloud cannot answer a turn (unreachable, 401/403/429 after retries, the cost
    # cap spent): "local" = the on-device engine answers and says it is in offline mode;
    # "clip" = play the shipped "can't reach the service" clip; "none" = the error earcon only.
    fallback: Literal["local", "clip", "none"] = "local"


@dataclass(frozen=True, slots=True)
class AudioSettings:
    input_device: str = (
        ""  # name substring or index; "" = system default. "echo-cancel" for AEC source
    )
    output_device: str = ""
    # The input is an echo-cancelled source (PulseAudio/PipeWire module-echo-cancel): barge-in
    # then needs no half-duplex guard.
    echo_cancelled: bool = False
    capture_rate_hz: int = 0  # 0 = negotiate (16000, 48000, 32000, 8000, then device default)
    playback_rate_hz: int = 0  # 0 = negotiate (24000, 48000, 16000, then device default)
    frame_ms: Literal[10, 20, 30] = 20
    # Exact digital zeros from the mic this long = the device is gone (PulseAudio moved us to
    # its dummy sink). 0 = off; a real microphone never gives exact zeros (try 10 on a kiosk).
    silence_timeout_s: float = 0.0
    output_volume: float = 1.0


@dataclass(frozen=True, slots=True)
class VadSettings:
    aggressiveness: int = 2  # webrtcvad 0..3 (3 = least trigger-happy)
    min_speech_ms: int = 200  # voiced audio needed to open a turn
    hangover_ms: int = 1000  # silence that ends an utterance that still looks unfinished (the cap)
    preroll_ms: int = 300  # audio kept from before onset so the first syllable is not lost
    max_utterance_s: float = 15.0
    # Onset gate: voiced frames quieter than this do not open a turn (webrtcvad ignores level).
    min_level_dbfs: float = -50.0
    # Half-duplex guard (no AEC): while SPEAKING, barge-in needs longer and louder speech.
    barge_in_min_speech_ms: int = 300
    barge_in_min_level_dbfs: float = -30.0
    # ...and this many dB above the speaker's own echo (learned while the answer plays).
    barge_in_margin_db: float = 6.0
    # Pause the answer after this much loud speech over it (resumes if it was a blip).
    barge_in_pause_ms: int = 40
    # Room-aware gates: the ambient level is the quietest 100 ms of the last noise_window_s
    # (minimum statistics); onset needs frames this far above it, continuation this far.
    noise_window_s: float = 4.0
    onset_margin_db: float = 7.0
    continue_margin_db: float = 6.0
    # Second opinion on webrtcvad's voiced frames (run only while webrtcvad hears voice).
    neural: Literal["silero", "off"] = "silero"
    neural_threshold: float = 0.5
    # Semantic end of turn (cheap cue): an utterance this long (onset to the pause) ends after
    # complete_hangover_ms of pause; a shorter one looks unfinished and may pause up to hangover_ms.
    complete_after_ms: int = 1200
    complete_hangover_ms: int = 250
    # The guard outlasts the playback queue by the room's echo tail (ring time + device latency).
    echo_tail_ms: int = 250


@dataclass(frozen=True, slots=True)
class TurnSettings:
    answer_timeout_s: float = 12.0  # no answer audio this long after speech end -> error, IDLE
    audio_stall_s: float = 4.0  # answer audio stops arriving mid-answer -> end the answer
    max_answer_s: float = 90.0  # nobody listens to a longer answer
    error_hold_s: float = 3.0  # time shown in ERROR before returning to IDLE
    idle_close_s: float = 45.0  # close the websocket after this long without a turn
    # Every response re-bills the whole conversation: keep this many visitor turns of context
    # (0 = each turn stands alone) ...
    context_turns: int = 3
    # ... and start a fresh conversation when a turn begins this long after the last one ended
    # (a new visitor must not hear, or pay for, the previous one's conversation).
    new_visitor_after_s: float = 30.0


@dataclass(frozen=True, slots=True)
class ConnectionSettings:
    max_new_per_minute: int = 6  # the deployment's new-connection limit
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 60.0
    session_max_s: float = 1500.0  # roll over between turns before the server's 30/60 min limit
    prewarm_s: float = 0.0  # keep a connection warm this long after start-up; 0 = on demand
    ping_interval_s: float = 10.0
    ping_timeout_s: float = 10.0
    max_quick_failures: int = 3  # connections dying within seconds this many times -> hold ERROR


@dataclass(frozen=True, slots=True)
class CostSettings:
    # Which model's list prices (kiosk/prices.py) to use; "" = realtime.model (openai) or
    # realtime.deployment (azure: name deployments after their model, or set this).
    price_model: str = ""
    # USD per 1M tokens; 0 = the price_model's list price from the table.
    price_audio_in: float = 0.0
    price_audio_out: float = 0.0
    price_text_in: float = 0.0
    price_text_out: float = 0.0
    price_cached_in: float = 0.0
    daily_token_cap: int = 0  # 0 = no cap
    monthly_token_cap: int = 0


@dataclass(frozen=True, slots=True)
class RagSettings:
    backend: Literal["local", "azure", "none"] = "local"
    index_path: str = "/var/lib/kiosk/index.sqlite"
    top_k: int = 5
    max_result_chars: int = 2000  # tool output is billed as text input on every later turn
    tool_timeout_s: float = 5.0
    # Cosine similarity (local index with vectors) below which a search returns nothing.
    relevance_floor: float = 0.25
    azure_endpoint: str = ""  # https://<service>.search.windows.net
    azure_index: str = ""
    azure_semantic_configuration: str = ""
    azure_vector_field: str = ""  # e.g. "text_vector"; "" = keyword only
    # Who embeds the query for azure_vector_field: Azure's vectorizer, or the kiosk's model.
    azure_query_vectors: Literal["service", "local"] = "service"
    azure_id_field: str = "chunk_id"
    azure_content_field: str = "chunk"
    azure_title_field: str = "title"
    azure_source_field: str = ""


@dataclass(frozen=True, slots=True)
class GpioSettings:
    enabled: bool = True
    pin_factory: str = ""  # "" = gpiozero's choice; "lgpio", "rpigpio", "mock"
    led: Literal["none", "single", "rgb"] = "single"
    led_pin: int = 12
    rgb_pins: list[int] = field(default_factory=lambda: [5, 6, 13])
    led_active_high: bool = True
    led_brightness: float = 1.0
    button_pin: int = 0  # 0 = no button
    button_active_low: bool = True  # button to ground with the internal pull-up
    mute_switch_pin: int = 0
    hold_s: float = 0.5  # longer than this = push-to-talk
    long_press_s: float = 3.0  # mute toggle
    debounce_ms: int = 30
    state_pins: dict[str, int] = field(default_factory=dict)  # extra LED per state name

    def __post_init__(self) -> None:
        factories = ("", "mock", "lgpio", "rpigpio", "pigpio", "native")
        if self.pin_factory.strip().lower() not in factories:
            raise ConfigError(
                "gpio.pin_factory", f"must be one of {factories}, got {self.pin_factory!r}"
            )
        # BCM numbering on the 40-pin header: GPIO 2..27 (0 means "not connected").
        for key, pin, allow_zero in (
            ("gpio.led_pin", self.led_pin, self.led != "single"),
            ("gpio.button_pin", self.button_pin, True),
            ("gpio.mute_switch_pin", self.mute_switch_pin, True),
            *((f"gpio.rgb_pins[{i}]", p, self.led != "rgb") for i, p in enumerate(self.rgb_pins)),
            *((f"gpio.state_pins.{_printable(k)}", p, False) for k, p in self.state_pins.items()),
        ):
            if not (2 <= pin <= 27 or (allow_zero and pin == 0)):
                raise ConfigError(key, f"must be a BCM GPIO number 2..27, got {pin}")
        states = ("idle", "listening", "thinking", "speaking", "muted", "error")
        for name in self.state_pins:
            if name.lower() not in states:
                raise ConfigError(
                    f"gpio.state_pins.{_printable(name)}",
                    f"unknown state (known: {', '.join(states)})",
                )
        used = [p for p in (self.button_pin, self.mute_switch_pin) if p]
        used += [self.led_pin] if self.led == "single" else []
        used += list(self.rgb_pins) if self.led == "rgb" else []
        used += list(self.state_pins.values())
        if len(used) != len(set(used)):
            dup = sorted({p for p in used if used.count(p) > 1})
            raise ConfigError("gpio", f"pin(s) {dup} used twice")
        if not 0 < self.hold_s < self.long_press_s:
            raise ConfigError(
                "gpio.hold_s",
                f"need 0 < hold_s < long_press_s, got {self.hold_s:g} and {self.long_press_s:g}",
            )
        if not 0 <= self.debounce_ms < self.hold_s * 1000:
            raise ConfigError(
                "gpio.debounce_ms", f"must be 0..{self.hold_s * 1000:g}, got {self.debounce_ms}"
            )


@dataclass(frozen=True, slots=True)
class WakeSettings:
    mode: Literal["vad", "wakeword", "button"] = "vad"
    wakeword_model: str = "okay_nabu"
    wakeword_threshold: float = 0.0  # 0 = the model's tuned cutoff (okay_nabu: 0.85)
    refractory_s: float = 2.0

    def __post_init__(self) -> None:
        # Bundled in pymicro-wakeword (Apache-2.0 weights); or a custom microWakeWord .json.
        bundled = ("okay_nabu", "hey_jarvis", "hey_mycroft", "alexa")
        if self.wakeword_model not in bundled and not self.wakeword_model.endswith(".json"):
            raise ConfigError(
                "wake.wakeword_model",
                f"must be one of {bundled} or a path to a microWakeWord .json, "
                f"got {self.wakeword_model!r}",
            )
        if not 0 <= self.wakeword_threshold < 1:
            raise ConfigError(
                "wake.wakeword_threshold",
                f"must be 0 (model default) or between 0 and 1, got {self.wakeword_threshold:g}",
            )
        if not 0 <= self.refractory_s <= 60:
            raise ConfigError("wake.refractory_s", f"must be 0..60 s, got {self.refractory_s:g}")


@dataclass(frozen=True, slots=True)
class EarconSettings:
    enabled: bool = True
    volume: float = 0.3


@dataclass(frozen=True, slots=True)
class ServiceSettings:
    state_dir: str = "/var/lib/kiosk"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # Days of turn rows (transcripts, outcome, tokens; never audio) kept for `kiosk report`;
    # 0 = keep no turn log.
    turn_log_days: int = 90
    # node_exporter textfile collector file (e.g. /var/lib/prometheus/node-exporter/kiosk.prom);
    # "" = no metrics file.
    metrics_textfile: str = ""


@dataclass(frozen=True, slots=True)
class Credentials:
    openai_api_key: Secret = field(default_factory=lambda: Secret(""))
    azure_openai_api_key: Secret = field(default_factory=lambda: Secret(""))
    azure_search_api_key: Secret = field(default_factory=lambda: Secret(""))


@dataclass(frozen=True, slots=True)
class Config:
    realtime: RealtimeSettings = field(default_factory=RealtimeSettings)
    audio: AudioSettings = field(default_factory=AudioSettings)
    vad: VadSettings = field(default_factory=VadSettings)
    turns: TurnSettings = field(default_factory=TurnSettings)
    connection: ConnectionSettings = field(default_factory=ConnectionSettings)
    cost: CostSettings = field(default_factory=CostSettings)
    rag: RagSettings = field(default_factory=RagSettings)
    gpio: GpioSettings = field(default_factory=GpioSettings)
    wake: WakeSettings = field(default_factory=WakeSettings)
    earcons: EarconSettings = field(default_factory=EarconSettings)
    service: ServiceSettings = field(default_factory=ServiceSettings)
    credentials: Credentials = field(default_factory=Credentials)

    @property
    def priced_model(self) -> str:
        """The model name whose prices apply (``cost.price_model`` or the configured model)."""
        if self.cost.price_model:
            return self.cost.price_model
        if self.realtime.provider in ("azure", "azure-preview") and self.realtime.deployment:
            return self.realtime.deployment
        return self.realtime.model

    @property
    def uses_local_engine(self) -> bool:
        """Answered on the device: provider "local", or nothing configured (no key and no
        endpoint; an endpoint without its key is a configuration error, not a fallback)."""
        p = self.realtime.provider
        return p == "local" or (p != "voicerag" and not self.api_key and not self.realtime.endpoint)

    @property
    def api_key(self) -> Secret:
        """The key the chosen provider needs (empty for voicerag and local)."""
        p = self.realtime.provider
        if p == "openai":
            return self.credentials.openai_api_key
        if p in ("azure", "azure-preview"):
            return self.credentials.azure_openai_api_key
        return Secret("")


SECTIONS: dict[str, type[Any]] = {
    f.name: f.type if isinstance(f.type, type) else globals()[str(f.type)]
    for f in dataclasses.fields(Config)
    if f.name != "credentials"
}

OPENAI_DEFAULT_ENDPOINT = "https://api.openai.com"

# Voices the Realtime models speak with (GA; the beta dialect knows all but marin and cedar).
REALTIME_VOICES = (
    "alloy", "ash", "ballad", "cedar", "coral", "echo", "marin", "sage", "shimmer", "verse",
)
_LANGUAGE = re.compile(r"[a-z]{2}")  # ISO-639-1, what input transcription accepts


# --- parsing ---------------------------------------------------------------------------


def _type_name(tp: Any) -> str:
    if get_origin(tp) is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    if get_origin(tp) in (list, dict):
        return str(tp).replace("typing.", "")
    return getattr(tp, "__name__", str(tp))


def _coerce(key: str, tp: Any, value: Any, from_env: bool) -> Any:
    """Check ``value`` against the annotation ``tp``; env strings are parsed first."""
    origin = get_origin(tp)
    if origin is Literal:
        allowed = get_args(tp)
        if from_env and isinstance(value, str) and all(isinstance(a, int) for a in allowed):
            try:
                value = int(value)
            except ValueError:
                pass
        # Compare types too: 20.0 == 20 and True == 1, but a float frame_ms breaks callers.
        if not any(type(value) is type(a) and value == a for a in allowed):
            raise ConfigError(key, f"must be one of {_type_name(tp)}, got {value!r}")
        return value
    if tp is bool:
        if from_env and isinstance(value, str):
            low = value.strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
        if not isinstance(value, bool):
            raise ConfigError(key, f"must be true or false, got {value!r}")
        return value
    if tp is int:
        if from_env and isinstance(value, str):
            try:
                value = int(value)
            except ValueError:
                raise ConfigError(key, f"must be an integer, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(key, f"must be an integer, got {value!r}")
        return value
    if tp is float:
        if from_env and isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise ConfigError(key, f"must be a number, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(key, f"must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if isinstance(value, int) and not isinstance(value, bool) and key.endswith("_device"):
            return str(value)  # device index written as a number
        if not isinstance(value, str):
            raise ConfigError(key, f"must be a string, got {value!r}")
        return value
    if origin is list:
        (item_tp,) = get_args(tp)
        if from_env and isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list):
            raise ConfigError(key, f"must be a list, got {value!r}")
        return [_coerce(f"{key}[{i}]", item_tp, v, from_env) for i, v in enumerate(value)]
    if origin is dict:
        _, val_tp = get_args(tp)
        if not isinstance(value, dict):
            raise ConfigError(key, f"must be a table, got {value!r}")
        return {
            str(k): _coerce(f"{key}.{_printable(str(k))}", val_tp, v, from_env)
            for k, v in value.items()
        }
    raise ConfigError(key, f"unsupported type {tp!r}")  # pragma: no cover - a bug in this module


def _printable(name: str) -> str:
    """A TOML name as it may appear in a one-line error (quoted keys can hold newlines)."""
    return name if name.isprintable() else repr(name)


def _section_hints(cls: type[Any]) -> dict[str, Any]:
    return typing.get_type_hints(cls, globalns=globals(), localns=vars(types))


def _build_section(name: str, cls: type[Any], raw: dict[str, Any], env_raw: dict[str, str]) -> Any:
    hints = _section_hints(cls)
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in hints:
            raise ConfigError(f"{name}.{_printable(key)}", _unknown(key, hints, "key"))
        values[key] = _coerce(f"{name}.{key}", hints[key], value, from_env=False)
    for key, value in env_raw.items():
        var = env_var(name, key)
        if key not in hints:
            raise ConfigError(var, _unknown(key, hints, "setting", env_prefix=f"KIOSK_{name}_"))
        # A bad value from the environment names the variable, not the file's key.
        values[key] = _coerce(var, hints[key], value, from_env=True)
    return cls(**values)


def env_var(section: str, key: str) -> str:
    """The environment variable that overrides ``section.key``."""
    return f"KIOSK_{section.upper()}_{key.upper()}"


def _unknown(name: str, known: typing.Iterable[str], what: str, env_prefix: str = "") -> str:
    """'unknown <what>' with a "did you mean" when one known name is close, else the list."""
    return f"unknown {what}; {_suggest(name, known, env_prefix)}"


def _suggest(name: str, known: typing.Iterable[str], env_prefix: str = "") -> str:
    names = sorted(known)
    shown = [(env_prefix + k).upper() if env_prefix else k for k in names]
    close = difflib.get_close_matches(name.lower(), names, n=1, cutoff=0.6)
    if close:
        return f"did you mean {shown[names.index(close[0])]}?"
    return f"known: {', '.join(shown)}"


def _env_overrides(env: dict[str, str]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for var, value in env.items():
        if not var.startswith("KIOSK_"):
            continue
        rest = var[len("KIOSK_") :].lower()
        for section in SECTIONS:
            if rest.startswith(section + "_"):
                out.setdefault(section, {})[rest[len(section) + 1 :]] = value
                break
    return out


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
    _check_range("realtime.connect_timeout_s", rt.connect_timeout_s, 0.5, 120)
    _check_range("audio.output_volume", cfg.audio.output_volume, 0, 4)
    _check_range("audio.silence_timeout_s", cfg.audio.silence_timeout_s, 0, 3600)
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
    if cfg.rag.azure_endpoint:  # also used by `kiosk index push --azure` with another backend
        check_endpoint("rag.azure_endpoint", cfg.rag.azure_endpoint, "azure")
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


def load_config(
    toml_text: str,
    env: dict[str, str] | None = None,
    credentials: dict[str, str] | None = None,
    *,
    require_key: bool = True,
) -> Config:
    """Parse and validate settings.

    Args:
        toml_text: the TOML document ("" for all defaults).
        env: environment variables (``KIOSK_*`` overrides and API keys).
        credentials: secret name -> value read from ``$CREDENTIALS_DIRECTORY`` (env wins).
        require_key: raise when the chosen provider's API key is missing.

    Raises:
        ConfigError: one line naming the key.
    """
    env = env or {}
    credentials = credentials or {}
    try:
        raw = tomllib.loads(toml_text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("(file)", f"not valid TOML: {exc}") from None
    except RecursionError:  # tomllib recurses per nesting level: [[[[... or {a={a=...
        raise ConfigError("(file)", "not a settings file: arrays/tables nested too deeply") from None
    env_sections = _env_overrides(env)
    built: dict[str, Any] = {}
    for name, value in raw.items():
        if name not in SECTIONS:
            raise ConfigError(_printable(name), _unknown(name, SECTIONS, "section"))
        if not isinstance(value, dict):
            raise ConfigError(name, "must be a table, e.g. [" + name + "]")
    for name, cls in SECTIONS.items():
        built[name] = _build_section(name, cls, raw.get(name, {}), env_sections.get(name, {}))

    def secret(var: str) -> Secret:
        raw = env.get(var) or credentials.get(var) or credentials.get(var.lower()) or ""
        return Secret(clean_api_key(var, raw))  # ConfigError names var, never the value

    built["credentials"] = Credentials(
        openai_api_key=secret("OPENAI_API_KEY"),
        azure_openai_api_key=secret("AZURE_OPENAI_API_KEY"),
        azure_search_api_key=secret("AZURE_SEARCH_API_KEY"),
    )
    cfg = Config(**built)
    try:
        _validate(cfg)
    except ConfigError as exc:
        section, _, key = exc.key.partition(".")
        if key in env_sections.get(section, {}):  # the value came from the environment
            raise ConfigError(env_var(section, key), exc.problem) from None
        raise
    if require_key and cfg.realtime.provider not in ("voicerag", "local") and not cfg.api_key:
        var = "OPENAI_API_KEY" if cfg.realtime.provider == "openai" else "AZURE_OPENAI_API_KEY"
        raise ConfigError(
            f"credentials.{var.lower()}",
            f"missing for provider {cfg.realtime.provider!r}: set {var} or a systemd credential named {var}",
        )
    return cfg


def read_credentials_dir(env: dict[str, str]) -> dict[str, str]:
    """Secrets from ``$CREDENTIALS_DIRECTORY`` (systemd LoadCredential=): file name -> content."""
    directory = env.get("CREDENTIALS_DIRECTORY")
    out: dict[str, str] = {}
    if not directory:
        return out
    for name in SECRET_NAMES:
        for candidate in (name, name.lower()):
            path = Path(directory) / candidate
            try:
                out[name] = path.read_text(encoding="utf-8").strip()
                break
            except OSError:
                continue
            except UnicodeDecodeError:
                key = f"credentials.{name.lower()}"
                raise ConfigError(key, f"{path} is not UTF-8 text") from None
    return out


def load_config_file(
    path: Path | str | None = None,
    env: dict[str, str] | None = None,
    *,
    require_key: bool = True,
    overrides: dict[str, str] | None = None,
) -> Config:
    """Read the settings file (``path``, else the order in :mod:`kiosk.paths`; no file at all
    means built-in defaults) and resolve the state directory and index for this user.

    ``overrides`` are ``KIOSK_*``-style variables from command-line flags (they win over env).
    """
    from kiosk import paths

    env = dict(os.environ if env is None else env)
    if overrides:
        env.update(overrides)
    p, explicit = paths.config_path(str(path) if path is not None else None, env)
    text = ""
    try:
        if p is not None:
            text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        if explicit:
            raise ConfigError("(file)", f"{p} does not exist") from None
    except OSError as exc:
        raise ConfigError("(file)", f"cannot read {p}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError("(file)", f"{p} is not UTF-8 text") from None
    return _resolve_paths(
        load_config(text, env, read_credentials_dir(env), require_key=require_key), env
    )


def _resolve_paths(cfg: Config, env: dict[str, str]) -> Config:
    """The built-in state_dir / index_path mean "installed location if this user may write
    it, else the user's own" (kiosk.paths); a value set to anything else is kept."""
    from kiosk import paths

    defaults = Config()
    state = paths.state_dir(
        "" if cfg.service.state_dir == defaults.service.state_dir else cfg.service.state_dir, env
    )
    index = paths.index_path(
        "" if cfg.rag.index_path == defaults.rag.index_path else cfg.rag.index_path, state
    )
    return dataclasses.replace(
        cfg,
        service=dataclasses.replace(cfg.service, state_dir=str(state)),
        rag=dataclasses.replace(cfg.rag, index_path=str(index)),
    )
