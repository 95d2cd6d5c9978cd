"""``make mutate``'s last line: the mutation score from mutmut's CI/CD stats (``mutmut export-cicd-stats``).

Killed (a test failed, or the mutant timed out or crashed the tests) over all mutants that were run; survivors are
listed by ``mutmut results`` and in docs/mutation.md, each killed by a test or named equivalent with a reason.

Example:
    >>> score({"killed": 90, "survived": 8, "timeout": 2, "suspicious": 0, "skipped": 0, "no_tests": 0,
    ...        "total": 105, "segfault": 0})
    (92, 100, 92.0)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def score(stats: dict[str, Any]) -> tuple[int, int, float]:
    """(killed, run, percent killed) from mutmut's stats; mutants not yet checked do not count either way."""
    killed = int(stats.get("killed", 0)) + int(stats.get("timeout", 0)) + int(stats.get("segfault", 0))
    run = killed + int(stats.get("survived", 0)) + int(stats.get("suspicious", 0)) + int(stats.get("no_tests", 0))
    return killed, run, round(100.0 * killed / run, 1) if run else 0.0


def main(path: str) -> int:
    file = Path(path)
    if not file.exists():
        print(f"no mutation stats at {path}: run `make mutate` first", file=sys.stderr)
        return 2
    stats = json.loads(file.read_text())
    killed, run, percent = score(stats)
    waiting = int(stats.get("total", 0)) - run - int(stats.get("skipped", 0))
    print(f"mutation score: {killed} of {run} mutants killed ({percent} %); {stats.get('survived', 0)} survived, "
          f"{stats.get('no_tests', 0)} without a covering test, {waiting} not run yet")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1] if len(sys.argv) > 1 else "mutants/mutmut-cicd-stats.json"))
