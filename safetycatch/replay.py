"""``safetycatch replay FILE...``: run saved events through exactly the deployed event handler's code path.

Each FILE is one EventBridge event, a JSON array of them or a CloudTrail log file (gzipped or not); a directory
stands for every ``.json`` / ``.json.gz`` below it. Without ``--fix`` it decides everything and changes nothing
(as dry-run; ``--dry-run`` says the same); ``--fix`` acts as the deployed bot would, and needs the state table
(or ``--no-state``).

Example:
    $ safetycatch replay tests/events/ --format json
    $ safetycatch replay trail/2025/06/10/ --fix
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from safetycatch import render
from safetycatch.common import UsageError, refuse_acting_without_state, runtime_for
from safetycatch.events import load_all


def add_parser(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    replay = sub.add_parser("replay", parents=parents,
                            help="run saved EventBridge / CloudTrail events through the real handler "
                                 "(changes nothing without --fix)")
    replay.add_argument("files", nargs="+", metavar="FILE", help="event files or directories of them")
    replay.add_argument("--policies", metavar="DIR")
    replay.add_argument("--format", choices=("table", "json"), default="table")
    replay.add_argument("--fix", action="store_true", help="act as the deployed bot would (fix / ask / notify)")
    replay.add_argument("--dry-run", action="store_true", help="decide but make zero AWS writes (the default)")
    replay.add_argument("--no-state", action="store_true",
                        help="allow --fix without SAFETYCATCH_TABLE (prior values are then lost: no undo)")


def cmd_replay(args: argparse.Namespace) -> int:
    from chalicelib.bot.handlers import handle_event, reset_runtime

    if args.fix and args.dry_run:
        raise UsageError("replay: --fix and --dry-run contradict each other")
    events = load_all(args.files)
    runtime = runtime_for(args, mode=None if args.fix else "dry-run")
    if args.fix:
        refuse_acting_without_state(runtime, "replay --fix", args.no_state)
    reset_runtime(runtime)
    reports = [handle_event(event, runtime=runtime) for event in events]
    if args.format == "json":
        print(json.dumps({"events": reports}, indent=2))
    else:
        render.replay_table(reports, mode=runtime.mode)
    return 0
