"""reserved-concurrency (footgun 9): a critical function without reserved concurrency.

Without a reservation, one spiking function can take the account's whole concurrency pool and throttle
the critical ones. A reservation both guarantees slots and caps the function. The cap is sized from the
observed peak (never below it) with headroom, and never leaves the account's unreserved pool under
``min_unreserved`` (AWS refuses below 100).
"""

from __future__ import annotations

import math

from chalicelib.checks.base import Check, Param, Params, Rule
from chalicelib.core.model import AccountFacts, Finding, FixSpec, FunctionSnapshot, MetricQuery


def in_scope(snapshot: FunctionSnapshot, params: Params) -> bool:
    """Only functions tagged ``tag_key=tag_value`` (default ``critical=true``) are in scope."""
    return snapshot.tagged(params["tag_key"], params["tag_value"])


def metrics(params: Params) -> list[MetricQuery]:
    return [MetricQuery("ConcurrentExecutions", "Maximum", params["lookback_days"])]


def evaluate(snapshot: FunctionSnapshot, params: Params, account: AccountFacts) -> list[Finding]:
    """Propose max(min, ceil(peak × headroom)), bounded by what the unreserved pool can give.

    Example:
        >>> from chalicelib.core.model import FunctionRef
        >>> fn = FunctionSnapshot(FunctionRef("pay", "123456789012", "us-east-1"), tags={"critical": "true"})
        >>> fn.metrics[MetricQuery("ConcurrentExecutions", "Maximum", 14)] = 40.0
        >>> p = {"tag_key": "critical", "tag_value": "true", "min": 10, "headroom": 1.5,
        ...      "lookback_days": 14, "account_limit": 1000, "min_unreserved": 100}
        >>> evaluate(fn, p, AccountFacts())[0].fix.params
        {'ReservedConcurrentExecutions': 60}
    """
    if not in_scope(snapshot, params) or snapshot.reserved_concurrency is not None:
        return []
    peak_value = snapshot.metrics.get(metrics(params)[0])
    peak = math.ceil(peak_value or 0)
    wanted = max(params["min"], math.ceil(peak * params["headroom"]))
    if account.unreserved_concurrency is not None:
        pool, pool_note = account.unreserved_concurrency, f"{account.unreserved_concurrency} unreserved"
    else:
        pool = account.concurrency_limit or params["account_limit"]
        pool_note = (f"account limit {pool}" if account.concurrency_limit else
                     f"account limit unavailable ({account.unavailable or 'not readable'}); assumed {pool}")
    ceiling = pool - params["min_unreserved"]
    seen = (f"peak {peak} concurrent over {params['lookback_days']} days" if peak_value is not None
            else f"no ConcurrentExecutions data over {params['lookback_days']} days")
    head = f"Critical function has no reserved concurrency: a spike elsewhere can throttle it ({seen}; {pool_note})."
    evidence = {"peak": peak_value, "pool": pool, "ceiling": ceiling,
                "account_limit": account.concurrency_limit or params["account_limit"]}
    if ceiling < max(peak, 1):
        return [Finding(CHECK.id, snapshot.arn, "", head + f" No safe cap: reserving {max(peak, 1)} would "
                        f"leave the unreserved pool under {params['min_unreserved']}.", None, evidence)]
    value = min(wanted, ceiling)
    return [Finding(
        CHECK.id, snapshot.arn, "", head + f" Reserve {value}.",
        FixSpec("set-reserved-concurrency", snapshot.arn, {"ReservedConcurrentExecutions": value},
                {"ReservedConcurrentExecutions": None}),
        evidence,
    )]


CHECK = Check(
    id="reserved-concurrency",
    footgun="9",
    title="Critical function without reserved concurrency",
    doc=__doc__ or "",
    default_mode="auto",
    default_severity="medium",
    evaluate=evaluate,
    params=(
        Param("tag_key", str, "critical", "Tag key that marks a function critical."),
        Param("tag_value", str, "true", "Tag value that marks a function critical (case-insensitive)."),
        Param("min", int, 10, "Smallest reservation ever proposed.", minimum=1, maximum=1000),
        Param("headroom", float, 1.5, "Multiplier over the observed peak.", minimum=1.0, maximum=10.0),
        Param("lookback_days", int, 14, "Days of ConcurrentExecutions history to take the peak from.",
              minimum=1, maximum=63),
        Param("account_limit", int, 1000, "Account concurrency limit to assume when it cannot be read.",
              minimum=100, maximum=1_000_000),
        Param("min_unreserved", int, 100, "Unreserved concurrency the account must keep.", minimum=100,
              maximum=1_000_000),
    ),
    rules=(Rule("min + min_unreserved <= account_limit: the smallest reservation fits the assumed pool",
                ("min", "min_unreserved", "account_limit"),
                lambda p: p["min"] + p["min_unreserved"] <= p["account_limit"]),),
    needs=frozenset({"concurrency", "metrics", "account"}),
    in_scope=in_scope,
    metrics=metrics,
    fix_actions=("set-reserved-concurrency",),
    read_permissions=("lambda:GetFunction", "lambda:GetAccountSettings",
                      "cloudwatch:GetMetricData"),
    triggers=frozenset(("PutFunctionConcurrency", "DeleteFunctionConcurrency")),
)
