"""Logging for the daemon: journald with structured fields under systemd, readable stderr otherwise.

Owns: :func:`setup_logging` (handlers on the root logger, level, library noise),
:class:`JournaldHandler` (the journal's native datagram protocol, spoken directly: no
systemd-python and so no C build on the Pi), :class:`SecretRedactingFilter` (installed on
every handler so an API key never reaches a line, even through an exception message), and
:class:`EventLogger` (the one subscriber that renders kiosk events into log lines: state
changes, connects, errors and one INFO line per finished turn).

Structured fields ride on records as ``extra={"kiosk": {"state": "idle", "turn_id": 3}}``;
the journal gets them as ``KIOSK_STATE=idle KIOSK_TURN_ID=3`` (``journalctl -u kiosk
KIOSK_TURN_ID=3``), stderr shows them as ``[state=idle turn_id=3]``.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import struct
import sys
import time
from collections.abc import Iterable, Mapping
from typing import Any, TextIO

from kiosk.core.events import (
    ConnectionChanged,
    ErrorReported,
    KioskEvent,
    StateChanged,
    ToolCallFinished,
    ToolCallStarted,
    TurnEnded,
    TurnStarted,
)
from kiosk.errors import ConfigError
from kiosk.prices import Prices, estimated_usd

log = logging.getLogger(__name__)

JOURNAL_SOCKET = "/run/systemd/journal/socket"
LEVELS = ("debug", "info", "warning", "error")
SYSLOG_IDENTIFIER = "kiosk"

# A journal datagram is capped by the socket's send buffer (~200 KiB by default); longer
# payloads need memfd passing. Nothing we log should be that long, so cut instead.
_MAX_FIELD_BYTES = 48 * 1024
# A datagram send blocks while journald's queue is full; a stuck journald must not freeze the
# event loop (and so the voice) for more than this. The record then goes to stderr.
SEND_TIMEOUT_S = 0.5
JOURNAL_RETRY_S = 5.0  # after a failed send, lines go to stderr this long before trying again
_FIELD_NAME = re.compile(r"[^A-Z0-9_]")
_MARKER = "_kiosk_handler"  # set on handlers we install, so setup_logging can replace them


def _syslog_priority(levelno: int) -> int:
    if levelno >= logging.CRITICAL:
        return 2
    if levelno >= logging.ERROR:
        return 3
    if levelno >= logging.WARNING:
        return 4
    if levelno >= logging.INFO:
        return 6
    return 7


def journal_field_name(key: str) -> str:
    """``turn_id`` -> ``KIOSK_TURN_ID``: journald accepts only ``[A-Z0-9_]``, no leading ``_``."""
    name = _FIELD_NAME.sub("_", key.upper()).lstrip("_")
    return ("KIOSK_" + name)[:64]


def kiosk_fields(record: logging.LogRecord) -> Mapping[str, object]:
    """The ``extra={"kiosk": {...}}`` mapping of ``record`` (empty if absent or not a mapping)."""
    fields = getattr(record, "kiosk", None)
    return fields if isinstance(fields, Mapping) else {}


def encode_journal_fields(fields: Iterable[tuple[str, str]]) -> bytes:
    """The journal native protocol: ``KEY=value\\n``, or ``KEY\\n<le64 length>value\\n`` when
    the value has a newline (systemd.io/JOURNAL_NATIVE_PROTOCOL)."""
    out = bytearray()
    for key, value in fields:
        data = value.encode("utf-8", "replace")[:_MAX_FIELD_BYTES]
        if b"\n" in data:
            out += key.encode() + b"\n" + struct.pack("<Q", len(data)) + data + b"\n"
        else:
            out += key.encode() + b"=" + data + b"\n"
    return bytes(out)


class JournaldHandler(logging.Handler):
    """Writes records to journald with MESSAGE, PRIORITY, CODE_* and KIOSK_* fields.

    If the journal socket cannot be reached, or stays full for ``send_timeout_s``, the record
    goes to stderr instead (one warning), so a journald restart or stall never loses logging,
    crashes it, or blocks the caller for long.
    """

    def __init__(
        self,
        socket_path: str = JOURNAL_SOCKET,
        *,
        identifier: str = SYSLOG_IDENTIFIER,
        fallback: TextIO | None = None,
        send_timeout_s: float = SEND_TIMEOUT_S,
    ) -> None:
        super().__init__()
        self._send_timeout_s = send_timeout_s
        self._socket_path = socket_path
        self._identifier = identifier
        self._fallback = fallback
        self._sock: socket.socket | None = None
        self._failed = False
        self._retry_at = 0.0  # monotonic time before which the journal is not tried again

    def fields(self, record: logging.LogRecord) -> list[tuple[str, str]]:
        """The journal fields for ``record`` (after this handler's filters ran)."""
        out = [
            ("MESSAGE", self.format(record)),
            ("PRIORITY", str(_syslog_priority(record.levelno))),
            ("SYSLOG_IDENTIFIER", self._identifier),
            ("LOGGER", record.name),
            ("CODE_FILE", record.pathname),
            ("CODE_LINE", str(record.lineno)),
            ("CODE_FUNC", record.funcName),
        ]
        if record.threadName and record.threadName != "MainThread":
            out.append(("THREAD_NAME", record.threadName))
        out.extend((journal_field_name(k), _field_text(v)) for k, v in kiosk_fields(record).items())
        return out

    def emit(self, record: logging.LogRecord) -> None:
        try:
            payload = encode_journal_fields(self.fields(record))
        except Exception:  # formatting bug in a caller's args: logging must not raise
            self.handleError(record)
            return
        if time.monotonic() >= self._retry_at:
            try:
                if self._sock is None:
                    self._sock = socket.socket(
                        socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC
                    )
                    self._sock.settimeout(self._send_timeout_s)
                self._sock.sendto(payload, self._socket_path)
                return
            except OSError as exc:
                # Each stalled send costs send_timeout_s: do not pay it for every line.
                self._retry_at = time.monotonic() + JOURNAL_RETRY_S
                if not self._failed:
                    self._failed = True
                    self._write_fallback(f"kiosk: journald unreachable ({exc}); logging to stderr")
        self._write_fallback(self.format(record))

    def _write_fallback(self, line: str) -> None:
        stream = self._fallback or sys.stderr
        stream.write(line + "\n")
        stream.flush()

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        super().close()


def _field_text(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.1f}" if abs(value) >= 10 else f"{value:.3g}"
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return str(value)


class ReadableFormatter(logging.Formatter):
    """``2026-05-01 12:00:00 INFO  kiosk.app: message [state=idle turn_id=3]``.

    With ``timestamps=False`` (stderr already captured by journald, which stamps lines)
    the time is left out.
    """

    def __init__(self, *, timestamps: bool = True) -> None:
        fmt = "%(levelname)-7s %(name)s: %(message)s"
        super().__init__(("%(asctime)s " + fmt) if timestamps else fmt, "%Y-%m-%d %H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = kiosk_fields(record)
        if fields:
            extra = " ".join(f"{k}={_field_text(v)}" for k, v in fields.items())
            first, newline, rest = text.partition("\n")
            text = f"{first} [{extra}]{newline}{rest}"
        return text


class SecretRedactingFilter(logging.Filter):
    """Replaces every known secret in a record's message, exception text and fields by ``***``.

    Install it on handlers (not loggers): handler filters see records from every logger,
    including third-party ones that might echo a URL or a header. Secrets shorter than 8
    characters are ignored: redacting "abc" everywhere would mangle logs and no real key
    is that short.
    """

    MIN_SECRET_CHARS = 8

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._secrets: tuple[str, ...] = ()
        self.set_secrets(secrets)

    def set_secrets(self, secrets: Iterable[str]) -> None:
        """Replace the list (a SIGHUP reload may bring a new key; keep the old one too)."""
        unique = {s for s in secrets if len(s) >= self.MIN_SECRET_CHARS}
        # Longest first, so a key that contains another is redacted whole.
        self._secrets = tuple(sorted(unique, key=len, reverse=True))

    def add(self, *secrets: str) -> None:
        self.set_secrets((*self._secrets, *secrets))

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, "***")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        try:
            message = record.getMessage()
        except Exception:  # bad %-args: let the handler report it
            return True
        redacted = self.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        fields = kiosk_fields(record)
        if fields:
            record.kiosk = {
                k: self.redact(v) if isinstance(v, str) else v for k, v in fields.items()
            }
        return True


class RedactingStream:
    """A text stream (stdout/stderr) that masks every secret of ``redactor`` in what is
    written: print(), argparse, tracebacks and log handlers all write through it."""

    def __init__(self, stream: TextIO, redactor: SecretRedactingFilter) -> None:
        self._stream = stream
        self._redactor = redactor

    @property
    def wrapped(self) -> TextIO:
        return self._stream

    def write(self, text: str) -> int:
        self._stream.write(self._redactor.redact(text))
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:  # flush, fileno, isatty, encoding...
        return getattr(self._stream, name)


# One redaction per process: log handlers and the wrapped stdout/stderr share it, so a key
# a SIGHUP brings is masked everywhere at once.
_PROCESS_REDACTOR = SecretRedactingFilter()


def install_redaction(secrets: Iterable[str] = ()) -> SecretRedactingFilter:
    """Mask ``secrets`` (and those added later) on stdout, stderr and every kiosk log line.

    Every ``kiosk`` command calls this first (``kiosk.cli.main``), with the keys from the
    environment and the credential files, before it loads settings or prints anything.
    Idempotent; returns the process's filter (``.add(key)`` for keys found later).
    """
    _PROCESS_REDACTOR.add(*secrets)
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is not None and not isinstance(stream, RedactingStream):
            setattr(sys, name, RedactingStream(stream, _PROCESS_REDACTOR))
    return _PROCESS_REDACTOR


def journal_available(env: Mapping[str, str], socket_path: str = JOURNAL_SOCKET) -> bool:
    """True when our stderr is connected to journald (``$JOURNAL_STREAM`` matches fd 2,
    as systemd.exec(5) recommends checking) and its native socket exists."""
    stream = env.get("JOURNAL_STREAM", "")
    if not stream or not os.path.exists(socket_path):
        return False
    try:
        st = os.fstat(2)
    except OSError:
        return False
    return stream == f"{st.st_dev}:{st.st_ino}"


def parse_level(level: str) -> int:
    """``"info"`` -> ``logging.INFO``. Raises ConfigError for an unknown name."""
    name = level.strip().lower()
    if name not in LEVELS:
        raise ConfigError("service.log_level", f"must be one of {', '.join(LEVELS)}, got {level!r}")
    return int(getattr(logging, name.upper()))


def set_level(level: str) -> None:
    """Change the level at run time (SIGHUP reload); library loggers stay capped."""
    levelno = parse_level(level)
    logging.getLogger().setLevel(levelno)
    # websockets logs every frame at DEBUG, and our frames carry base64 audio: never log
    # audio bytes, whatever the level.
    logging.getLogger("websockets").setLevel(max(levelno, logging.INFO))


def setup_logging(
    level: str = "info",
    *,
    journal: bool | None = None,
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
    journal_socket: str = JOURNAL_SOCKET,
    env: Mapping[str, str] | None = None,
) -> SecretRedactingFilter:
    """Install kiosk's handler on the root logger (replacing one installed before).

    Args:
        level: "debug" | "info" | "warning" | "error" (``--verbose`` means "debug").
        journal: True = journald, False = stderr, None = journald when stderr is the journal.
        secrets: strings that must never appear in a log line (API keys).
        stream: where readable lines go (default ``sys.stderr``).
        journal_socket: the journal's native socket (tests bind their own).
        env: environment for auto-detection (default ``os.environ``).

    Returns:
        The process's :class:`SecretRedactingFilter` (the one :func:`install_redaction`
        puts on stdout/stderr too); call ``.add(key)`` when a reload brings a new key.

    Raises:
        ConfigError: unknown level.
    """
    env = os.environ if env is None else env
    parse_level(level)
    if journal is None:
        journal = journal_available(env, journal_socket)
    out = stream if stream is not None else sys.stderr
    handler: logging.Handler
    if journal:
        handler = JournaldHandler(journal_socket, fallback=out)
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        handler = logging.StreamHandler(out)
        handler.setFormatter(ReadableFormatter(timestamps="JOURNAL_STREAM" not in env))
    redactor = _PROCESS_REDACTOR
    redactor.add(*secrets)
    handler.addFilter(redactor)
    setattr(handler, _MARKER, True)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _MARKER, False)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    set_level(level)
    return redactor


class EventLogger:
    """Renders kiosk events as log lines: the one subscriber that feeds journald.

    INFO: state changes, connects, and one line per finished turn with its duration,
    latency, tokens and citations as fields. WARNING: errors reported. DEBUG: tool calls
    and transcripts (never at INFO: what visitors say is not for the journal by default).
    """

    def __init__(
        self, logger: logging.Logger | None = None, *, prices: Prices | None = None
    ) -> None:
        self._log = logger or logging.getLogger("kiosk.turns")
        self._prices = prices  # None: the turn line carries tokens but no USD estimate

    def __call__(self, event: KioskEvent) -> None:
        lg = self._log
        match event:
            case StateChanged(old=old, new=new, reason=reason, turn_id=turn_id):
                lg.info(
                    "= %s -> %s%s",
                    old.value,
                    new.value,
                    f" ({reason})" if reason else "",
                    extra={"kiosk": {"state": new.value, "turn_id": turn_id}},
                )
            case TurnStarted(turn_id=turn_id, trigger=trigger):
                lg.debug(
                    "turn %d started by %s", turn_id, trigger, extra={"kiosk": {"turn_id": turn_id}}
                )
            case ToolCallStarted(turn_id=turn_id, name=name):
                lg.debug(
                    "turn %d: tool %s started", turn_id, name, extra={"kiosk": {"turn_id": turn_id}}
                )
            case ToolCallFinished(turn_id=turn_id, name=name, ok=ok, duration_ms=ms):
                lg.debug(
                    "turn %d: tool %s %s in %.0f ms",
                    turn_id,
                    name,
                    "ok" if ok else "failed",
                    ms,
                    extra={"kiosk": {"turn_id": turn_id, "tool": name, "tool_ms": round(ms)}},
                )
            case ConnectionChanged(connected=connected, detail=detail):
                lg.info(
                    "%s%s",
                    "connected" if connected else "disconnected",
                    f": {detail}" if detail else "",
                    extra={"kiosk": {"connected": int(connected)}},
                )
            case ErrorReported(message=message, code=code, turn_id=turn_id):
                fields: dict[str, object] = {"turn_id": turn_id}
                if code:
                    fields["error_code"] = code
                lg.warning("%s", message, extra={"kiosk": fields})
            case TurnEnded(summary=s):
                self._turn_ended(event)
                if s.transcript or s.answer_transcript:
                    lg.debug(
                        "turn %d transcript: heard %r, answered %r",
                        s.turn_id,
                        s.transcript,
                        s.answer_transcript,
                        extra={"kiosk": {"turn_id": s.turn_id}},
                    )
            case _:
                pass

    def _turn_ended(self, event: TurnEnded) -> None:
        s = event.summary
        duration_ms = max(0.0, (s.ended_t_s - s.started_t_s) * 1000)
        latency = f"{s.response_latency_ms:.0f} ms" if s.response_latency_ms is not None else "-"
        fields: dict[str, Any] = {
            "turn_id": s.turn_id,
            "outcome": s.outcome,
            "trigger": s.trigger,
            "duration_ms": round(duration_ms),
            "speech_ms": round(s.user_speech_s * 1000),
            "upstream_audio_ms": round(s.upstream_audio_s * 1000),
            "tokens_in": s.usage.input_total,
            "tokens_out": s.usage.output_total,
            "tokens_in_audio": s.usage.input_audio,
            "tokens_in_text": s.usage.input_text,
            "tokens_in_cached": s.usage.input_cached,
            "tokens_out_audio": s.usage.output_audio,
            "tokens_out_text": s.usage.output_text,
            "citations": len(s.citations),
            "engine": s.engine,
        }
        if s.response_latency_ms is not None:
            fields["latency_ms"] = round(s.response_latency_ms)
        if s.noise_floor_dbfs is not None:
            fields["noise_floor_dbfs"] = round(s.noise_floor_dbfs, 1)
        room = f", room {s.noise_floor_dbfs:.0f} dBFS" if s.noise_floor_dbfs is not None else ""
        if s.citations:
            fields["citation_ids"] = [c.chunk_id for c in s.citations]
        usd = ""
        if self._prices is not None:
            fields["usd"] = round(estimated_usd(s.usage, self._prices), 6)
            usd = f", est ${fields['usd']:.4f}"
        self._log.info(
            "turn %d %s (%s%s): %.1f s, latency %s, tokens in %d / out %d%s, %d citation%s%s",
            s.turn_id,
            s.outcome,
            s.trigger,
            ", answered on this device" if s.engine == "local" else "",
            duration_ms / 1000,
            latency,
            s.usage.input_total,
            s.usage.output_total,
            usd,
            len(s.citations),
            "" if len(s.citations) == 1 else "s",
            room,
            extra={"kiosk": fields},
        )
