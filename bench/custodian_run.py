"""Run Cloud Custodian (``custodian run`` or ``c7n-org run``) with the bench's request latency, and write what
it took to a JSON file: the seconds from the command's start to its end (after imports, as safetycatch's
figure is) and the AWS requests it sent. Runs in the bench venv that holds c7n (never in .venv).

    build/bench-venv/bin/python bench/custodian_run.py OUT.json LATENCY_S custodian|c7n-org ARGS...
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import latency


def main() -> int:
    out, delay, tool, args = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4:]
    latency.install(delay)
    if tool == "custodian":
        from c7n.cli import main as run
    else:
        from c7n_org.cli import cli as run
    sys.argv = [tool, *args]
    started = time.perf_counter()
    try:
        run()
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise
    Path(out).write_text(json.dumps({"seconds": time.perf_counter() - started, "requests": latency.sent[0]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
