"""Rule W of bench/results/lead46-plan-2026-12-07.md (written 10:17 UTC before any run) on warm46's
held-out 2401-2431 (stop 46 helper warm46). Its clauses W1-W4 are rule S's S1-S4 word for word
(bench/speex45_rule.py: clean rows, attribution by replay, p95 bound max(150 + E, main + 10), replay
of every held-out trace), so this runs ``speex45_rule.main`` and names the clauses W.

    python bench/warm46_rule.py OUT.json [--extra-ms E] --rig RIG.json... --replay BRANCH.json MAIN.json

(the branch's rig files hold ``-branch`` in their names; the branch replay's ``kiosk_code`` and the
branch run's traces hold ``/branch``, as for speex45_rule.)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import speex45_rule  # noqa: E402

_print0 = speex45_rule.print_verdict


def _print_w(verdict: dict[str, Any], _letter: str) -> None:
    _print0({"W" + k[1:]: v for k, v in verdict.items()}, "W")


def main() -> int:
    speex45_rule.print_verdict = _print_w  # type: ignore[assignment]
    got = speex45_rule.main()
    out = Path(sys.argv[1])
    d = json.loads(out.read_text())
    d["rule"] = "lead46-plan-2026-12-07.md rule W (= rule S's clauses)"
    d["rule_W"] = {"W" + k[1:]: v for k, v in d.pop("rule_S").items()}
    out.write_text(json.dumps(d, indent=1))
    return got


if __name__ == "__main__":
    raise SystemExit(main())
