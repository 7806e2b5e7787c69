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

The value parsing (types, env overrides, "did you mean") is in :mod:`kiosk.config_parse`,
the range and cross-field checks in :mod:`kiosk.config_validate`.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from kiosk.api_keys import SECRET_NAMES, clean_api_key  # SECRET_NAMES re-exported
from kiosk.config_parse import _build_section, _env_overrides, _printable, _unknown
from kiosk.config_parse import env_var as env_var  # re-exported
from kiosk.config_validate import REALTIME_VOICES as REALTIME_VOICES  # re-exported
from kiosk.config_validate import _check_gpio, _check_wake, _validate
from kiosk.endpoint_urls import check_endpoint as check_endpoint  # re-exported
from kiosk.endpoint_urls import is_loopback_host as is_loopback_host  # re-exported
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
    # In-process echo cancellation against what the speaker played: "speex" = SpeexDSP's
    # canceller + residual echo suppression (libspeexdsp1); "webrtc" = WebRTC's AEC3 (the
    # Python package livekit: pip install 'kiosk[aec]'); "none" = the half-duplex guard only.
    echo_cancel: Literal["none", "speex", "webrtc"] = "none"
    capture_rate_hz: int = 0  # 0 = negotiate (16000, 48000, 32000, 8000, then device default)
    playback_rate_hz: int = 0  # 0 = negotiate (24000, 48000, 16000, then device default)
    frame_ms: Literal[10, 20, 30] = 20
    # Exact digital zeros from the mic this long = the device is gone (PulseAudio moved us to
    # its dummy sink). 0 = off; a real microphone never gives exact zeros (try 10 on a kiosk).
    silence_timeout_s: float = 0.0
    output_volume: float = 1.0
    # How kiosk reaches the microphone and speaker: "pulse" = PulseAudio/PipeWire-pulse
    # directly (libpulse; no PortAudio, ALSA plugin scan or JACK: ~8 MB less RSS); "portaudio"
    # = PortAudio (ALSA, JACK, any sound server); "auto" = pulse when a server answers and both
    # devices are the default (""), else portaudio (device names and indexes are PortAudio's).
    backend: Literal["auto", "pulse", "portaudio"] = "auto"


@dataclass(frozen=True, slots=True)
class VadSettings:
    aggressiveness: int = 2  # webrtcvad 0..3 (3 = least trigger-happy)
    min_speech_ms: int = 200  # voiced audio needed to open a turn
    hangover_ms: int = 1250  # silence that ends an utterance that still looks unfinished (the cap)
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
    # Semantic end of turn (cheap cue): an utterance this long (onset to the pause) with this many
    # syllable nuclei (0 = length alone), or one complete_long_ms long whatever the count, ends
    # after complete_hangover_ms of pause; a shorter one may pause up to hangover_ms.
    complete_after_ms: int = 1200
    complete_after_syllables: int = 8
    complete_long_ms: int = 1400
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
    # Cosine similarity (local index with vectors; Azure with local query vectors: the best
    # of its hits) below which a search returns nothing.
    relevance_floor: float = 0.25
    max_tool_calls: int = 4  # per response; a model needs one or two, a broken server sends 300
    # Where the daemon's local search embeds the query: a child process ended when idle
    # (the daemon's RSS returns to its pre-search level), or the daemon itself.
    query_embedder: Literal["worker", "in_process"] = "worker"
    azure_endpoint: str = ""  # https://<service>.search.windows.net
    azure_index: str = ""
    azure_semantic_configuration: str = ""
    azure_vector_field: str = ""  # e.g. "text_vector"; "" = keyword only
    # Who embeds the query for azure_vector_field: Azure's vectorizer, or the kiosk's model.
    azure_query_vectors: Literal["service", "local"] = "service"
    # Section-heading vectors (the local ranking's third list), filled by `kiosk index push`.
    azure_heading_vector_field: str = ""  # e.g. "heading_vector"; needs query vectors "local"
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
        _check_gpio(self)


@dataclass(frozen=True, slots=True)
class WakeSettings:
    mode: Literal["vad", "wakeword", "button"] = "vad"
    wakeword_model: str = "okay_nabu"
    wakeword_threshold: float = 0.0  # 0 = the model's tuned cutoff (okay_nabu: 0.85)
    refractory_s: float = 2.0

    def __post_init__(self) -> None:
        _check_wake(self)


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
        problem = "not a settings file: arrays/tables nested too deeply"
        raise ConfigError("(file)", problem) from None
    env_sections = _env_overrides(env, SECTIONS)
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
            f"missing for provider {cfg.realtime.provider!r}: "
            f"set {var} or a systemd credential named {var}",
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
