"""The ``kiosk`` command.

Exit codes: 0 ok; 1 a runtime failure (e.g. a check failed, the daemon crashed);
2 bad usage or configuration (one line on stderr naming the key); 130 interrupted.
"""

from __future__ import annotations

import sys

if sys.argv[1:2] == ["run"]:  # the daemon: no OpenSSL (its websocket is a child's), see there
    from kiosk.service.memory import import_asyncio_without_openssl

    import_asyncio_without_openssl()

import argparse
import asyncio
import json
import logging
from pathlib import Path
from typing import Any

from kiosk import __version__
from kiosk.config import PROVIDERS
from kiosk.errors import ConfigError, KioskError
from kiosk.settings import load_settings
from kiosk.textsafe import printable

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
# Turn outcomes in which the visitor heard an answer (see TurnSummary.outcome).
ANSWERED = frozenset({"answered", "interrupted", "stopped_by_button"})
# A turn the visitor continued before hearing its answer is judged by the turn that follows.
CONTINUED = "continued"

log = logging.getLogger("kiosk")


def _setup_logging(args: argparse.Namespace, default: str = "warning") -> None:
    level = (
        "debug"
        if getattr(args, "verbose", False)
        else (getattr(args, "log_level", None) or default)
    )
    try:
        from kiosk.service.logs import setup_logging

        setup_logging(level)
    except ImportError:  # pragma: no cover
        logging.basicConfig(level=level.upper(), format="%(levelname)s %(name)s: %(message)s")


def cmd_simulate(args: argparse.Namespace) -> int:
    from kiosk.audio.wav import AudioFileError
    from kiosk.simulate import run_simulation

    _setup_logging(args)
    try:
        cfg = load_settings(args, require_key=False)
    except ConfigError as exc:
        print(f"kiosk: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        report = asyncio.run(
            run_simulation(
                cfg, [Path(p) for p in args.input], Path(args.output), fast=args.fast, echo_db=args.echo_db
            )
        )
    except (AudioFileError, ConfigError) as exc:
        print(f"kiosk: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KioskError as exc:
        print(f"kiosk: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        _print_report(report)
    return EXIT_OK if simulation_succeeded(report) else EXIT_FAILURE


def simulation_succeeded(report: dict[str, Any]) -> bool:
    """Every turn heard was answered, and there was at least one (the rule behind exit 1)."""
    turns = report["turns"]
    outcomes = [t["outcome"] for t in turns]
    return (
        bool(outcomes)
        and all(o in ANSWERED or o == CONTINUED for o in outcomes)
        and outcomes[-1] != CONTINUED
    )


def _print_report(report: dict[str, Any]) -> None:
    for note in report.get("notes", []):
        print(f"note: {note}")
    for t in report["turns"]:
        latency = t["response_latency_ms"]
        print(
            f"turn {t['turn_id']} ({t['trigger']}): {t['outcome']}; speech {t['user_speech_s']:.2f} s, "
            f"upstream {t['upstream_audio_s']:.2f} s, latency "
            + (f"{latency:.0f} ms" if latency is not None else "-")
            + ("" if report.get("engine") == "local" else f", est ${t.get('usd', 0.0):.4f}")
        )
        # All of these came from outside (server, documents): one printable line each.
        if t["transcript"]:
            print(f"  heard:    {printable(t['transcript'])}")
        if t["answer_transcript"]:
            print(f"  answered: {printable(t['answer_transcript'])}")
        for c in t["citations"]:
            where = f"[{c['chunk_id']}] {c['title']} ({c['source']})"
            print(f"  source:   {printable(where, 500)}")
    tokens = report["tokens"]
    local = report.get("engine") == "local"
    if local:
        cost = "0 tokens (answered on this device by the local engine: no cost)"
    else:
        cost = (
            f"tokens in {tokens['input_text'] + tokens['input_audio']}, "
            f"out {tokens['output_text'] + tokens['output_audio']}, "
            f"est ${report.get('usd', 0.0):.4f} ({report.get('priced_as', '?')} prices)"
        )
    sent = "heard on this device" if local else "audio sent"
    print(
        f"{len(report['turns'])} turn(s), {report['connections_opened']} connection(s), "
        f"{report['upstream_audio_s']:.2f} s {sent}, {report['answer_audio_s']:.2f} s answer "
        f"written to {report['output']}; {cost}"
    )


def cmd_run(args: argparse.Namespace) -> int:
    from kiosk.daemon import run_daemon

    return run_daemon(args)


def cmd_fake_server(args: argparse.Namespace) -> int:
    from kiosk.testing.fake_realtime import require_test_extra, serve_until_signalled

    _setup_logging(args, default="info")
    try:
        require_test_extra()
        # SIGINT -> 130, SIGTERM -> 0, even when started with SIGINT ignored (a background job)
        return asyncio.run(
            serve_until_signalled(port=args.port, dialect=args.dialect, mode=args.mode)
        )
    except KeyboardInterrupt:  # Ctrl-C before the handlers were in place
        return 130
    except KioskError as exc:
        print(f"kiosk: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except OSError as exc:  # the port is taken, or not ours to bind: one line, no traceback
        print(
            f"kiosk: fake-server cannot listen on 127.0.0.1:{args.port}: {exc.strerror or exc}",
            file=sys.stderr,
        )
        return EXIT_FAILURE


# Commands whose modules register themselves (``register(subparsers, common)``).
COMMAND_MODULES = ("kiosk.rag.cli", "kiosk.service.check", "kiosk.report")
# Commands defined here: running one needs none of COMMAND_MODULES.
OWN_COMMANDS = frozenset({"simulate", "run", "fake-server", "version"})


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``kiosk`` argument parser. ``command``, when it is one of this module's own
    commands, is the one about to run: the other modules' commands are then left out, so
    that the daemon does not keep ``kiosk check``/``index``/``report``'s code and imports
    (csv, the check modules) in memory for its whole life (~0.5 MB resident)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        metavar="PATH",
        default=None,
        help="settings file (default /etc/kiosk/kiosk.toml)",
    )
    common.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    common.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        default=None,
        help="log level (default: warning; service.log_level for run)",
    )

    endpoint = argparse.ArgumentParser(add_help=False)
    endpoint.add_argument("--provider", choices=PROVIDERS, help="override realtime.provider")
    endpoint.add_argument(
        "--endpoint",
        metavar="URL",
        help="override realtime.endpoint (base URL; for voicerag the full ws(s)://host/realtime URL)",
    )
    endpoint.add_argument(
        "--index",
        metavar="PATH",
        help="override rag.index_path (default: <state dir>/index.sqlite, see `kiosk check`)",
    )

    parser = argparse.ArgumentParser(
        prog="kiosk",
        description="Voice kiosk: local VAD, the Realtime API and a knowledge base.",
        epilog="Exit codes: 0 ok, 1 failure, 2 bad usage or configuration, 130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"kiosk {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser(
        "run",
        parents=[common, endpoint],
        help="run the kiosk daemon on real devices",
        description="Run the kiosk: listen on the microphone, answer through the speaker, show "
        "the state on the LEDs. This is what kiosk.service starts (Type=notify: READY=1 once "
        "config, devices and index are up; SIGHUP reloads the settings; SIGTERM stops). Exit "
        "codes: 0 stopped by SIGTERM, 1 failure, 2 bad configuration, 130 interrupted (SIGINT).",
    )
    p.add_argument("--input-wav", metavar="FILE", help="use a WAV file as the microphone (testing)")
    p.add_argument(
        "--exit-at-end",
        action="store_true",
        help="with --input-wav: stop (exit 0) once the file is over and its last turn is done",
    )
    p.add_argument(
        "--output-wav", metavar="FILE", help="write the speaker's audio to a WAV (testing)"
    )
    p.set_defaults(func=cmd_run)

    p = sub.add_parser(
        "simulate",
        parents=[common, endpoint],
        help="run the pipeline with WAV files as microphone and speaker",
        description="Run the kiosk pipeline with WAV files as microphone and speaker. With no "
        "API key configured, the on-device local engine answers from the knowledge base. Exit "
        "codes: 0 every turn heard was answered; 1 a turn got no answer, nothing was heard, or "
        "the endpoint failed; 2 bad usage, audio file or configuration.",
    )
    p.add_argument(
        "--input", action="append", required=True, metavar="WAV", help="question audio (repeatable)"
    )
    p.add_argument(
        "--output", required=True, metavar="WAV", help="answer audio written here (24 kHz mono)"
    )
    p.add_argument("--json", action="store_true", help="print a machine-readable report")
    p.add_argument("--fast", action="store_true", help="skip the waiting while nobody speaks")
    p.add_argument(
        "--echo-db",
        type=float,
        metavar="DB",
        help="simulate a room: the speaker's sound reaches the mic attenuated by DB (e.g. -20)",
    )
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser(
        "fake-server",
        help="serve the fake Realtime server (a test tool: needs the test extra)",
        description="Serve the fake Realtime server the tests use on ws://127.0.0.1:PORT: it "
        "speaks the Realtime event protocol, validates what a client sends, and answers with "
        "scripted, synthetic audio. A test tool, never an answer engine. Point a kiosk at it "
        "with --endpoint http://127.0.0.1:PORT. Exit codes: 130 when interrupted.",
    )
    p.add_argument("--port", type=int, default=8765, help="loopback TCP port (default 8765)")
    p.add_argument(
        "--dialect",
        choices=["ga", "beta"],
        default="ga",
        help="protocol: GA (openai, azure) or the beta/preview shape (azure-preview, voicerag)",
    )
    p.add_argument(
        "--mode",
        choices=["direct", "voicerag"],
        default="direct",
        help="direct: the client runs the tools; voicerag: the server runs them like a VoiceRAG "
        "middle tier and sends extension.middle_tier_tool_response",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        default=None,
        help="log level (default: info)",
    )
    p.set_defaults(func=cmd_fake_server)

    p = sub.add_parser("version", help="print the version", description="Print the version.")
    p.set_defaults(func=lambda args: print(f"kiosk {__version__}") or EXIT_OK)

    for module in () if command in OWN_COMMANDS else COMMAND_MODULES:
        try:
            register = __import__(module, fromlist=["register"]).register
        except (ImportError, AttributeError):
            continue
        register(sub, common)
    return parser


def install_key_redaction() -> None:
    """Mask every configured API key on stdout, stderr and the log, for every command, before
    anything runs (a server or library may echo a key in an error message)."""
    from kiosk.api_keys import secrets_to_redact
    from kiosk.service.logs import install_redaction

    install_redaction(secrets_to_redact())


def main(argv: list[str] | None = None) -> int:
    install_key_redaction()
    words = sys.argv[1:] if argv is None else argv
    # The parser has no option that takes a value before the command: its first word is it.
    parser = build_parser(next((w for w in words if not w.startswith("-")), None))
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130
    except ConfigError as exc:
        print(f"kiosk: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
