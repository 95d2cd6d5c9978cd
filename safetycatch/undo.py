"""``safetycatch undo FIX_ID``: put back the prior value of one applied fix, of any kind.

The same decision code as Slack's Undo / Restore buttons (``decisions.decide``): the fix moves ``applied`` →
``undoing`` → ``undone`` by conditional writes (a double undo does nothing twice), and it is refused when the
function was changed again after the fix, so an undo never overwrites somebody's later change. A kill's fix
id restores the function exactly (``safetycatch restore`` by fix id). FIX_ID is ``fix.id`` in the JSON of
``scan --fix`` / ``replay --fix`` / ``kill``, and ``fix_id`` in ``history``.

Example:
    $ safetycatch undo 5f1c0d8e2b7a4c6e9d3f1a2b3c4d5e6f
    Undone set-timeout on example-fn: Timeout = 30 again.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from safetycatch.common import UsageError, actor, require_table, runtime_for


def add_parser(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    undo = sub.add_parser("undo", parents=parents,
                          help="put back the prior value of one fix (refuses over a later change)")
    undo.add_argument("fix_id", metavar="FIX_ID", help="fix.id from scan/replay --fix or kill, fix_id in history")
    undo.add_argument("--policies", metavar="DIR")
    undo.add_argument("--format", choices=("table", "json"), default="table")


def cmd_undo(args: argparse.Namespace) -> int:
    from chalicelib.bot import slack_routes
    from chalicelib.bot.handlers import reset_runtime
    from chalicelib.people import decisions

    runtime = runtime_for(args)
    require_table(runtime, "undo", "fixes and their prior values live in the state table")
    reset_runtime(runtime)
    outcome = decisions.decide(runtime, "undo", args.fix_id, actor(runtime))
    slack_routes.update_message(runtime, outcome.message_id)  # the Slack message shows the fix: say it is undone
    if not outcome.ok:
        raise UsageError(f"undo: {outcome.text}")
    if args.format == "json":
        print(json.dumps({"fix_id": args.fix_id, "function": outcome.function, "status": outcome.status,
                          "message": outcome.text}, indent=2))
    else:
        print(outcome.text)
    return 0
