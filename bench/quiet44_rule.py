"""Rule Q of bench/results/lead44-plan-2026-12-07.md (written 03:58 UTC before any run) on quiet44's
held-out 2281-2311 (stop 44 helper quiet44): the rig rows of both codes (pulse_trace.py's JSONs) and
the replays of every held-out trace with both codes (``bench/warm41_why.py replay``).

    python bench/quiet44_rule.py OUT.json --rig H-bargein-branch.json ... --replay BRANCH.json MAIN.json

Q2-Q4 are bench/warm41_rule.py's W2-W4 (missed, p95 <= max(150, main + 10), replay: no added
self-pause, no barge-in > 20 ms later); Q1 is bench/warm43_rule.py's W1 with the plan's bound:
each branch rig self-pause's trace, replayed with main's code, pauses too; and self-pause entries
(warm-up + later) on rows without pipe glitches (no pacat underrun, no parec overrun, not
``loaded``) branch <= main.
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
    got, counts, cb, cm, q1_count = strict_rule(args)  # (writes OUT with warm41_rule's W1-W4)
    rule = got.pop("rule_W")
    q1 = rule.pop("W1")
    q1.update(self_within_main_plus_1_all_rows=q1.pop("self_within_main_plus_1"),
              clean_self_branch_main=[cb["clean_self"], cm["clean_self"]], clean_self_within_main=q1_count,
              clean_rows=counts, met=q1["all_branch_pauses_pause_on_main_code"] and q1_count)  # fmt: skip
    got["rule_Q"] = {"Q1": q1, "Q2": rule["W2"], "Q3": rule["W3"], "Q4": rule["W4"]}
    got["met"] = all(v["met"] for v in got["rule_Q"].values())
    got["rule"] = "lead44-plan-2026-12-07.md rule Q"
    out.write_text(json.dumps(got, indent=1))
    for name, v in got["rule_Q"].items():
        print(name, "met" if v["met"] else "NOT met")
    print("Q1", {k: q1[k] for k in ("all_branch_pauses_pause_on_main_code", "clean_self_branch_main")})
    print("RULE Q MET" if got["met"] else "RULE Q NOT MET")
    return 0


if __name__ == "__main__":
    sys.exit(main())
