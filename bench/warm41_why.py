"""Replays of SpeexDSP pulse traces with the raw guard handed the canceller's levels (TUNING TOOL,
stop 41 helper warm41).

``bench/lobby_aec_replay.py``'s ``replay`` calls ``RawMicGuard.hear(raw, captured, guarded, main)``
as the pipeline did before stop 41; since warm41 the pipeline (kiosk/hearing.py) also hands it the
canceller's (linear output, estimate, microphone) levels of that very frame. This tool passes them
the same way in the replay, for a kiosk whose ``hear`` takes ``linear`` (the importable one: pick
the code with PYTHONPATH), then runs one of:

    python bench/warm41_why.py replay OUT.json TRACE.pkl...   per trace: rig and replay pauses, delay
    python bench/warm41_why.py why OUT.pkl TRACE.pkl...       bench/warm39_why.py's per-frame log
    python bench/warm41_why.py raw OUT.pkl TRACE.pkl...       bench/warm40_raw.py's per-frame log
    python bench/warm41_why.py compare A.json B.json OUT.json two ``replay`` passes compared

A replay is exact up to its first pause (the recorded speaker goes on): a tuning tool, never a
user figure. ``replay`` splits self-pauses into the warm-up answer's (before ``WARM_S`` of room
time on the rig's clock) and later ones.
"""

from __future__ import annotations

import inspect
import json
import os
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

WARM_S = 8.0  # (room seconds: the warm-up answer of a speex-later run ends before this)
_LAST: dict[str, Any] = {}


def install_levels() -> bool:
    """The replay's canceller's levels of each frame handed to the raw guard with that frame
    (before any instrumenting tool wraps ``hear``); False for a kiosk whose ``hear`` takes none."""
    from kiosk.audio import echo_cancel as ec

    try:
        from kiosk.audio import raw_guard as rg
    except ImportError:
        return False
    if "linear" not in inspect.signature(rg.RawMicGuard.hear).parameters:
        return False
    process0, hear0 = ec.EchoCanceller.process, rg.RawMicGuard.hear

    def process(self: Any, frame: bytes, captured_at_s: float) -> bytes:
        out = process0(self, frame, captured_at_s)
        if type(self) is ec.EchoCanceller:  # (the replay's canceller, not a tap)
            _LAST.update(frame=frame, levels=self.linear_levels)
        return out

    def hear(self: Any, raw: bytes, captured_at_s: float, guarded: bool, main: Any, linear: Any = None) -> Any:
        if linear is None and _LAST.get("frame") is raw:
            linear = _LAST.get("levels")
        return hear0(self, raw, captured_at_s, guarded, main, linear)

    ec.EchoCanceller.process = process  # type: ignore[method-assign]
    rg.RawMicGuard.hear = hear  # type: ignore[method-assign]
    return True


def _rig_s(run: dict[str, Any], trace: dict[str, Any], replay_s: float) -> float | None:
    tf = run.get("traced_frames") or []
    t0 = trace["row"]["room"].get("started_mono")
    k = round(replay_s / 0.02) - 1
    return None if t0 is None or not 0 <= k < len(tf) else round(tf[k]["mono"] - t0, 3)


def _young_variant() -> str | None:
    """``WARM41_YOUNG=frames:dB``: the young-filter cue's bounds (kiosk.core.endpointing), replay only."""
    import os

    got = os.environ.get("WARM41_YOUNG")
    if got:
        from kiosk.core import endpointing as ep

        frames, db = got.split(":")
        ep.YOUNG_FILTER_FRAMES, ep.YOUNG_FILTER_ONSET_DB = int(frames), float(db)  # type: ignore[attr-defined]
    return got


def replay_main(out: Path, paths: list[Path]) -> int:
    import bench_lobby as bl
    import lobby_aec_replay as lr

    handed = install_levels()
    variant = _young_variant()
    cfg = bl.load_bench_config()
    rows = []
    for path in paths:
        try:
            path_, trace, run, got = next(lr.replay_traces([path], cfg))
        except Exception as exc:  # noqa: BLE001 - an odd trace is reported, not fatal
            print(f"!! {path}: {type(exc).__name__}: {exc}", flush=True)
            continue
        row = trace["row"]
        pauses = [(s, _rig_s(run, trace, s)) for s in got["self_pauses_s"]]
        rec = {
            "trace": str(path), "mix": row.get("mix"), "kind": row.get("kind"), "echo_db": row.get("echo_db"),
            "onset_s": run["onset_s"], "replay_silent_ms": got["speaker_silent_ms"],
            "replay_self": [{"replay_s": s, "rig_s": r, "part": "warm-up" if r is not None and r < WARM_S else "later"}
                            for s, r in pauses],
            "rig_delay_s": row.get("delay_s"), "rig_self": row.get("self"), "rig_warm_self": row.get("warm_self"),
            "rig_holds": row.get("holds"),
        }  # fmt: skip
        rows.append(rec)
        print(f"{path.parent.name}/{path.stem} {rec['echo_db']} silent {rec['replay_silent_ms']} self "
              f"{[(p['replay_s'], p['rig_s']) for p in rec['replay_self']]} | rig self {rec['rig_self']} "
              f"warm {rec['rig_warm_self']} delay {rec['rig_delay_s']}", flush=True)  # fmt: skip
    import kiosk

    json.dump({"kiosk_code": str(Path(kiosk.__file__).parent), "levels_handed": handed, "young": variant, "rows": rows},
              out.open("w"), indent=1)  # fmt: skip
    return 0


def set_constants(env: str, constants: tuple[tuple[str, type], ...]) -> str | None:
    """Set ``constants`` (name, type) of kiosk.core.echo_double_talk from the colon-separated values
    in the environment variable ``env``, if set (a screen's variant; replay only); its value."""
    from kiosk.core import echo_double_talk as edt

    variant = os.environ.get(env)
    if variant:
        for (name, kind), value in zip(constants, variant.split(":"), strict=True):
            setattr(edt, name, kind(value))
    return variant


def screen_main(env: str, constants: tuple[tuple[str, type], ...], cue: str | None = None) -> int:
    """A cue's screen (``bench/*_screen.py``): set ``constants`` of kiosk.core.echo_double_talk from the
    colon-separated values in the environment variable ``env`` (replay only), count how often the
    ``TrustedCancellerCues`` method ``cue`` was asked and said yes (a kiosk without it: nothing
    counted), then :func:`replay_main` ``OUT.json TRACE.pkl...`` from the command line."""
    variant = None
    counted = {"cleared": 0, "asked": 0}
    try:
        from kiosk.core import echo_double_talk as edt

        variant = set_constants(env, constants)
        if cue is not None:
            asked0 = getattr(edt.TrustedCancellerCues, cue)

            def asked(self: Any) -> Any:
                got = asked0(self)
                counted["cleared"] += got
                counted["asked"] += 1
                return got

            setattr(edt.TrustedCancellerCues, cue, asked)
    except AttributeError:
        pass
    got = replay_main(Path(sys.argv[1]), [Path(p) for p in sys.argv[2:]])
    print("variant", variant, *([counted] if cue is not None else []), flush=True)
    return got


def compare(a_path: Path, b_path: Path, out: Path) -> int:
    """Per trace in both: the first self-pause (replay s, part) and the barge-in delay; the
    traces where they differ, and whether the second pass (B) added a pause or delayed a barge-in."""
    a, b = (json.loads(p.read_text()) for p in (a_path, b_path))
    bb = {r["trace"]: r for r in b["rows"]}
    changed, added, delayed = [], [], []
    for ra in a["rows"]:
        rb = bb.get(ra["trace"])
        if rb is None:
            continue
        fa = ra["replay_self"][0] if ra["replay_self"] else None
        fb = rb["replay_self"][0] if rb["replay_self"] else None
        sa, sb = ra["replay_silent_ms"], rb["replay_silent_ms"]
        if fa != fb or sa != sb:
            changed.append({"trace": ra["trace"], "first_self": [fa, fb], "silent_ms": [sa, sb]})
        if fb is not None and (fa is None or fb["replay_s"] < fa["replay_s"]):
            added.append(ra["trace"])
        if sa is not None and (sb is None or sb > sa + 20):
            delayed.append({"trace": ra["trace"], "silent_ms": [sa, sb]})
    got = {"a": str(a_path), "a_code": a["kiosk_code"], "b": str(b_path), "b_code": b["kiosk_code"],
           "traces": len(a["rows"]), "changed": changed, "b_added_self_pause": added,
           "b_delayed_over_20ms": delayed}  # fmt: skip
    print(json.dumps(got, indent=1))
    out.write_text(json.dumps(got, indent=1))
    return 0


def main() -> int:
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "replay":
        return replay_main(Path(args[0]), [Path(p) for p in args[1:]])
    if cmd == "compare":
        return compare(Path(args[0]), Path(args[1]), Path(args[2]))
    if cmd in ("why", "raw"):
        print("levels handed to the raw guard:", install_levels(), "young:", _young_variant(), flush=True)
        sys.argv = [sys.argv[0], *args]
        if cmd == "why":
            import warm39_why as tool
        else:
            import warm40_raw as tool  # type: ignore[no-redef]
        return tool.main()
    raise SystemExit(f"unknown command {cmd}")


if __name__ == "__main__":
    sys.exit(main())
