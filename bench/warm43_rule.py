"""Rule W of bench/results/lead43-plan-2026-12-07.md (written 00:46 UTC before any run) on warm43's
held-out (stop 43 helper warm43): the rig rows of both codes (pulse_trace.py's JSONs) and the replays
of every held-out trace with both codes (``bench/warm41_why.py replay`` / ``bench/warm43_screen.py``).

    python bench/warm43_rule.py OUT.json --rig H-bargein-branch.json ... --replay BRANCH.json MAIN.json

As bench/warm41_rule.py (W2, W3, W4 and W1's attribution), but W1's count is lead43's G1:
 W1. each branch rig self-pause's trace, replayed with main's code, pauses too; and rig self-pause
     entries (warm-up + later) on rows WITHOUT pipe glitches (no pacat underrun, no parec overrun, not
     ``loaded``) branch <= main + 1 (every row's count reported too).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import warm41_rule  # noqa: E402
from rule_rows import glitched  # noqa: E402


def clean_self(paths: list[str]) -> dict[str, dict[str, Any]]:
    """Per code: self-pause entries on glitch-free rows, and the rows with any (clean or not)."""
    out: dict[str, dict[str, Any]] = {}
    for path in paths:
        code = "branch" if "-branch" in Path(path).name else "main"
        o = out.setdefault(code, {"clean_rows": 0, "glitch_rows": 0, "clean_self": 0, "rows_with_self": []})
        for r in json.loads(Path(path).read_text())["rows"]:
            n = (r.get("warm_self") or 0) + len(r.get("self") or [])
            clean = not glitched(r)
            o["clean_rows" if clean else "glitch_rows"] += 1
            o["clean_self"] += n if clean else 0
            if n:
                room = r.get("room") or {}
                o["rows_with_self"].append({"row": f"{r['mix']} {r['echo_db']}", "n": n, "clean": clean,
                                            "pacat_underruns": room.get("pacat_underruns"),
                                            "parec_overruns": room.get("parec_overruns"), "loaded": r.get("loaded")})  # fmt: skip
    return out


def strict_rule(
    args: list[str],
) -> tuple[dict[str, Any], dict[str, dict[str, Any]], dict[str, Any], dict[str, Any], bool]:
    """warm41_rule's W1-W4 over a rule's command line (``OUT.json --rig RIG.json... --replay B M``;
    it writes OUT), read back, then stop 44's count of W1: self-pause entries (warm-up + later) on
    rows without pipe glitches, branch <= main (no "+ 1"). Returns warm41_rule's output, the
    per-code counts, the branch's and main's, and whether the count holds (shared by
    quiet44_rule and echo44_rule)."""
    out = Path(args[0])
    rigs = args[args.index("--rig") + 1 : args.index("--replay")]
    sys.argv = ["warm41_rule.py", *args]
    warm41_rule.main()
    got = json.loads(out.read_text())
    counts = clean_self(rigs)
    cb, cm = counts.get("branch", {}), counts.get("main", {})
    return got, counts, cb, cm, cb["clean_self"] <= cm["clean_self"]


def main() -> int:
    args = sys.argv[1:]
    out = Path(args[0])
    got, counts, cb, cm, _ = strict_rule(args)  # (writes OUT with W1-W4 as warm41's: W1's count over all rows)
    w1b = cb["clean_self"] <= cm["clean_self"] + 1  # (stop 43's bound: main + 1, not strict_rule's)
    w1 = got["rule_W"]["W1"]
    w1.update(self_within_main_plus_1_all_rows=w1.pop("self_within_main_plus_1"),
              clean_self_branch_main=[cb["clean_self"], cm["clean_self"]], clean_self_within_main_plus_1=w1b,
              clean_rows=counts, met=w1["all_branch_pauses_pause_on_main_code"] and w1b)  # fmt: skip
    got["met"] = all(v["met"] for v in got["rule_W"].values())
    got["rule"] = "lead43-plan-2026-12-07.md rule W (W1 as G1: glitch-free rows)"
    out.write_text(json.dumps(got, indent=1))
    print("W1 (lead43: glitch-free rows)", "met" if w1["met"] else "NOT met", {k: w1[k] for k in ("all_branch_pauses_pause_on_main_code", "clean_self_branch_main", "clean_self_within_main_plus_1")})
    print("RULE W (lead43) MET" if got["met"] else "RULE W (lead43) NOT MET")
    return 0


if __name__ == "__main__":
    sys.exit(main())
