"""``kiosk check``: the doctor. One ✓/✗ line per check, each failure with a fix hint.

Owns the checks and their wording: config valid, credentials present (never printed),
audio devices found and opened at the needed rates, VAD working, index readable, GPIO
pins available; with ``--online`` DNS, TLS and the websocket handshake to the configured
endpoint; with ``--audio-test`` a 3 s recording played back with its measured level.

Every adapter is imported lazily and a missing one (no pyaudio on a dev laptop, no GPIO
library) is reported as that check's failure with a hint, never as a traceback. Checks
that need a valid config are skipped when it is not. Exit status: 0 all passed, 1 a check
failed (2 is argparse's usage error).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import logging
import math
import os
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TextIO
from urllib.parse import urlsplit

from kiosk.config import DEFAULT_CONFIG_PATH, Config, load_config_file
from kiosk.errors import ConfigError, KioskError, UpstreamRejected

log = logging.getLogger(__name__)

# Where install.sh writes the API key; the unit hands it over with LoadCredential=.
CREDENTIALS_DIR = Path("/etc/kiosk/credentials")
CHECK_NAMES = ("config", "credentials", "audio", "vad", "index", "gpio")
AUDIO_TEST_S = 3.0
SILENCE_DBFS = -60.0
VAD_RATE_HZ = 16000


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    ok: bool
    detail: str
    hint: str = ""
    skipped: bool = False


def _ok(name: str, detail: str) -> CheckResult:
    return CheckResult(name, True, detail)


def _fail(name: str, detail: str, hint: str = "") -> CheckResult:
    return CheckResult(name, False, detail, hint)


def _skip(name: str, why: str) -> CheckResult:
    return CheckResult(name, True, f"skipped ({why})", skipped=True)


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


class Printer:
    """Writes result lines; falls back to ASCII marks on a terminal that cannot show ✓."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        try:
            "✓✗→".encode(getattr(out, "encoding", None) or "utf-8")
            self._marks = ("✓", "✗", "-", "→")
        except (UnicodeEncodeError, LookupError):
            self._marks = ("OK  ", "FAIL", "-   ", "->")

    def result(self, r: CheckResult) -> None:
        ok, bad, skip, arrow = self._marks
        mark = skip if r.skipped else ok if r.ok else bad
        line = f"{mark} {r.name}: {r.detail}"
        if r.hint and not r.ok:
            line += f"  {arrow} fix: {r.hint}"
        self._out.write(line + "\n")
        self._out.flush()

    def note(self, text: str) -> None:
        self._out.write(f"    {text}\n")


# --- individual checks -------------------------------------------------------------------


def credentials_env(env: Mapping[str, str], directory: Path = CREDENTIALS_DIR) -> dict[str, str]:
    """``env`` plus ``CREDENTIALS_DIRECTORY`` pointing at install.sh's directory when run by
    hand (outside the unit), so check sees the key the service will get."""
    out = dict(env)
    if not out.get("CREDENTIALS_DIRECTORY") and directory.is_dir():
        out["CREDENTIALS_DIRECTORY"] = str(directory)
    return out


def check_config(cfg_path: str | None, env: Mapping[str, str]) -> tuple[CheckResult, Config | None]:
    shown = cfg_path or str(DEFAULT_CONFIG_PATH)
    try:
        cfg = load_config_file(cfg_path, dict(env), require_key=False)
    except ConfigError as exc:
        hint = f"edit {shown} (every key is documented in config/kiosk.toml)"
        if exc.key == "(file)" and "does not exist" in exc.problem:
            hint = f"create {shown}: sudo ./install.sh copies the example there"
        return _fail("config", str(exc), hint), None
    return _ok("config", f"{shown} valid (provider {cfg.realtime.provider})"), cfg


def check_credentials(cfg: Config, env: Mapping[str, str]) -> CheckResult:
    needed: list[str] = []
    if cfg.realtime.provider == "openai":
        needed.append("OPENAI_API_KEY")
    elif cfg.realtime.provider in ("azure", "azure-preview"):
        needed.append("AZURE_OPENAI_API_KEY")
    if cfg.rag.backend == "azure":
        needed.append("AZURE_SEARCH_API_KEY")
    if not needed:
        return _ok("credentials", f"none needed (provider {cfg.realtime.provider})")
    have = {
        "OPENAI_API_KEY": cfg.credentials.openai_api_key,
        "AZURE_OPENAI_API_KEY": cfg.credentials.azure_openai_api_key,
        "AZURE_SEARCH_API_KEY": cfg.credentials.azure_search_api_key,
    }
    missing = [name for name in needed if not have[name]]
    if missing:
        directory = Path(env.get("CREDENTIALS_DIRECTORY") or CREDENTIALS_DIR)
        hint = (
            f"sudo ./install.sh --api-key-file FILE, or write {directory}/{missing[0]} (mode 0600)"
        )
        if directory.is_dir() and not os.access(directory, os.R_OK | os.X_OK):
            hint = f"{directory} is readable by root only: run sudo kiosk check"
        return _fail("credentials", f"{', '.join(missing)} missing", hint)
    given = env.get("CREDENTIALS_DIRECTORY")
    source = f"credentials in {given}" if given else "environment"
    return _ok("credentials", f"{', '.join(needed)} present ({source}; value not shown)")


def check_vad(cfg: Config) -> CheckResult:
    try:
        from kiosk.audio.vad import webrtc_voice_detector

        detect = webrtc_voice_detector(cfg.vad.aggressiveness, VAD_RATE_HZ, cfg.audio.frame_ms)
    except ImportError as exc:
        return _fail(
            "vad", f"cannot load webrtcvad: {_one_line(exc)}", "pip install webrtcvad-wheels"
        )
    except KioskError as exc:
        return _fail("vad", _one_line(exc), "fix the named setting")
    silence = bytes(VAD_RATE_HZ * cfg.audio.frame_ms // 1000 * 2)
    speech = _voice_like_pcm(VAD_RATE_HZ, cfg.audio.frame_ms * 25)
    frame_bytes = len(silence)
    # Silence first: after voiced frames webrtcvad's hangover still says "speech" a while.
    if any(detect(silence) for _ in range(5)):
        return _fail(
            "vad", "webrtcvad hears speech in digital silence", "reinstall webrtcvad-wheels"
        )
    hits = sum(detect(speech[i : i + frame_bytes]) for i in range(0, len(speech), frame_bytes))
    if hits == 0:
        return _fail(
            "vad", "webrtcvad hears no speech in a voiced test signal", "reinstall webrtcvad"
        )
    return _ok(
        "vad", f"webrtcvad aggressiveness {cfg.vad.aggressiveness}, {cfg.audio.frame_ms} ms frames"
    )


def _voice_like_pcm(rate_hz: int, duration_ms: int) -> bytes:
    """A 150 Hz buzz with harmonics, syllable-modulated: webrtcvad calls it voiced."""
    import numpy as np

    t = np.arange(rate_hz * duration_ms // 1000) / rate_hz
    sig = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 20))
    sig = sig * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t))
    return bytes((sig / np.abs(sig).max() * 12000).astype("<i2").tobytes())


def check_index(cfg: Config) -> CheckResult:
    backend = cfg.rag.backend
    if backend == "none":
        return _ok("index", "rag.backend = none (answers without a knowledge base)")
    if backend == "azure":
        return _ok(
            "index", f"Azure AI Search {cfg.rag.azure_index!r} (reachability: kiosk check --online)"
        )
    path = Path(cfg.rag.index_path)
    if not path.exists():
        return _fail("index", f"{path} does not exist", "kiosk index add DOCS_FOLDER")
    import sqlite3

    # Read-only: the doctor must not create tables in (or WAL files next to) a file it inspects.
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            tables = [
                r[0]
                for r in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE '%chunks%'"
                )
            ]
            table = "chunks" if "chunks" in tables else (tables[0] if tables else None)
            if table is None:
                return _fail("index", f"{path} has no chunks table", "kiosk index rebuild")
            count = conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
    except sqlite3.Error as exc:
        hint = "check permissions (the service runs as user kiosk)"
        if "not a database" in str(exc) or "malformed" in str(exc):
            hint = "kiosk index rebuild (or remove the file and add documents again)"
        return _fail("index", f"{path}: {_one_line(exc)}", hint)
    if count == 0:
        return _fail("index", f"{path} is empty (0 chunks)", "kiosk index add DOCS_FOLDER")
    return _ok("index", f"{path}: {count} chunks")


def configured_pins(cfg: Config) -> dict[str, int]:
    g = cfg.gpio
    pins: dict[str, int] = {}
    if g.led == "single":
        pins["led"] = g.led_pin
    elif g.led == "rgb":
        pins.update(zip(("led red", "led green", "led blue"), g.rgb_pins, strict=False))
    if g.button_pin:
        pins["button"] = g.button_pin
    if g.mute_switch_pin:
        pins["mute switch"] = g.mute_switch_pin
    pins.update({f"{state} led": pin for state, pin in g.state_pins.items()})
    return pins


def check_gpio(cfg: Config) -> CheckResult:
    try:
        from kiosk.hardware.factory import gpio_in_use, open_pin_factory
    except ImportError as exc:
        return _fail("gpio", f"cannot load gpiozero: {_one_line(exc)}", "pip install gpiozero")
    if not gpio_in_use(cfg.gpio):
        return _ok("gpio", "not used (gpio.enabled = false or nothing configured)")
    factory, description = open_pin_factory(cfg.gpio)
    if factory is None:
        return _fail(
            "gpio",
            description,
            "on a Pi: pip install lgpio (or set gpio.pin_factory); elsewhere gpio.enabled = false",
        )
    from gpiozero import InputDevice, OutputDevice

    pins = configured_pins(cfg)
    try:
        for role, pin in pins.items():
            device_class = InputDevice if role in ("button", "mute switch") else OutputDevice
            try:
                device_class(pin, pin_factory=factory).close()
            except Exception as exc:  # gpiozero raises many unrelated types for a bad pin
                return _fail(
                    "gpio",
                    f"{role} pin {pin}: {_one_line(exc)}",
                    "is the kiosk service (or another program) using it? otherwise fix gpio.* pins",
                )
    finally:
        factory.close()
    listed = ", ".join(f"{role} {pin}" for role, pin in pins.items())
    return _ok("gpio", f"{description}: {listed} available")


def check_audio(cfg: Config, printer: Printer) -> CheckResult:
    try:
        from kiosk.audio import devices
    except ImportError as exc:
        return _fail(
            "audio", f"cannot load audio support: {_one_line(exc)}", "pip install 'kiosk[audio]'"
        )
    try:
        found = devices.list_devices()
    except (KioskError, OSError, ImportError) as exc:
        return _fail(
            "audio", _one_line(exc), "install portaudio (apt install portaudio19-dev) and pyaudio"
        )
    for d in found:
        kinds = "/".join(
            k for k, n in (("in", d.max_input_channels), ("out", d.max_output_channels)) if n
        )
        printer.note(f"[{d.index}] {d.name} ({kinds}, {d.default_rate_hz:.0f} Hz)")
    if not found:
        return _fail(
            "audio", "no audio devices", "is the sound card connected? are you in group audio?"
        )
    parts: list[str] = []
    kind: Literal["input", "output"]
    for kind, spec, wanted, preferred in (
        ("input", cfg.audio.input_device, cfg.audio.capture_rate_hz, [16000, 48000, 32000, 8000]),
        ("output", cfg.audio.output_device, cfg.audio.playback_rate_hz, [24000, 48000, 16000]),
    ):
        try:
            device = devices.find_device(spec, kind)
            rate = devices.negotiate_rate(device, kind, [wanted] if wanted else preferred)
        except (KioskError, OSError) as exc:
            return _fail(
                "audio",
                f"{kind}: {_one_line(exc)}",
                f"set audio.{kind}_device to a name or index listed above",
            )
        if wanted and rate != wanted:
            return _fail(
                "audio",
                f"{kind} {device.name!r} does not open at {wanted} Hz",
                f"set audio.{'capture' if kind == 'input' else 'playback'}_rate_hz = 0",
            )
        parts.append(f"{kind} {device.name!r} at {rate} Hz")
    try:
        _open_streams_briefly(cfg)
    except (KioskError, OSError) as exc:
        return _fail(
            "audio",
            f"cannot open streams: {_one_line(exc)}",
            "is another program holding the device?",
        )
    return _ok("audio", "; ".join(parts))


def _open_streams_briefly(cfg: Config) -> None:
    from kiosk.audio.playback import PlaybackBuffer
    from kiosk.audio.pyaudio_io import PyAudioSink, PyAudioSource

    got_frame = threading.Event()
    source = PyAudioSource(
        cfg.audio.input_device,
        rate_hz=VAD_RATE_HZ,
        frame_ms=cfg.audio.frame_ms,
        on_frame=lambda _frame: got_frame.set(),
        capture_rate_hz=cfg.audio.capture_rate_hz,
    )
    sink = PyAudioSink(
        cfg.audio.output_device, PlaybackBuffer(), playback_rate_hz=cfg.audio.playback_rate_hz
    )
    try:
        source.start()
        sink.start()
        if not got_frame.wait(2.0):
            raise KioskError("the input stream delivered no audio within 2 s")
    finally:
        source.close()
        sink.close()


def run_audio_test(cfg: Config, duration_s: float = AUDIO_TEST_S) -> CheckResult:
    """Record ``duration_s`` from the configured input, play it back, report the level."""
    try:
        import numpy as np

        from kiosk.audio.playback import PlaybackBuffer
        from kiosk.audio.pyaudio_io import PyAudioSink, PyAudioSource
        from kiosk.audio.resample import Resampler
    except ImportError as exc:
        return _fail(
            "audio test",
            f"cannot load audio support: {_one_line(exc)}",
            "pip install 'kiosk[audio]'",
        )
    frames: list[bytes] = []
    lock = threading.Lock()

    def on_frame(frame: bytes) -> None:
        with lock:
            frames.append(frame)

    try:
        source = PyAudioSource(
            cfg.audio.input_device,
            rate_hz=VAD_RATE_HZ,
            frame_ms=cfg.audio.frame_ms,
            on_frame=on_frame,
            capture_rate_hz=cfg.audio.capture_rate_hz,
        )
        source.start()
        time.sleep(duration_s)  # a CLI tool, not the daemon: blocking is fine here
        source.close()
        with lock:
            pcm = b"".join(frames)
        samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
        if samples.size == 0:
            return _fail("audio test", "recorded nothing", "check audio.input_device")
        rms = math.sqrt(float(np.mean(samples**2))) / 32768
        peak = float(np.abs(samples).max()) / 32768
        level = 20 * math.log10(max(rms, 1e-9))
        peak_db = 20 * math.log10(max(peak, 1e-9))
        buffer = PlaybackBuffer()
        resampler = Resampler(VAD_RATE_HZ, 24000)
        buffer.write(resampler.process(pcm) + resampler.flush())
        sink = PyAudioSink(
            cfg.audio.output_device,
            buffer,
            volume=cfg.audio.output_volume,
            playback_rate_hz=cfg.audio.playback_rate_hz,
        )
        sink.start()
        deadline = time.monotonic() + duration_s + 2.0
        while not buffer.is_idle and time.monotonic() < deadline:
            time.sleep(0.05)
        sink.close()
    except (KioskError, OSError) as exc:
        return _fail("audio test", _one_line(exc), "check the devices listed by kiosk check")
    detail = (
        f"recorded {samples.size / VAD_RATE_HZ:.1f} s, level {level:.1f} dBFS"
        f" (peak {peak_db:.1f} dBFS), played back"
    )
    if level < SILENCE_DBFS:
        return _fail(
            "audio test",
            detail + ": silence",
            "check the microphone, its gain (alsamixer) and audio.input_device",
        )
    return _ok("audio test", detail)


# --- online ---------------------------------------------------------------------------


def _host_port(url: str) -> tuple[str, int, bool]:
    parts = urlsplit(url)
    secure = parts.scheme in ("wss", "https")
    return parts.hostname or "", parts.port or (443 if secure else 80), secure


async def _check_reachable(label: str, url: str, timeout_s: float) -> list[CheckResult]:
    host, port, secure = _host_port(url)
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout_s
        )
    except (OSError, TimeoutError) as exc:
        return [
            _fail(
                f"{label} dns",
                f"{host}: {_one_line(exc) or 'timed out'}",
                "check the network and DNS (resolvectl status)",
            )
        ]
    address = str(infos[0][4][0])
    results = [_ok(f"{label} dns", f"{host} -> {address}")]
    if not secure:
        return results
    try:
        context = ssl.create_default_context()
        _reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=context, server_hostname=host), timeout_s
        )
        version = writer.get_extra_info("ssl_object").version()
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await asyncio.wait_for(writer.wait_closed(), timeout_s)
    except ssl.SSLCertVerificationError as exc:
        return [
            *results,
            _fail(
                f"{label} tls", f"{host}: {exc.verify_message}", "is the clock right? (timedatectl)"
            ),
        ]
    except (OSError, TimeoutError, ssl.SSLError) as exc:
        return [
            *results,
            _fail(
                f"{label} tls",
                f"{host}:{port}: {_one_line(exc) or 'timed out'}",
                "check firewall / proxy",
            ),
        ]
    return [*results, _ok(f"{label} tls", f"{host}:{port} {version}, certificate valid")]


async def check_online(cfg: Config, timeout_s: float) -> list[CheckResult]:
    """DNS, TLS (for wss/https) and a websocket handshake to the Realtime endpoint; DNS and
    TLS to Azure AI Search when that is the backend. One result per step."""
    from kiosk.net.connection import WebsocketLink
    from kiosk.net.endpoints import realtime_endpoint

    try:
        endpoint = realtime_endpoint(cfg)
    except ConfigError as exc:
        return [_fail("realtime", str(exc), "fix realtime.endpoint")]
    results = await _check_reachable("realtime", endpoint.url, timeout_s)
    if all(r.ok for r in results):
        try:
            link = await WebsocketLink.open(endpoint, timeout_s=timeout_s, ping_interval_s=None)
            await link.close()
        except UpstreamRejected as exc:
            hint = "check the API key, realtime.deployment and the key's permissions"
            results.append(_fail("realtime websocket", _one_line(exc), hint))
        except KioskError as exc:
            hint = "is the endpoint up? check realtime.endpoint and the network"
            results.append(_fail("realtime websocket", _one_line(exc), hint))
        else:
            results.append(_ok("realtime websocket", f"handshake with {endpoint.redacted} ok"))
    if cfg.rag.backend == "azure":
        results += await _check_reachable("search", cfg.rag.azure_endpoint, timeout_s)
    return results


# --- driver ---------------------------------------------------------------------------


def run_checks(
    cfg_path: str | Path | None,
    *,
    online: bool = False,
    audio_test: bool = False,
    skip: Iterable[str] = (),
    out: TextIO | None = None,
    env: Mapping[str, str] | None = None,
    credentials_dir: Path = CREDENTIALS_DIR,
) -> int:
    """Run every check, print one line each, return the exit status (0 ok, 1 a check failed).

    Args:
        cfg_path: the config file (None = /etc/kiosk/kiosk.toml).
        online: also resolve, TLS-connect and websocket-handshake the endpoint.
        audio_test: also record 3 s and play it back.
        skip: check names to leave out (see ``CHECK_NAMES``).
        out: where lines go (default stdout).
        env: environment (default ``os.environ``).
        credentials_dir: ``CREDENTIALS_DIRECTORY`` when ``env`` has none and it exists.
    """
    printer = Printer(out or sys.stdout)
    env = credentials_env(os.environ if env is None else env, credentials_dir)
    skipped = set(skip)
    results: list[CheckResult] = []

    def report(r: CheckResult) -> None:
        results.append(r)
        printer.result(r)

    config_result, cfg = check_config(str(cfg_path) if cfg_path is not None else None, env)
    report(config_result)
    steps: list[tuple[str, Callable[[Config], CheckResult]]] = [
        ("credentials", lambda c: check_credentials(c, env)),
        ("audio", lambda c: check_audio(c, printer)),
        ("vad", check_vad),
        ("index", check_index),
        ("gpio", check_gpio),
    ]
    for name, step in steps:
        if name in skipped:
            report(_skip(name, f"--skip {name}"))
        elif cfg is None:
            report(_skip(name, "config invalid"))
        else:
            report(_guarded(name, functools.partial(step, cfg)))
    if online and cfg is not None:
        for r in asyncio.run(check_online(cfg, cfg.realtime.connect_timeout_s)):
            report(r)
    if audio_test and cfg is not None:
        report(_guarded("audio test", lambda: run_audio_test(cfg)))
    ran = [r for r in results if not r.skipped]
    failed = [r for r in ran if not r.ok]
    skipped = len(results) - len(ran)
    tail = f" ({skipped} skipped)" if skipped else ""
    printer.result(
        _ok("summary", f"all {len(ran)} checks passed{tail}")
        if not failed
        else _fail("summary", f"{len(failed)} of {len(ran)} checks failed{tail}")
    )
    return 1 if failed else 0


def _guarded(name: str, step: Callable[[], CheckResult]) -> CheckResult:
    """A check's unexpected exception becomes its ✗ line; the doctor itself never crashes."""
    try:
        return step()
    except Exception as exc:
        log.debug("check %s crashed", name, exc_info=True)
        return _fail(
            name, f"check crashed: {type(exc).__name__}: {_one_line(exc)}", "report this as a bug"
        )


def register(subparsers: Any, parent: argparse.ArgumentParser) -> None:
    """Add ``kiosk check`` to the CLI (``parent`` carries ``--config``)."""
    p = subparsers.add_parser(
        "check",
        parents=[parent],
        help="check config, credentials, audio, VAD, index and GPIO (the doctor)",
        description=(
            "Check that this board can run the kiosk: one line per check, ✓ or ✗ with a fix. "
            "Exit status: 0 all checks passed, 1 a check failed, 2 usage error."
        ),
    )
    p.add_argument(
        "--online", action="store_true", help="also test DNS, TLS and the websocket handshake"
    )
    p.add_argument(
        "--audio-test", action="store_true", help="record 3 s and play it back with its level"
    )
    p.add_argument(
        "--skip",
        action="append",
        default=[],
        choices=CHECK_NAMES[1:],
        metavar="CHECK",
        help=f"leave a check out (repeatable): {', '.join(CHECK_NAMES[1:])}",
    )
    p.set_defaults(func=_run_from_args)


def _run_from_args(args: argparse.Namespace) -> int:
    return run_checks(
        getattr(args, "config", None),
        online=args.online,
        audio_test=args.audio_test,
        skip=args.skip,
    )
