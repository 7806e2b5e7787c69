"""Replays the in-process canceller's barge-in and self-pause decisions (issue 10, item 4) on
recorded front-end inputs, so that pause rules are compared on the very same audio.

``record`` drives the lobby corpus's echo and barge-in mixes through the bench's own driver
(``lobby_driver.run_mix``: the real pipeline, fast clock) and keeps what reaches the canceller:
every microphone frame with its capture time, every block the speaker played with its audible
time, and per frame whether the guard was up and the kiosk speaking (plus endpointer resets).
``replay`` runs those inputs through a fresh canceller, voice detector and endpointer of
whichever ``kiosk`` is importable (``PYTHONPATH=<an archive of another commit>`` to compare)
and pauses as the pipeline does (SPEAKING and ``suspected_speech_ms >= vad.barge_in_pause_ms``).

    python bench/lobby_aec_replay.py record --seed 3 --mode speex-warm   # -> bench/.cache/lobby/
    python bench/lobby_aec_replay.py replay bench/.cache/lobby/aec-replay-*.pkl --out x.json

Exact up to the first pause: after it the recorded speaker is the recording run's (held or
not). Tuning voices only (never decide on the held-out split; ``--split heldout --mix ID`` records
single held-out mixes already examined, which then count as tuning material). Frame time:
"speaker silent" is the next speaker block after the pause, as in
``bench_lobby.bargein_delay(log, paced=False)``. Mode "speex-later" records the earlier answer
the pipeline hears first (``lobby_driver.warm_up_pipeline``); the replay hears it too and
counts its frames that would have paused an answer (``warm_suspect``, as ``RunLog.warm_self``
without the lead before it plays).
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import math
import pickle
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_lobby as bl  # noqa: E402
import lobby_driver as ld  # noqa: E402
from lobby_corpus import build_specs  # noqa: E402

CACHE = HERE / ".cache" / "lobby"
WARM_S = {"speex": 0.0, "speex-warm": 3.0, ld.LATER_MODE: 3.0}


def record(split: str, seed: int | None, mode: str, mixes: set[str] | None = None) -> list[dict[str, Any]]:
    from kiosk.audio import echo_cancel as ec
    from kiosk.core import endpointing as ep
    from kiosk.core.events import State

    log: list[tuple[Any, ...]] = []
    pipelines: list[Any] = []
    real_played, real_cancel, real_process = ec.EchoReference.played, ec.EchoCanceller.process, ep.Endpointer.process
    real_reset, real_init = ep.Endpointer.reset, ld.KioskPipeline.__init__
    real_warm = ld.warm_up_pipeline

    def canceller_s(part: Any) -> bool:  # (not the raw guard's tap: an EchoCanceller too)
        canceller = pipelines[-1].echo_canceller if pipelines else None
        return canceller is None or part is canceller or part is canceller.reference

    def played(self: Any, pcm: bytes, earcon: bool = False) -> None:
        if canceller_s(self):
            log.append(("play", self.clock() + self._latency_s(), bytes(pcm), earcon))
        real_played(self, pcm, earcon)

    def cancel(self: Any, frame: bytes, captured_at_s: float) -> bytes:
        if canceller_s(self):
            log.append(("mic", bytes(frame), captured_at_s))
        return real_cancel(self, frame, captured_at_s)

    def main_s(endpointer: Any) -> bool:  # (not the raw guard's endpointer)
        return not pipelines or endpointer is pipelines[-1].endpointer

    def process(self: Any, *args: Any, **kw: Any) -> Any:
        speaking = bool(pipelines) and pipelines[-1].machine.state is State.SPEAKING
        if main_s(self):
            log.append(("frame", self.guarded, speaking))
        return real_process(self, *args, **kw)

    def reset(self: Any) -> None:
        if main_s(self):
            log.append(("reset",))
        real_reset(self)

    def init(self: Any, *args: Any, **kw: Any) -> None:
        real_init(self, *args, **kw)
        pipelines.append(self)

    def warm(*args: Any, **kw: Any) -> int:
        log.append(("playing",))  # the earlier answer plays (after the lead: its first "play")
        heard = real_warm(*args, **kw)
        log.append(("start",))  # the run's own frames from here on
        return heard

    ec.EchoReference.played, ec.EchoCanceller.process = played, cancel  # type: ignore[method-assign]
    ep.Endpointer.process, ep.Endpointer.reset = process, reset  # type: ignore[method-assign]
    ld.KioskPipeline.__init__ = init  # type: ignore[method-assign]
    ld.warm_up_pipeline = warm
    cfg = bl.load_bench_config()
    runs: list[dict[str, Any]] = []

    async def main() -> None:
        from kiosk.testing.fake_realtime import FakeRealtimeServer

        async with FakeRealtimeServer("ga") as server:
            for mix in build_specs(split, seed=seed):
                if mix.kind not in ("echo", "bargein") or (mixes and mix.id not in mixes):
                    continue
                log.clear()
                run = await ld.run_mix(mix, cfg, server, aec=True, warm_s=WARM_S[mode], guard=mode)
                runs.append(
                    {"mix": f"{mix.id}/seed{seed}", "mode": mode, "kind": mix.kind, "echo_db": mix.echo_db,
                     "onset_s": run.interruption_onset_s, "inputs": list(log),
                     "recorded_delay_s": bl.bargein_delay(run, False), "recorded_self": bl.self_interruptions(run)}
                )  # fmt: skip
                print(runs[-1]["mix"], mode, mix.echo_db, runs[-1]["recorded_delay_s"], file=sys.stderr)

    try:
        asyncio.run(main())
    finally:
        ec.EchoReference.played, ec.EchoCanceller.process = real_played, real_cancel  # type: ignore[method-assign]
        ep.Endpointer.process, ep.Endpointer.reset = real_process, real_reset  # type: ignore[method-assign]
        ld.KioskPipeline.__init__ = real_init  # type: ignore[method-assign]
        ld.warm_up_pipeline = real_warm
    return runs


def pulse_inputs(trace: dict[str, Any], name: str = "") -> dict[str, Any]:
    """A run traced through PulseAudio (``bench/pulse_trace.py``, modes speex / speex-later:
    every microphone frame with its capture stamp and the raw PCM, every block the speaker
    played with its stamp, each drop) as :func:`replay` takes it. Times are the monotonic
    clock's; the onset is the room's labelled one (``onset_mono``). "speaking" is taken as
    "the speaker plays" (the guard up): the pipeline's own state was not traced."""
    events: list[tuple[float, int, tuple[Any, ...]]] = []
    frames = trace["aec"]
    # Only the canceller's reference (the raw guard's tap has one too, fed the same blocks).
    ours = frames[0].get("reference") if frames else None
    played = [p for p in trace["played"] if p.get("reference", ours) == ours]
    if ours is None:  # (older traces: each block twice, the canceller's first)
        played = [p for k, p in enumerate(played) if not (k and p["pcm"] == played[k - 1]["pcm"] and p["mono"] - played[k - 1]["mono"] < 0.002)]
    for k, p in enumerate(played):
        # Where the block went (its stamp, or where the stretch continued): played at it, it
        # goes there again (the stamp itself is traced only to within microseconds).
        events.append((p["mono"], k, ("play", p["start"], p["pcm"], False)))
    for k, d in enumerate(trace.get("drops", [])):
        if d.get("reference", ours) == ours:
            events.append((d["mono"], k, ("drop", d["seconds"], d["clock"])))
    # Each frame when its hand-over came (the canceller takes its reference right then: the
    # speaker's blocks played before it, not those played while the frame was judged).
    came = [h["mono"] for h in trace["handovers"] for _ in range(h["n"])]
    came = came if len(came) == len(frames) else [f["mono"] for f in frames]
    for k, f in enumerate(frames):
        events.append((came[k], k, ("mic", f["raw"], f["captured"])))
        events.append((came[k], k, ("frame", f["guarded"], f["guarded"])))
    events.sort(key=lambda e: (e[0], e[1]))
    row = trace["row"]
    first = frames[0]["captured"] if frames else 0.0
    onset = row["room"].get("onset_mono")
    return {
        "mix": f"{row['mix']}{name}", "mode": row["mode"], "kind": row["kind"], "echo_db": row["echo_db"],
        "onset_s": None if onset is None else onset - first, "inputs": [e[2] for e in events],
        "recorded_self": row["self"], "recorded_delay_s": row.get("delay_s"), "traced_frames": frames,
        "earcon_spans": earcon_spans(trace),
    }  # fmt: skip


def mark_earcon_plays(run: dict[str, Any]) -> dict[str, Any]:
    """``pulse_inputs``' run with each played block inside an earcon span marked (a 4th field: what the
    raw guard's tap is told), as warm39_why and warm40_raw replay it."""
    marked = []
    for e in run["inputs"]:
        if e[0] == "play":
            end = e[1] + len(e[2]) / 2 / ld.PLAYBACK_RATE_HZ
            e = ("play", e[1], e[2], any(a < end and b > e[1] for a, b in run["earcon_spans"]))
        marked.append(e)
    run["inputs"] = marked
    return run


def earcon_spans(trace: dict[str, Any], volume: float = 0.3) -> list[tuple[float, float]]:
    """(start, end) on the reference's timeline (s) of the played blocks that carry an earcon
    (the daemon marks them as it plays them; traces before stop 39 keep only the PCM): from a
    block whose first samples are an earcon's (within 16 LSB: the bench's rendering differs by
    a few) and which correlates with the earcon's opening (> 0.9), as many samples as that
    earcon has. Only the opening: the speaker mixes the earcon on top of the answer's first
    words (kiosk.audio.playback), so over its whole length it correlates only ~0.88 with the
    chime alone. (relearn38 first marked them, bench/results/relearn38-2026-12-06.md.)"""
    import numpy as np

    from kiosk.audio.earcons import render_earcon

    rate = ld.PLAYBACK_RATE_HZ
    cues = [np.frombuffer(render_earcon(n, rate, volume), np.int16).astype(float)
            for n in ("listening_end", "wake", "error")]  # fmt: skip
    ours = trace["aec"][0].get("reference") if trace["aec"] else None
    played = [p for p in trace["played"] if p.get("reference", ours) == ours and p["pcm"]]
    spans = []
    for i, p in enumerate(played):
        head = np.frombuffer(p["pcm"][:16], np.int16).astype(float)
        for cue in cues:
            if len(head) < 8 or np.abs(head - cue[: len(head)]).max() > 16:
                continue
            x = np.frombuffer(p["pcm"], np.int16).astype(float)[: len(cue)]
            if len(x) >= 64 and np.corrcoef(x, cue[: len(x)])[0, 1] > 0.9:
                spans.append((p["start"], p["start"] + len(cue) / rate))
    return spans


class TracedReference:
    """The canceller's reference as the traced run took it: each frame's reference (PCM at
    capture time + lead) laid on one sample timeline, so a canceller replayed with another
    lead (a variant that moves it elsewhere) takes what the speaker played there. Exact where
    the lead is the traced one (whatever the speaker's side did: it is not simulated again);
    the k-th :meth:`take_marked` is the k-th traced frame's (None where it was None), and
    ``restamps`` (placed after a drop) is what it was by then. A span that overlaps one of
    ``earcon_spans`` is marked as an earcon, as the daemon's reference marks it (unmarked, a
    replay learns the echo return from the chime that opens every answer, which the daemon
    skips: ``EchoGuard._learn_echo``)."""

    def __init__(
        self, frames: list[dict[str, Any]], rate_hz: int = 16000, earcon_spans: list[tuple[float, float]] = ()
    ) -> None:
        import numpy as np

        self._rate, self._frames, self._k, self.restamps = rate_hz, frames, 0, 0
        self._earcons = list(earcon_spans)
        spans = [(round((f["at"] + f["lead_s"]) * rate_hz), f["ref"]) for f in frames if f["ref"] is not None]
        self._lo = min((i for i, _ in spans), default=0)
        hi = max((i + len(r) // 2 for i, r in spans), default=0)
        self._pcm = np.zeros(max(0, hi - self._lo), np.int16)
        for i, ref in spans:
            self._pcm[i - self._lo : i - self._lo + len(ref) // 2] = np.frombuffer(ref, np.int16)

    def take_marked(self, start_s: float, n: int) -> tuple[bytes | None, bool]:
        import numpy as np

        frame = self._frames[min(self._k, len(self._frames) - 1)]
        self._k += 1
        self.restamps = frame.get("restamps", 0)
        if frame["ref"] is None:
            return None, False
        i = round(start_s * self._rate) - self._lo
        out = np.zeros(n, np.int16)
        lo, hi = max(0, i), min(self._pcm.size, i + n)
        if hi > lo:
            out[lo - i : hi - i] = self._pcm[lo:hi]
        end = start_s + n / self._rate
        if frame.get("earcon") is not None:  # (traced since stop 39: the daemon's own mark)
            return out.tobytes(), frame["earcon"]
        return out.tobytes(), any(a < end and b > start_s for a, b in self._earcons)


def replay(run: dict[str, Any], cfg: Any) -> dict[str, Any]:
    """The importable kiosk's first pause on ``run``'s inputs: delay after the true onset
    (``speaker_silent_ms``) and pauses before it."""
    from kiosk.audio.echo_cancel import EchoCanceller, EchoReference
    from kiosk.audio.vad import voice_detector
    from kiosk.core.endpointing import Endpointer

    frame_ms = cfg.audio.frame_ms
    audible = [0.0]
    reference = EchoReference(lambda: audible[0], lambda: 0.0, ld.PLAYBACK_RATE_HZ)
    traced = run.get("traced_frames")  # (a pulse trace: its reference as the canceller took it)
    marks = run.get("earcon_spans", ())
    canceller = EchoCanceller(TracedReference(traced, earcon_spans=marks) if traced else reference, frame_ms)  # type: ignore[arg-type]
    if hasattr(canceller, "recheck"):  # (as echo_canceller_for builds it for "speex")
        canceller.recheck = True
    endpointer = Endpointer(voice_detector(cfg.vad, 16000, frame_ms), cfg.vad, frame_ms)
    endpointer.echo_relearn = True
    linear = hasattr(canceller, "linear_levels")  # (older commits: no linear output)
    raw_guard = _raw_guard(audible, frame_ms, cfg)
    # Since warm41 the raw guard is told what the canceller took of the frame (as kiosk.hearing
    # does); older commits' guards take no levels.
    raw_levels = raw_guard is not None and "linear" in inspect.signature(raw_guard.hear).parameters
    realigned, held, n, cleaned, raw, captured = 0, False, -1, b"", b"", 0.0
    pauses: list[int] = []
    warm_suspect, warming, lead = 0, False, False  # speex-later: the earlier answer heard as a visitor
    for entry in run["inputs"]:
        if entry[0] in ("playing", "start"):
            warming, n, held = False, -1, False
            lead = entry[0] == "playing"  # (the room alone until the earlier answer plays)
        elif entry[0] == "play":
            warming, lead = warming or lead, False
            audible[0] = entry[1]
            if not traced:
                reference.played(entry[2], entry[3])
            if raw_guard is not None:
                raw_guard.tap.reference.played(entry[2], entry[3])
        elif entry[0] == "drop":  # (pulse traces: the speaker's queue dropped at entry[2])
            audible[0] = entry[2]
            if not traced:
                reference.dropped(entry[1])
        elif entry[0] == "mic":
            canceller.pitch_wanted = not endpointer.echo_cancelled_well  # (as kiosk.app does)
            raw, captured = entry[1], entry[2]
            cleaned = canceller.process(raw, captured)
            if canceller.realignments != realigned:
                realigned = canceller.realignments
                endpointer.echo_path_changed()
        elif entry[0] == "reset":
            endpointer.reset()
        else:
            n += 1
            endpointer.guarded, speaking = entry[1], entry[2]
            endpointer.earcon_echo = canceller.earcon_audible
            kw = {"linear": canceller.linear_levels} if linear else {}
            if hasattr(canceller, "frame_pitch"):  # (older commits: no pitch before trust)
                kw["pitch"] = canceller.frame_pitch
            if hasattr(canceller, "linear_pitch"):  # (older commits: no pitch once trusted)
                kw["linear_pitch"] = canceller.linear_pitch
            if hasattr(canceller, "linear_high_levels"):  # (older commits: no high band)
                kw["linear_high"] = canceller.linear_high_levels
            raw_kw = {"linear": canceller.linear_levels} if raw_levels else {}
            raw_onset = (
                None if raw_guard is None else raw_guard.hear(raw, captured, entry[1], endpointer, **raw_kw)
            )
            endpointer.process(cleaned, canceller.reference_dbfs, **kw)
            if raw_onset is not None and speaking and not endpointer.in_speech:
                endpointer.force_open()  # (a barge-in the guard alone proved, as kiosk.app takes it)
            suspected = endpointer.suspected_speech_ms
            suspected = suspected if raw_guard is None else max(suspected, raw_guard.suspected_speech_ms)
            suspect = suspected >= cfg.vad.barge_in_pause_ms
            warm_suspect += warming and suspect
            pause = speaking and suspect
            if pause and not held:
                pauses.append(n)
            held = pause
    frame_s = frame_ms / 1000
    onset = run["onset_s"] if run["onset_s"] is not None else math.inf
    after = [k for k in pauses if (k + 1) * frame_s >= onset]
    return {
        "mix": run["mix"], "mode": run["mode"], "kind": run["kind"], "echo_db": run["echo_db"],
        "speaker_silent_ms": round(((after[0] + 2) * frame_s - onset) * 1000) if after and run["onset_s"] else None,
        "self_pauses_s": [round((k + 1) * frame_s, 2) for k in pauses if (k + 1) * frame_s < onset],
        "warm_suspect": warm_suspect,
    }  # fmt: skip


def replay_traces(paths: list[Path], cfg: Any, before_replay: Any = None) -> Any:
    """Each pulse trace at ``paths`` replayed (:func:`pulse_inputs`, then :func:`replay`), as
    (path, trace, run, replay's row); ``before_replay()`` runs just before each replay (a tool's
    per-trace log cleared)."""
    import pickle

    for path in paths:
        trace = pickle.loads(path.read_bytes())
        run = pulse_inputs(trace, "/" + path.stem)
        if before_replay is not None:
            before_replay()
        yield path, trace, run, replay(run, cfg)


def _raw_guard(audible: list[float], frame_ms: int, cfg: Any) -> Any:
    """The guard beside an untrusted canceller (kiosk.audio.raw_guard), fed the same speaker
    blocks; None for commits without one."""
    try:
        from kiosk.audio.raw_guard import RawMicGuard
    except ImportError:
        return None

    class Speaker:  # the recorded blocks are played into its reference below
        rate_hz, earcon_in_last_read = ld.PLAYBACK_RATE_HZ, False

        def add_read_listener(self, listener: Any) -> None:
            self.listener = listener

    guard = RawMicGuard(Speaker(), lambda: audible[0], lambda: 0.0, frame_ms, cfg.vad)
    return guard


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    groups = sorted({(r["mode"], r["mix"].split("/")[-1]) for r in rows})
    for mode, seed in [(m, None) for m in sorted({r["mode"] for r in rows})] + groups:
        mine = [r for r in rows if r["mode"] == mode and seed in (None, r["mix"].split("/")[-1])]
        timed = sorted(r["speaker_silent_ms"] for r in mine if r["kind"] == "bargein" and r["echo_db"] == -12.0 and r["speaker_silent_ms"] is not None)  # fmt: skip
        out[mode if seed is None else f"{mode} {seed}"] = {
            "minus12_speaker_silent_ms": timed,
            "max_ms": max(timed, default=None),
            "missed": [r["mix"] for r in mine if r["kind"] == "bargein" and r["speaker_silent_ms"] is None],
            "self_pauses": [f"{r['mix']} {r['echo_db']} dB at {r['self_pauses_s']}" for r in mine if r["self_pauses_s"]],
            "warm_suspect": [f"{r['mix']} {r['echo_db']} dB: {r['warm_suspect']}" for r in mine if r.get("warm_suspect")],
            "runs": len(mine),
        }  # fmt: skip
    return out


def _runs(path: Path) -> list[dict[str, Any]]:
    """The runs recorded in ``path``: this script's recordings, or a trace of
    ``bench/pulse_trace.py`` (one run)."""
    got = pickle.loads(path.read_bytes())
    if isinstance(got, dict) and "aec" in got:
        return [pulse_inputs(got, "/" + path.stem)]
    return got


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record")
    rec.add_argument("--seed", type=int, help="fresh tuning mixes (default: the tuning split)")
    rec.add_argument("--mode", choices=tuple(WARM_S), default="speex-warm")
    rec.add_argument("--split", choices=("tuning", "heldout"), default="tuning")
    rec.add_argument("--mix", action="append", help="only these mixes (ids; held-out: examined ones)")
    rep = sub.add_parser("replay")
    rep.add_argument("recordings", nargs="+", type=Path)
    rep.add_argument("--out", type=Path)
    rep.add_argument("--label", default="")
    args = parser.parse_args(argv)
    if args.command == "record":
        if args.split == "heldout" and not args.mix:
            parser.error("--split heldout records named mixes only (--mix): held-out stays untuned")
        runs = record(args.split, args.seed, args.mode, set(args.mix or ()))
        CACHE.mkdir(parents=True, exist_ok=True)
        name = args.split if args.split == "heldout" else ""
        path = CACHE / f"aec-replay-{name}{args.seed or 'split'}-{args.mode}.pkl"
        path.write_bytes(pickle.dumps(runs))
        print(f"recorded: {path}")
        return 0
    cfg = bl.load_bench_config()
    rows = [replay(r, cfg) for p in args.recordings for r in _runs(p)]
    out = summary(rows)
    for mode, s in out.items():
        print(mode, s)
    import run as bench_run

    import kiosk

    record_ = {"label": args.label, "kiosk_code": str(Path(kiosk.__file__).parent), "summary": out, "rows": rows,
               "recordings": [str(p) for p in args.recordings]}  # fmt: skip
    if args.out:
        bench_run.save_diagnostic("lobby-aec-replay", record_, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
