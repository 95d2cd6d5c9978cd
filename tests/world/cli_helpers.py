"""Running the CLI in a test: exit code and output, parsed JSON, and the one-line error contract (exit 2)."""

from __future__ import annotations

import json
from typing import Any

from safetycatch.main import main


def run(capsys: Any, *argv: str) -> tuple[int, str, str]:
    """``main(argv)``: (exit code, stdout, stderr)."""
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def run_json(capsys: Any, *argv: str) -> Any:
    """The parsed JSON a command prints; the command must succeed."""
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    return json.loads(out)


def one_line_error(capsys: Any, *argv: str) -> str:
    """The command fails as bad input must: exit 2, one line on stderr, no traceback; returns that line."""
    code, _, err = run(capsys, *argv)
    assert code == 2 and err.count("\n") == 1 and err.startswith("safetycatch: ") and "Traceback" not in err, err
    return err
