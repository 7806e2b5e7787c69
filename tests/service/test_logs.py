"""journald fields through a real datagram socket, readable stderr, redaction, turn lines."""

from __future__ import annotations

import io
import logging
import os
import socket
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiosk.core.bus import EventStream
from kiosk.core.events import (
    Citation,
    ConnectionChanged,
    ErrorReported,
    State,
    StateChanged,
    TurnEnded,
    TurnSummary,
    Usage,
)
from kiosk.errors import ConfigError
from kiosk.service.logs import (
    EventLogger,
    SecretRedactingFilter,
    encode_journal_fields,
    journal_available,
    setup_logging,
)

TIMEOUT_S = 2.0 * float(os.environ.get("KIOSK_TEST_TIMEOUT_FACTOR", "1"))
KEY = "sk-test-THIS-IS-THE-SECRET-KEY-0123456789"


def parse_journal(data: bytes) -> dict[str, str]:
    """Decode the native protocol the way journald does (both field forms)."""
    fields: dict[str, str] = {}
    i = 0
    while i < len(data):
        nl = data.index(b"\n", i)
        line = data[i:nl]
        if b"=" in line:
            key, _, value = line.partition(b"=")
            fields[key.decode()] = value.decode()
            i = nl + 1
        else:
            (size,) = struct.unpack("<Q", data[nl + 1 : nl + 9])
            fields[line.decode()] = data[nl + 9 : nl + 9 + size].decode()
            assert data[nl + 9 + size : nl + 10 + size] == b"\n"
            i = nl + 10 + size
    return fields


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[tuple[str, socket.socket]]:
    path = str(tmp_path / "journal.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(TIMEOUT_S)
    yield path, sock
    sock.close()


@pytest.fixture(autouse=True)
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for h in root.handlers:
        if h not in handlers:
            root.removeHandler(h)
            h.close()
    root.setLevel(level)


def test_encode_multiline_value_uses_length_prefixed_form() -> None:
    data = encode_journal_fields([("MESSAGE", "a\nb"), ("PRIORITY", "6")])
    assert data == b"MESSAGE\n" + struct.pack("<Q", 3) + b"a\nb\nPRIORITY=6\n"
    assert parse_journal(data) == {"MESSAGE": "a\nb", "PRIORITY": "6"}


def test_journal_record_carries_structured_kiosk_fields(journal: tuple[str, socket.socket]) -> None:
    path, sock = journal
    setup_logging("info", journal=True, journal_socket=path)
    logging.getLogger("kiosk.app").info(
        "state %s", "idle", extra={"kiosk": {"state": "idle", "turn_id": 7, "latency_ms": 850}}
    )
    fields = parse_journal(sock.recv(65536))
    assert fields["MESSAGE"] == "state idle"
    assert fields["PRIORITY"] == "6"
    assert fields["SYSLOG_IDENTIFIER"] == "kiosk"
    assert fields["LOGGER"] == "kiosk.app"
    assert fields["KIOSK_STATE"] == "idle"
    assert fields["KIOSK_TURN_ID"] == "7"
    assert fields["KIOSK_LATENCY_MS"] == "850"
    assert fields["CODE_FUNC"] == "test_journal_record_carries_structured_kiosk_fields"


def test_journal_exception_goes_into_message_and_warning_priority(
    journal: tuple[str, socket.socket],
) -> None:
    path, sock = journal
    setup_logging("info", journal=True, journal_socket=path)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("kiosk.app").error("task crashed", exc_info=True)
    fields = parse_journal(sock.recv(65536))
    assert fields["PRIORITY"] == "3"
    assert fields["MESSAGE"].startswith("task crashed\nTraceback")
    assert "RuntimeError: boom" in fields["MESSAGE"]


def test_journal_socket_missing_falls_back_to_stream(tmp_path: Path) -> None:
    out = io.StringIO()
    setup_logging("info", journal=True, journal_socket=str(tmp_path / "none.sock"), stream=out)
    logging.getLogger("kiosk.app").info("still logged")
    lines = out.getvalue().splitlines()
    assert "journald unreachable" in lines[0]
    assert lines[1] == "still logged"


def test_stderr_lines_are_readable_with_fields() -> None:
    out = io.StringIO()
    setup_logging("info", journal=False, stream=out, env={})
    logging.getLogger("kiosk.app").info("connected", extra={"kiosk": {"turn_id": 3}})
    line = out.getvalue().strip()
    assert line.endswith("INFO    kiosk.app: connected [turn_id=3]")
    assert line[:4].isdigit()  # timestamp when stderr is a terminal, not the journal


def test_stderr_under_journal_stream_has_no_timestamp() -> None:
    out = io.StringIO()
    setup_logging("info", journal=False, stream=out, env={"JOURNAL_STREAM": "1:2"})
    logging.getLogger("kiosk.app").warning("retrying")
    assert out.getvalue() == "WARNING kiosk.app: retrying\n"


def test_level_filters_debug_and_websockets_frames_stay_hidden_at_debug() -> None:
    out = io.StringIO()
    setup_logging("info", journal=False, stream=out, env={})
    logging.getLogger("kiosk.app").debug("hidden")
    assert out.getvalue() == ""
    setup_logging("debug", journal=False, stream=out, env={})
    logging.getLogger("kiosk.app").debug("shown")
    logging.getLogger("websockets.client").debug('> TEXT \'{"audio": "AAAA"}\'')
    assert "shown" in out.getvalue()
    assert "AAAA" not in out.getvalue()


def test_setup_twice_replaces_handler_instead_of_duplicating() -> None:
    out = io.StringIO()
    setup_logging("info", journal=False, stream=out, env={})
    setup_logging("info", journal=False, stream=out, env={})
    logging.getLogger("kiosk.app").info("once")
    assert out.getvalue().count("once") == 1


def test_unknown_level_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"service\.log_level"):
        setup_logging("chatty", journal=False, stream=io.StringIO())


def test_key_in_message_args_exception_and_fields_is_redacted(
    journal: tuple[str, socket.socket],
) -> None:
    path, sock = journal
    out = io.StringIO()
    setup_logging("debug", journal=True, journal_socket=path, secrets=[KEY], stream=out)
    lg = logging.getLogger("some.library")
    lg.info("connecting with Authorization: Bearer %s", KEY)
    try:
        raise ValueError(f"bad header {KEY}")
    except ValueError:
        lg.exception("handshake failed")
    lg.info("fields", extra={"kiosk": {"url": f"wss://x/?key={KEY}"}})
    payloads = [sock.recv(65536) for _ in range(3)]
    for payload in payloads:
        assert KEY.encode() not in payload
    assert "Bearer ***" in parse_journal(payloads[0])["MESSAGE"]
    assert "bad header ***" in parse_journal(payloads[1])["MESSAGE"]
    assert parse_journal(payloads[2])["KIOSK_URL"] == "wss://x/?key=***"


def test_redactor_ignores_short_and_empty_secrets() -> None:
    f = SecretRedactingFilter(["", "abc", KEY])
    assert f.redact("abc " + KEY) == "abc ***"


def test_redactor_added_key_is_redacted_after_reload() -> None:
    out = io.StringIO()
    redactor = setup_logging("info", journal=False, stream=out, env={})
    redactor.add(KEY)
    logging.getLogger("kiosk.app").info("key is %s", KEY)
    assert KEY not in out.getvalue()
    assert "key is ***" in out.getvalue()


def test_journal_available_requires_matching_stream_and_socket(tmp_path: Path) -> None:
    sock_path = tmp_path / "j.sock"
    sock_path.touch()
    st = os.fstat(2)
    good = f"{st.st_dev}:{st.st_ino}"
    assert journal_available({"JOURNAL_STREAM": good}, str(sock_path))
    assert not journal_available({"JOURNAL_STREAM": "0:0"}, str(sock_path))
    assert not journal_available({}, str(sock_path))
    assert not journal_available({"JOURNAL_STREAM": good}, str(tmp_path / "missing"))


def summary(**kw: object) -> TurnSummary:
    base: dict[str, object] = dict(
        turn_id=4,
        started_t_s=100.0,
        ended_t_s=104.25,
        trigger="vad",
        outcome="answered",
        user_speech_s=1.5,
        upstream_audio_s=1.8,
        response_latency_ms=812.4,
        transcript="where is the restroom",
        answer_transcript="second floor",
        citations=(Citation("faq#3", "FAQ"), Citation("map#1", "Map")),
        usage=Usage(
            input_text=300, input_audio=120, input_cached=64, output_text=40, output_audio=200
        ),
    )
    base.update(kw)
    return TurnSummary(**base)  # type: ignore[arg-type]


def test_turn_ended_is_one_info_line_with_fields(journal: tuple[str, socket.socket]) -> None:
    path, sock = journal
    setup_logging("info", journal=True, journal_socket=path)
    stream = EventStream()
    stream.subscribe(EventLogger())
    stream.publish(TurnEnded(summary()))
    fields = parse_journal(sock.recv(65536))
    assert fields["MESSAGE"] == (
        "turn 4 answered (vad): 4.2 s, latency 812 ms, tokens in 420 / out 240, 2 citations"
    )
    assert fields["PRIORITY"] == "6"
    assert fields["KIOSK_TURN_ID"] == "4"
    assert fields["KIOSK_DURATION_MS"] == "4250"
    assert fields["KIOSK_LATENCY_MS"] == "812"
    assert fields["KIOSK_TOKENS_IN"] == "420"
    assert fields["KIOSK_TOKENS_OUT_AUDIO"] == "200"
    assert fields["KIOSK_CITATIONS"] == "2"
    assert fields["KIOSK_CITATION_IDS"] == "faq#3,map#1"
    sock.setblocking(False)
    with pytest.raises(BlockingIOError):  # transcripts only at DEBUG
        sock.recv(65536)


def test_turn_line_carries_usd_at_the_models_prices() -> None:
    from kiosk.config import CostSettings
    from kiosk.prices import resolve_prices

    out = io.StringIO()
    setup_logging("info", journal=False, stream=out, env={"JOURNAL_STREAM": "x"})
    EventLogger(prices=resolve_prices("gpt-realtime-2.1-mini", CostSettings()))(
        TurnEnded(summary())
    )
    # USD per 1M tokens: text in (300 - 64 cached) at 0.60, audio in 120 at 10, cached 64 at
    # 0.30, text out 40 at 2.40, audio out 200 at 20 -> 5456.8 / 1M
    assert "tokens in 420 / out 240, est $0.0055, 2 citations" in out.getvalue()
    assert "usd=0.00546" in out.getvalue()  # the readable form rounds fields


def test_turn_line_names_the_rooms_learned_noise_floor(journal: tuple[str, socket.socket]) -> None:
    path, sock = journal
    setup_logging("info", journal=True, journal_socket=path)
    EventLogger()(TurnEnded(summary(noise_floor_dbfs=-47.26)))
    fields = parse_journal(sock.recv(65536))
    assert fields["MESSAGE"].endswith("2 citations, room -47 dBFS")
    assert fields["KIOSK_NOISE_FLOOR_DBFS"] == "-47.3"


def test_turn_transcripts_logged_only_at_debug() -> None:
    out = io.StringIO()
    setup_logging("info", journal=False, stream=out, env={})
    EventLogger()(TurnEnded(summary()))
    assert "restroom" not in out.getvalue()
    setup_logging("debug", journal=False, stream=out, env={})
    EventLogger()(TurnEnded(summary()))
    assert "where is the restroom" in out.getvalue()


def test_turn_without_latency_says_dash() -> None:
    out = io.StringIO()
    setup_logging("info", journal=False, stream=out, env={"JOURNAL_STREAM": "x"})
    EventLogger()(TurnEnded(summary(response_latency_ms=None, outcome="no_answer", citations=())))
    assert (
        "turn 4 no_answer (vad): 4.2 s, latency -, tokens in 420 / out 240, 0 citations"
        in out.getvalue()
    )
    assert "latency_ms" not in out.getvalue()


def test_state_change_connection_and_error_lines() -> None:
    out = io.StringIO()
    setup_logging("info", journal=False, stream=out, env={"JOURNAL_STREAM": "x"})
    lg = EventLogger()
    lg(StateChanged(t_s=1.0, old=State.IDLE, new=State.LISTENING, reason="speech", turn_id=2))
    lg(ConnectionChanged(t_s=1.0, connected=True, detail="wss://api.example"))
    lg(ErrorReported(t_s=2.0, message="upstream unreachable", code="timeout", turn_id=2))
    assert out.getvalue().splitlines() == [
        "INFO    kiosk.turns: = idle -> listening (speech) [state=listening turn_id=2]",
        "INFO    kiosk.turns: connected: wss://api.example [connected=1]",
        "WARNING kiosk.turns: upstream unreachable [turn_id=2 error_code=timeout]",
    ]


def test_stalled_journal_falls_back_to_stream_instead_of_blocking(
    journal: tuple[str, socket.socket],
) -> None:
    import time

    from kiosk.service.logs import JournaldHandler

    path, _never_read = journal
    out = io.StringIO()
    handler = JournaldHandler(path, fallback=out, send_timeout_s=0.02)
    handler.setFormatter(logging.Formatter("%(message)s"))
    lg = logging.getLogger("kiosk.stall")
    lg.addHandler(handler)
    lg.propagate = False
    try:
        started = time.monotonic()
        for i in range(24):  # beyond the kernel's datagram queue length
            lg.warning("line %d", i)
        # Only the first stalled send waits; later lines go straight to the stream.
        assert time.monotonic() - started < 0.5
    finally:
        lg.removeHandler(handler)
        handler.close()
    assert "journald unreachable" in out.getvalue()
    assert "line 23" in out.getvalue()
