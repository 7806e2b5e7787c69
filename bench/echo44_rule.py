"""Rule E of bench/results/lead44-plan-2026-12-07.md (written 03:58 UTC before any run) on echo44's
held-out 2321-2351 (stop 44 helper echo44): the rig rows of both codes (pulse_trace.py's JSONs) and
the replays of every held-out trace with both codes (``bench/echo44_screen.py`` = warm41_why replay).

    python bench/echo44_rule.py OUT.json --rig H-bargein-branch.json ... --replay BRANCH.json MAIN.json

E2, E3, E4 and E1's attribution as bench/warm41_rule.py's W2, W3, W4, W1 (each branch rig
self-pause's trace, replayed with main's code, pauses too); E1's count as the plan's Q1:
self-pause entries (warm-up + later) on rows WITHOUT pipe glitches (no pacat underrun, no parec
overrun, not ``loaded``) branch <= main (no "+ 1"; every row's count reported too).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from warm43_rule import strict_rule  # noqa: E402


def main() -> int:
    args = sys.argv[1:]
    out = Path(args[0])
    got, counts, cb, cm, e1b = strict_rule(args)  # (writes OUT with warm41_rule's W1-W4)
    rule = {f"E{k[1:]}": v for k, v in got.pop("rule_W").items()}
    e1 = rule["E1"]
    e1.update(self_within_main_plus_1_all_rows_NOT_THE_RULE=e1.pop("self_within_main_plus_1"),
              clean_self_branch_main=[cb["clean_self"], cm["clean_self"]], clean_self_within_main=e1b,
              clean_rows=counts, met=e1["all_branch_pauses_pause_on_main_code"] and e1b)  # fmt: skip
    got["rule_E"] = rule
    got["met"] = all(v["met"] for v in rule.values())
    got["rule"] = "lead44-plan-2026-12-07.md rule E (E1 as Q1: glitch-free rows, branch <= main)"
    out.write_text(json.dumps(got, indent=1))
    print("--- rule E (the lines above are warm41_rule's W1-W4; W1's count is NOT E1's) ---")
    for k, v in rule.items():
        print(k, "met" if v["met"] else "NOT met", {x: y for x, y in v.items() if x not in ("attribution", "changed", "clean_rows")})
    print("RULE E MET" if got["met"] else "RULE E NOT MET")
    return 0


if __name__ == "__main__":
    sys.exit(main())
