"""A per-frame trace of the kiosk's echo guard through real PulseAudio (issue 10 item 4,
helper guardpa28): ``bench/pulse_aec.py``'s runs, with recorders on the daemon's echo parts.
A tuning tool (it looks inside; the figures are ``pulse_aec.py``'s own).

    python bench/pulse_trace.py --trace-dir /tmp/tr -- --split tuning --only tuning-echo-077 --modes guard

Per run, ``<trace-dir>/<mix>-<mode>.pkl``: the ``pulse_aec`` row, and

* ``played``: each block the speaker took (the echo reference's stamp): monotonic time, the
  stamp's clock and the sink's reported latency, samples, and whether the reference's
  timeline started afresh there (``reanchor``: a stamp off the running timeline);
* ``handovers``: each microphone hand-over (monotonic arrival, frames, reported input latency);
* ``frames``: each microphone frame the guard judged: its capture stamp and place on the
  microphone's timeline, the reference lined up with it (level, lag settled, lead), the
  microphone's level, the guard's bar, echo return, its loud / voiced / band / pitch verdicts,
  the suspicion, and the raw frame and its reference (PCM16, for offline lag checks).
"""

from __future__ import annotations

import argparse
import math
import pickle
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import pulse_aec  # noqa: E402

from kiosk.audio import echo_cancel as ec  # noqa: E402
from kiosk.audio.echo_level import EchoLevelTap  # noqa: E402
from kiosk.core import endpointing as ep  # noqa: E402
from kiosk.core.endpointing import frame_dbfs  # noqa: E402

TRACE: dict[str, list[Any]] = {"played": [], "handovers": [], "frames": [], "writes": [], "aec": [], "drops": []}


def _patch() -> None:
    played, ref_init = ec.EchoReference.played, ec.EchoReference.__init__

    def init(self: Any, clock: Any, latency_s: Any = lambda: 0.0, source_rate_hz: int = 24000) -> None:
        def latency() -> float:
            value = latency_s()
            self._traced_latency = value
            self._traced_stamp = self.clock() + value  # (played: clock() + latency, a moment later)
            return value

        ref_init(self, clock, latency, source_rate_hz)

    def traced_played(self: Any, pcm: bytes, earcon: bool = False) -> None:
        before = self._in_end_s
        mono = time.monotonic()
        played(self, pcm, earcon)
        n = len(pcm) // 2
        start = self._in_end_s - n / self._resampler.in_rate_hz
        lat = getattr(self, "_traced_latency", None)
        stamp = getattr(self, "_traced_stamp", None)  # (the stamp used, within microseconds)
        TRACE["played"].append({
            "mono": mono, "latency_s": lat, "n": n, "stamp": stamp, "start": start,
            "reanchor": not (math.isfinite(before) and abs(start - before) < 1e-6),
            "level": frame_dbfs(pcm) if pcm else -math.inf, "pcm": pcm, "reference": id(self),
        })

    ec.EchoReference.__init__, ec.EchoReference.played = init, traced_played  # type: ignore[method-assign]

    tap_process = EchoLevelTap.process

    def traced_tap(self: Any, frame: bytes, captured_at_s: float) -> bytes:
        out = tap_process(self, frame, captured_at_s)
        TRACE["frames"].append({
            "mono": time.monotonic(), "captured": captured_at_s,
            "at": self._mic.last_s, "lead_s": self._lead_s,
            "ref_dbfs": self.frame_reference_dbfs, "ref_span_dbfs": self.reference_dbfs,
            "settled": self.lag_settled, "realign": self.realignments,
            "delay_ms": None if self._delay is None else self._delay.settled_ms,
            "mic_dbfs": frame_dbfs(frame), "pcm": frame, "ref": self._pass.ref,
            "bands": self.frame_bands, "pitch": self.frame_pitch,
        })
        return out

    EchoLevelTap.process = traced_tap  # type: ignore[method-assign]

    process, wait = ep.Endpointer.process, ep.Endpointer._wait_for_onset
    in_bands, in_pitch = ep.Endpointer._loud_in_bands, ep.Endpointer._loud_in_pitch

    def traced_process(self: Any, frame: bytes, far: Any = None, level: Any = None, *cues: Any, **kw: Any) -> Any:
        self._traced = {}
        events = process(self, frame, far, level, *cues, **kw)
        row = TRACE["frames"][-1] if TRACE["frames"] and "far" not in TRACE["frames"][-1] else None
        if row is None:
            row = {"mono": time.monotonic(), "mic_dbfs": frame_dbfs(frame)}
            TRACE["frames"].append(row)
        row.update(
            far=far, echo_ref=self._echo_ref_dbfs, echo_return=self.echo_return_db,
            echo_return_now=self._echo_return_now(), guard_frames=self._guard_frames,
            period_echo=self._period_echo_db, guarded=self.guarded, tail_left=self._tail_left,
            room=self._room_dbfs, suspect_ms=self.suspected_speech_ms, close_loud=self._close_loud,
            onset_loud=self._onset_loud, in_speech=self._in_speech,
            events=[type(e).__name__ for e in events], **self._traced,
        )
        return events

    def traced_wait(self: Any, frame: bytes, voiced: bool, loud: bool, floor: float, guard: bool) -> Any:
        self._traced.update(voiced=voiced, loud=loud, floor=floor, guard=guard)
        return wait(self, frame, voiced, loud, floor, guard)

    def traced_bands(self: Any, level: float, onset_level: float) -> bool:
        got = in_bands(self, level, onset_level)
        self._traced["loud_bands"] = got
        return got

    def traced_pitch(self: Any, level: float, onset_level: float) -> bool:
        got = in_pitch(self, level, onset_level)
        self._traced["loud_pitch"] = got
        return got

    ep.Endpointer.process = traced_process  # type: ignore[method-assign]
    ep.Endpointer._wait_for_onset = traced_wait  # type: ignore[method-assign]
    ep.Endpointer._loud_in_bands = traced_bands  # type: ignore[method-assign]
    ep.Endpointer._loud_in_pitch = traced_pitch  # type: ignore[method-assign]

    _patch_canceller()

    from kiosk import daemon_devices as dd

    on_frames = dd.DaemonDevices._on_frames

    def traced_frames(self: Any, frames: list[bytes], arrived_s: float | None = None) -> None:
        src = self._source
        TRACE["handovers"].append({
            "mono": time.monotonic(), "arrived": arrived_s, "n": len(frames),
            "in_latency_s": None if src is None else src.input_latency_ms / 1000,
        })
        on_frames(self, frames, arrived_s)

    dd.DaemonDevices._on_frames = traced_frames  # type: ignore[method-assign]

    from kiosk.audio import pulse_stream as ps

    write = ps.PulseStream._write

    def traced_write(self: Any, stream: Any, nbytes: int, userdata: Any) -> None:
        self._connection.keep_thread_state()  # (before asking for the latency on libpulse's thread)
        TRACE["writes"].append({"mono": time.monotonic(), "nbytes": nbytes, "latency_s": self._latency_s()})
        write(self, stream, nbytes, userdata)

    ps.PulseStream._write = traced_write  # type: ignore[method-assign]


def _patch_canceller() -> None:
    """With ``audio.echo_cancel`` (modes speex, speex-later): per frame the canceller filtered,
    ``aec`` rows: its timeline and lag (place, lead, settled lag, realignments, relines, the
    timeline's moves / hold), SpeexDSP's linear levels, the main endpointer's trust and echo
    return and the pause's suspicion (main and raw guard), and the raw, reference and cleaned
    frames (PCM16)."""
    from kiosk import hearing

    clean, judge = hearing.EchoFrontEnd.clean, hearing.EchoFrontEnd.judge
    real_cancel = ec.EchoCanceller.process
    taken: dict[str, Any] = {}

    def cancel(self: Any, frame: bytes, captured_at_s: float) -> bytes:
        if isinstance(self, EchoLevelTap):
            return real_cancel(self, frame, captured_at_s)
        take = self.reference.take_marked

        def take_marked(start_s: float, n: int) -> Any:
            got = take(start_s, n)
            taken["ref"], taken["earcon"] = got[0], got[1]
            return got

        self.reference.take_marked = take_marked
        try:
            return real_cancel(self, frame, captured_at_s)
        finally:
            del self.reference.take_marked

    def traced_clean(self: Any, frame: bytes, captured_at_s: float | None) -> Any:
        taken.clear()
        got = clean(self, frame, captured_at_s)
        taken.update(raw=frame, out=got[0], captured=captured_at_s)
        return got

    def traced_judge(self: Any, frame: bytes, level_dbfs: float | None) -> Any:
        events = judge(self, frame, level_dbfs)
        aec, e = self.echo_canceller, self.endpointer
        if aec is None:
            return events
        delay = aec._delay
        raw = self.raw_guard
        TRACE["aec"].append({
            "active": aec.active, "guarded": e.guarded, "reference": id(aec.reference),
            "mono": time.monotonic(), "captured": taken.get("captured"), "at": aec._mic.last_s,
            "lead_s": aec._lead_s, "moves": aec._mic.moves, "held": aec._mic.held,
            "settled_ms": None if delay is None else delay.settled_ms,
            "settled": None if delay is None else delay.settled,
            "realign": aec.realignments, "relines": aec.relines,
            "restamps": aec.reference.restamps, "linear": aec.linear_levels,
            "ref_span_dbfs": aec.reference_dbfs, "trusted": e.echo_cancelled_well,
            "echo_max": e._echo_max_db, "echo_return": e.echo_return_db,
            "suspect_ms": e.suspected_speech_ms,
            "raw_suspect_ms": None if raw is None else raw.suspected_speech_ms,
            "suspect_total_ms": self.suspected_speech_ms,
            "events": [type(x).__name__ for x in events],
            "raw": taken.get("raw"), "ref": taken.get("ref"), "out": taken.get("out"),
            "earcon": taken.get("earcon"),  # (the daemon's mark: lobby_aec_replay.earcon_spans finds it again)
        })
        return events

    dropped = ec.EchoReference.dropped

    def traced_dropped(self: Any, seconds: float) -> None:
        TRACE["drops"].append({"mono": time.monotonic(), "clock": self.clock(), "seconds": seconds, "reference": id(self)})
        dropped(self, seconds)

    ec.EchoReference.dropped = traced_dropped  # type: ignore[method-assign]
    ec.EchoCanceller.process = cancel  # type: ignore[method-assign]
    hearing.EchoFrontEnd.clean = traced_clean  # type: ignore[method-assign]
    hearing.EchoFrontEnd.judge = traced_judge  # type: ignore[method-assign]


class _KeptDir:
    """tempfile.TemporaryDirectory for pulse_aec: kept (the room's recording of the speaker)."""

    base: Path = Path("/tmp")
    count = 0

    def __init__(self, prefix: str = "") -> None:
        _KeptDir.count += 1
        self.path = _KeptDir.base / f"run-{_KeptDir.count}"
        self.path.mkdir(parents=True, exist_ok=True)

    def __enter__(self) -> str:
        return str(self.path)

    def __exit__(self, *exc: Any) -> None:
        for name in ("audio.npy", "clip.npy", "ir.npy"):
            (self.path / name).unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trace-dir", type=Path, required=True)
    p.add_argument("--repeat", type=int, default=1, help="run each mix this many times")
    p.add_argument("--keep", action="store_true", help="keep each run's speaker recording")
    p.add_argument("rest", nargs=argparse.REMAINDER, help="pulse_aec.py's arguments, after --")
    args = p.parse_args(argv)
    args.trace_dir.mkdir(parents=True, exist_ok=True)
    _patch()
    run_one, build_specs = pulse_aec.run_one, pulse_aec.build_specs
    pulse_aec.build_specs = lambda *a, **kw: build_specs(*a, **kw) * args.repeat  # type: ignore[assignment]
    seen: dict[str, int] = {}

    async def traced_run_one(mix: Any, mode: str, *a: Any, **kw: Any) -> dict[str, Any]:
        for v in TRACE.values():
            v.clear()
        row = await run_one(mix, mode, *a, **kw)
        name = f"{mix.id}-{mode}" + (f"-pipe{kw['pipe']}" if "pipe" in kw else "")  # (rig45: not main's pipe)
        k = seen.get(name, 0) + 1
        while (args.trace_dir / f"{name}-{k}.pkl").exists():  # (one seed per call into one folder: keep the earlier)
            k += 1
        seen[name] = k
        with open(args.trace_dir / f"{name}-{k}.pkl", "wb") as f:
            pickle.dump({"row": row, "run": _KeptDir.count, **TRACE}, f)
        return row

    pulse_aec.run_one = traced_run_one  # type: ignore[assignment]
    if args.keep:
        import types

        _KeptDir.base = args.trace_dir
        pulse_aec.tempfile = types.SimpleNamespace(TemporaryDirectory=_KeptDir)  # type: ignore[assignment]
    rest = [a for a in args.rest if a != "--"]
    return pulse_aec.main(rest)


if __name__ == "__main__":
    sys.exit(main())
