"""Rule E of bench/results/lead47-plan-2026-12-07.md (written 13:19 UTC before any run) on echo47's
held-out 2441-2471 (stop 47 helper echo47). E1-E3 are rule S's S1-S3 (bench/speex45_rule.py, run
as is: clean rows, attribution by replay, p95 bound max(150 + E, main + 10)); E4 is S4 (the branch's
code adds no self-pause and delays no barge-in > 20 ms in replay of every held-out trace) AND it
removes >= 1 pause main's code makes in those replays: a trace whose replay with main's code pauses
itself first at s, and whose replay with the branch's code does not pause itself at or before s.

    python bench/echo47_rule.py OUT.json [--extra-ms E] --rig RIG.json... --replay BRANCH.json MAIN.json

(the branch's rig files hold ``-branch`` in their names; the branch replay's ``kiosk_code`` and the
branch run's traces hold ``/branch``, as for speex45_rule.)

``ECHO47_RULE=LETTER:PLAN`` names the same clauses for another stop's rule (stop 48: ``W:lead48-plan-2026-12-07.md``,
rule W = rule E's clauses); unset: rule E of lead47's plan.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import speex45_rule  # noqa: E402
from warm41_rule import print_verdict  # noqa: E402


def removed_pauses(rm: dict[str, dict[str, Any]], rb: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Traces whose first self-pause in main's replay the branch's replay does not make (none at or
    before it)."""
    got = []
    for trace, m in sorted(rm.items()):
        b = rb.get(trace)
        if b is None or not m["replay_self"]:
            continue
        s = m["replay_self"][0]["replay_s"]
        if not any(p["replay_s"] <= s for p in b["replay_self"]):
            got.append({"trace": trace, "main_first_self": s, "branch_self": [p["replay_s"] for p in b["replay_self"]]})
    return got


def main() -> int:
    speex45_rule.print_verdict = lambda verdict, letter: None  # type: ignore[assignment]
    speex45_rule.main()
    out = Path(sys.argv[1])
    d = json.loads(out.read_text())
    args = sys.argv[sys.argv.index("--replay") + 1 :][:2]
    reps = {}
    for p in args:
        r = json.loads(Path(p).read_text())
        reps["branch" if "/branch" in r["kiosk_code"] else "main"] = {x["trace"]: x for x in r["rows"]}
    removed = removed_pauses(reps["main"], reps["branch"])
    letter, plan = os.environ.get("ECHO47_RULE", "E:lead47-plan-2026-12-07.md").split(":")
    verdict = {letter + k[1:]: v for k, v in d.pop("rule_S").items()}
    e4 = verdict[letter + "4"]
    e4["no_harm_met"] = e4["met"]
    e4["removed_main_pauses"] = removed
    e4["met"] = e4["no_harm_met"] and len(removed) >= 1
    d["rule"] = (f"{plan} rule {letter} ({letter}1-{letter}3 = rule S's S1-S3; {letter}4 = S4 + removes >= 1 main "
                 "pause in replay)")  # fmt: skip
    d[f"rule_{letter}"] = verdict
    d["met"] = all(v["met"] for v in verdict.values())
    out.write_text(json.dumps(d, indent=1))
    print_verdict(verdict, letter)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
