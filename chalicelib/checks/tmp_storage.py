"""tmp-storage (footgun 12): /tmp fills up across warm invocations.

An execution environment is reused across warm invocations, and so is its /tmp (512 MB by default, up to
10 GB). A handler that writes temporary files and never removes them fills it up, and later invocations on
that environment fail with "No space left on device" (errno ENOSPC). The check looks for those messages in
the function's log group over the last ``lookback_hours``: one Logs Insights query per 50 log groups in a
sweep, FilterLogEvents for a single function. Log lines are counted, never quoted (they may hold data).

Fix (by the owner): clean /tmp at the start of each invocation and in a ``finally`` - write to a
per-invocation directory (``/tmp/work-<request id>``) and remove it - or raise EphemeralStorage if one
invocation genuinely needs more space.
"""

from __future__ import annotations

from datetime import datetime, timezone

from chalicelib.checks.base import Check, Param, Params
from chalicelib.core.model import AccountFacts, Finding, FunctionSnapshot, LogSearch


def log_search(params: Params) -> LogSearch | None:
    patterns = tuple(p for p in params["patterns"] if p.strip())
    return LogSearch(patterns, params["lookback_hours"]) if patterns else None


def evaluate(snapshot: FunctionSnapshot, params: Params, account: AccountFacts) -> list[Finding]:
    """Flag a function whose log group has at least ``min_hits`` of the patterns in the window.

    Example:
        >>> from chalicelib.core.model import FunctionRef, LogHits
        >>> fn = FunctionSnapshot(FunctionRef("thumbs", "123456789012", "us-east-1"),
        ...                       log_hits=LogHits(3, 1749564157000, "/aws/lambda/thumbs"))
        >>> p = {"patterns": ["No space left on device", "ENOSPC"], "lookback_hours": 24, "min_hits": 1}
        >>> evaluate(fn, p, AccountFacts())[0].evidence["hits"]
        3
    """
    hits = snapshot.log_hits
    if hits is None or hits.count < params["min_hits"]:
        return []
    last = datetime.fromtimestamp(hits.last_seen_ms / 1000, timezone.utc).strftime("%Y-%m-%d %H:%M UTC") \
        if hits.last_seen_ms else "time unknown"
    what = " / ".join(repr(p) for p in params["patterns"])
    message = (
        f"{what} logged {hits.count} time(s) in the last {params['lookback_hours']} h in {hits.log_group} "
        f"(last {last}): /tmp (ephemeral storage {snapshot.ephemeral_mb} MB) fills up across warm invocations. "
        f"Clean /tmp at the start of each invocation and in a finally block (write to /tmp/work-<request id> and "
        f"remove it), or raise EphemeralStorage (up to 10240 MB) if one invocation needs more."
    )
    return [Finding(
        policy=CHECK.id, function_arn=snapshot.arn, severity="", message=message,
        evidence={"hits": hits.count, "last_seen_ms": hits.last_seen_ms, "log_group": hits.log_group,
                  "ephemeral_mb": snapshot.ephemeral_mb},
    )]


CHECK = Check(
    id="tmp-storage",
    footgun="12",
    title="/tmp filling up across warm invocations",
    doc=__doc__ or "",
    default_mode="notify",
    default_severity="medium",
    evaluate=evaluate,
    params=(
        Param("lookback_hours", int, 24, "Hours of logs searched.", minimum=1, maximum=336),
        Param("patterns", list, ["No space left on device", "ENOSPC"], "Log text that means /tmp is full "
              "(plain text, case-insensitive)."),
        Param("min_hits", int, 1, "Matches needed to flag the function.", minimum=1, maximum=100_000),
    ),
    needs=frozenset({"logs"}),
    log_search=log_search,
    read_permissions=("logs:DescribeLogGroups", "logs:StartQuery", "logs:GetQueryResults",
                      "logs:FilterLogEvents"),
    triggers=frozenset(("UpdateFunctionConfiguration:ephemeralStorage",)),
)
