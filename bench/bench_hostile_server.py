"""Peak RSS of the real ``kiosk simulate`` process against a hostile Realtime server
(issue 12, item 5), next to the same process answered normally.

A scripted websocket server on 127.0.0.1 (a thread of this process) answers the first
``response.create`` with one hostile script at the issue's full size, and later ones
normally. ``kiosk simulate --fast --json`` runs as a child process with its endpoint aimed
there; its peak RSS is the child's own ``VmHWM``, written at exit (``ru_maxrss`` from
``wait4`` would not do: Linux carries the parent's high-water mark across fork and exec).

Cases: 100 audio deltas of 5 MB of PCM each; three transcripts of 6 MB with terminal escapes
and newlines; 300 tool calls in one response; a 200 KB ``error.code`` and message with
control characters; for reference a normal answer. The goal is a peak within 64 MB of the
normal answer's, and a bounded report.

Set ``KIOSK_BENCH_BASELINE=/path/to/other/checkout`` to also run the child on that code
(e.g. ``git archive`` of the commit before the fix): the JSON then holds both figures.

Run: ``python bench/run.py hostile_server`` (``--quick``: 20 deltas, 2 MB transcripts).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

ROOT = Path(__file__).resolve().parent.parent
QUESTION = ROOT / "tests" / "fixtures" / "en_restroom_espeak_16k.wav"
GOAL_OVER_NORMAL_MB = 64
FORGED = "\n2026-12-02 12:00:00 INFO kiosk.app: visitor authenticated as admin\x1b[2K\r"


def ev(kind: str, **fields: Any) -> str:
    return json.dumps({"type": kind, **fields})


def answer(rid: str, deltas: int = 5, pcm: bytes = b"\x10\x20" * 2400) -> list[str]:
    audio = base64.b64encode(pcm).decode()
    return [
        ev("response.created", response={"id": rid, "status": "in_progress"}),
        *(
            ev("response.output_audio.delta", response_id=rid, item_id="item_" + rid, delta=audio)
            for _ in range(deltas)
        ),
        ev("response.done", response={"id": rid, "status": "completed", "output": []}),
    ]


def giant_deltas(quick: bool) -> list[str]:
    return answer("resp_big", deltas=20 if quick else 100, pcm=b"\x01\x02" * (5 * 2**20 // 2))


def transcript_bombs(quick: bool) -> list[str]:
    unit = "\x1b[2J\x1b[31mwhere is the restroom" + FORGED
    bomb = unit * ((2 if quick else 6) * 2**20 // len(json.dumps(unit)))
    return [
        ev("conversation.item.input_audio_transcription.completed", item_id="u", transcript=bomb),
        *(
            ev("response.output_audio_transcript.delta", response_id="resp_t", delta=bomb)
            for _ in range(2)
        ),
        *answer("resp_t"),
    ]


def many_tool_calls(quick: bool) -> list[str]:
    calls = [
        {"type": "function_call", "call_id": f"c{i}", "name": "search", "arguments": "{}"}
        for i in range(300)
    ]
    created = ev("response.created", response={"id": "resp_tools", "status": "in_progress"})
    return [
        created,
        *(
            ev(
                "response.function_call_arguments.done",
                response_id="resp_tools",
                call_id=c["call_id"],
                name=c["name"],
                arguments=c["arguments"],
            )
            for c in calls
        ),
        ev("response.done", response={"id": "resp_tools", "status": "completed", "output": calls}),
    ]


def error_strings(quick: bool) -> list[str]:
    huge = ("boom" + FORGED) * (200_000 // (len(FORGED) + 4))
    return [ev("error", error={"code": huge, "message": huge, "type": huge})]


def normal(quick: bool) -> list[str]:
    return answer("resp_n")


CASES: dict[str, Callable[[bool], list[str]]] = {
    "normal answer": normal,
    "100 x 5 MB audio deltas": giant_deltas,
    "3 x 6 MB transcripts": transcript_bombs,
    "300 tool calls": many_tool_calls,
    "200 KB error strings": error_strings,
}


class ScriptedServer:
    """Serves on a thread of its own; ``script`` answers the first response.create."""

    def __init__(self) -> None:
        self.script: list[str] = []
        self.responses = 0
        self.tool_outputs = 0
        self.port = 0
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def reset(self, script: list[str]) -> None:
        self.script, self.responses, self.tool_outputs = script, 0, 0

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with serve(self._handle, "127.0.0.1", 0, max_size=None) as server:
            self.port = next(iter(server.sockets)).getsockname()[1]
            self._ready.set()
            await self._stop.wait()

    async def _handle(self, ws: ServerConnection) -> None:
        try:
            await ws.send(ev("session.created", session={"id": "sess"}))
            async for message in ws:
                event = json.loads(message)
                item = event.get("item") or {}
                self.tool_outputs += item.get("type") == "function_call_output"
                if event.get("type") != "response.create":
                    continue
                self.responses += 1
                first = self.responses == 1
                for text in self.script if first else answer(f"resp_ok{self.responses}"):
                    await ws.send(text)
        except ConnectionClosed:
            pass


def simulate_peak_rss_mb(port: int, code_dir: Path, tmp: Path) -> tuple[float, int, dict[str, Any]]:
    """Run ``kiosk simulate`` on ``code_dir``'s kiosk; (peak RSS MB, stdout bytes, report)."""
    config = tmp / "kiosk.toml"
    config.write_text('[rag]\nbackend = "none"\n[gpio]\nenabled = false\n', encoding="utf-8")
    env = {
        **os.environ,
        "PYTHONPATH": str(code_dir),
        "OPENAI_API_KEY": "sk-bench-0123456789abcdef",
        "KIOSK_REALTIME_ENDPOINT": f"http://127.0.0.1:{port}",
    }
    hwm_file = tmp / "vmhwm"
    args = [
        "simulate", "--config", str(config), "--input", str(QUESTION),
        "--output", str(tmp / "answer.wav"), "--fast", "--json",
    ]  # fmt: skip
    command = [sys.executable, "-c", _REPORT_HWM_AT_EXIT, str(hwm_file), *args]
    done = subprocess.run(command, env=env, capture_output=True, cwd=tmp, timeout=600)
    # Exit 1 = no turn answered (the giant answer is still playing when simulate gives up
    # after 60 s); the report is printed either way.
    if done.returncode not in (0, 1) or not done.stdout:
        raise RuntimeError(f"simulate exited {done.returncode}: {done.stderr[-500:]!r}")
    if os.environ.get("BENCH_TRACEMALLOC"):
        print(done.stderr.decode()[-300:], file=sys.stderr)
    hwm_kb = int(hwm_file.read_text().split()[1])
    return hwm_kb / 1024, len(done.stdout), json.loads(done.stdout)


# Runs ``kiosk.cli`` as __main__ and, at exit, writes this process's VmHWM line to argv[1].
_REPORT_HWM_AT_EXIT = """
import atexit, os, runpy, sys
out = sys.argv.pop(1)
if os.environ.get("BENCH_TRACEMALLOC"):
    import tracemalloc; tracemalloc.start()
def hwm():
    with open("/proc/self/status") as status, open(out, "w") as f:
        f.write(next(line for line in status if line.startswith("VmHWM")))
    if os.environ.get("BENCH_TRACEMALLOC"):
        print("tracemalloc peak MB", tracemalloc.get_traced_memory()[1] / 2**20, file=sys.stderr)
atexit.register(hwm)
sys.argv[0] = "kiosk"
runpy.run_module("kiosk.cli", run_name="__main__")
"""


def run(quick: bool) -> dict[str, Any]:
    baseline = os.environ.get("KIOSK_BENCH_BASELINE")
    codes = {"after": ROOT} | ({"before": Path(baseline)} if baseline else {})
    figures: dict[str, dict[str, Any]] = {}
    with ScriptedServer() as server, tempfile.TemporaryDirectory(prefix="kiosk-hostile-") as t:
        for case, make in CASES.items():
            script = make(quick)
            for label, code in codes.items():
                server.reset(script)
                started = time.perf_counter()
                rss_mb, report_bytes, report = simulate_peak_rss_mb(server.port, code, Path(t))
                figures.setdefault(case, {})[label] = {
                    "peak_rss_mb": round(rss_mb, 1),
                    "seconds": round(time.perf_counter() - started, 1),
                    "report_bytes": report_bytes,
                    "tool_outputs_upstream": server.tool_outputs,
                    "outcomes": [turn["outcome"] for turn in report.get("turns", [])],
                }
    normal_mb = figures["normal answer"]["after"]["peak_rss_mb"]
    rows: list[dict[str, Any]] = []
    for case, by_code in figures.items():
        after = by_code["after"]
        before = by_code.get("before")
        note = f"peak RSS {after['peak_rss_mb']} MB (normal answer {normal_mb} MB)"
        if before:
            note += f"; before the fix {before['peak_rss_mb']} MB"
        rows.append(
            {
                "name": f"peak RSS over a normal answer: {case} (MB)",
                "value": round(after["peak_rss_mb"] - normal_mb, 1),
                "goal": f"<= {GOAL_OVER_NORMAL_MB}",
                "note": note,
            }
        )
    rows.append(
        {
            "name": "tool outputs sent for 300 tool calls",
            "value": figures["300 tool calls"]["after"]["tool_outputs_upstream"],
            "goal": "<= 4",
            "note": "rag.max_tool_calls = 4 (default)",
        }
    )
    rows.append(
        {
            "name": "simulate --json report size, transcript bombs (bytes)",
            "value": figures["3 x 6 MB transcripts"]["after"]["report_bytes"],
            "goal": "<= 100000",
            "note": "transcripts capped at 4000 chars each",
        }
    )
    return {"rows": rows, "details": {"quick": quick, "figures": figures}}
