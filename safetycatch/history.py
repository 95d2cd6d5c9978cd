"""``safetycatch history [--function F] [--since DURATION] [--format table|json]``: the audit trail.

Every decision the bot or an operator made (fixed, asked, notified, approved, denied, undone, killed, restored)
is an audit record in the state table, kept ``AUDIT_TTL_DAYS``. This reads them back, newest first.

Example:
    $ safetycatch history --since 2d --function 'orders-*'
    >>> parse_duration("36h").total_seconds(), parse_duration("2w").days
    (129600.0, 14)
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import re
from datetime import datetime, timedelta, timezone
from typing import Any

from chalicelib.store.state import AUDIT_TTL_DAYS
from safetycatch import render
from safetycatch.common import UsageError, require_table, runtime_for

_DURATION = re.compile(r"^(\d{1,5})([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
FIELDS = ("at", "function", "policy", "outcome", "mode", "severity", "message", "detail", "context", "fix_id",
          "approval_id")


def parse_duration(text: str) -> timedelta:
    """``30m``, ``12h``, ``7d``, ``2w``; at most the audit trail's retention. ValueError (one line) otherwise."""
    match = _DURATION.match(text.strip().lower())
    if not match:
        raise ValueError(f"--since: expected a duration such as 30m, 12h, 7d or 2w, got {text[:40]!r}")
    duration = timedelta(**{_UNITS[match[2]]: int(match[1])})
    if duration > timedelta(days=AUDIT_TTL_DAYS):
        raise ValueError(f"--since: the audit trail keeps {AUDIT_TTL_DAYS} days; ask for {AUDIT_TTL_DAYS}d at most")
    return duration


def add_parser(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    history = sub.add_parser("history", parents=parents, help="the audit trail: what was decided, fixed, "
                             "approved, undone (needs SAFETYCATCH_TABLE)")
    history.add_argument("--function", metavar="NAME_OR_GLOB", help="only this function (name, ARN or glob)")
    history.add_argument("--since", metavar="DURATION", default="7d",
                         help="how far back: 30m, 12h, 7d, 2w (default 7d)")
    history.add_argument("--format", choices=("table", "json"), default="table")


def _matches(record: dict[str, Any], pattern: str | None) -> bool:
    if not pattern:
        return True
    arn = str(record.get("function", ""))
    return fnmatch.fnmatchcase(arn, pattern) or fnmatch.fnmatchcase(arn.rsplit(":function:", 1)[-1], pattern)


def cmd_history(args: argparse.Namespace) -> int:
    try:
        since = datetime.now(timezone.utc) - parse_duration(args.since)
    except ValueError as exc:
        raise UsageError(f"history: {exc}") from None
    runtime = runtime_for(args)
    require_table(runtime, "history", "the audit trail lives in the state table")
    from chalicelib.store.state import open_store

    store = open_store(runtime.clients(), runtime.table)  # read-only: also in dry-run mode
    records = [{k: r[k] for k in FIELDS if r.get(k) not in (None, "")}
               for r in store.history(since) if _matches(r, args.function)]
    stamp = since.isoformat(timespec="seconds").replace("+00:00", "Z")
    if args.format == "json":
        print(json.dumps({"since": stamp, "records": records}, indent=2))
    else:
        render.history_table(records, stamp)
    return 0
