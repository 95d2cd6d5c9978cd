"""provisioned-idle (footgun 8): provisioned concurrency that mostly sits idle.

Provisioned concurrency is billed every second it exists, used or not. When the average
ProvisionedConcurrencyUtilization of an alias or version over ``lookback_days`` is under ``min_utilization``,
it is over-provisioned. The fix lowers it to cover the observed peak (Maximum ProvisionedConcurrentExecutions)
with ``headroom``, never below 1; when the peak already needs what is there, the advice is scheduled or
target-tracking scaling (Application Auto Scaling) instead. A configuration changed within the look-back is
left alone (too recent to judge). CloudWatch has no datapoint for minutes without invocations, so the average
is over busy minutes only: the real utilization is lower still. Savings are estimates from published prices.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime, timedelta, timezone

from chalicelib import pricing
from chalicelib.checks.base import Check, Param, Params
from chalicelib.model import (
    EACH_PROVISIONED,
    AccountFacts,
    Finding,
    FixSpec,
    FunctionSnapshot,
    MetricQuery,
    ProvisionedConfig,
)


def metrics(params: Params) -> list[MetricQuery]:
    days = params["lookback_days"]
    return [MetricQuery("ProvisionedConcurrencyUtilization", "Average", days, qualifier=EACH_PROVISIONED),
            MetricQuery("ProvisionedConcurrentExecutions", "Maximum", days, qualifier=EACH_PROVISIONED)]


def _changed_within(config: ProvisionedConfig, days: int, now: datetime) -> bool:
    for fmt in ("%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%dT%H:%M:%S%z"):
        try:
            return now - datetime.strptime(config.last_modified, fmt) < timedelta(days=days)
        except ValueError:
            continue
    return False


def _finding(snapshot: FunctionSnapshot, config: ProvisionedConfig, params: Params, utilization: float,
             peak: float) -> Finding:
    days, qualifier = params["lookback_days"], config.qualifier
    seen = (f"alias/version {qualifier}: average utilization {utilization:.0%} over {days} days, "
            f"peak {peak:.0f} in use")
    evidence = {"qualifier": qualifier, "utilization": round(utilization, 4), "peak": peak,
                "allocated": config.allocated}
    current = config.allocated or config.requested
    if current is None:
        return Finding(CHECK.id, snapshot.arn, "", f"Provisioned concurrency mostly idle ({seen}), but its size "
                       f"is unknown ({snapshot.provisioned_note}). No fix proposed; check it with "
                       f"`aws lambda list-provisioned-concurrency-configs`.", None, evidence)
    wanted = max(1, math.ceil(peak * params["headroom"]))
    if wanted >= current:
        return Finding(CHECK.id, snapshot.arn, "", f"Provisioned concurrency {current} is mostly idle ({seen}) "
                       f"but the peak needs it: scale it on a schedule or on utilization with Application Auto "
                       f"Scaling instead of a fixed value.", None, evidence)
    saving = pricing.provisioned_monthly(current - wanted, snapshot.memory_mb, snapshot.architectures)
    evidence["estimated_monthly_saving_usd"] = round(saving, 2)
    message = (
        f"Provisioned concurrency {current} is mostly idle ({seen}). Lower it to {wanted} "
        f"(peak x {params['headroom']}): estimated saving {pricing.usd(saving)}/month at {snapshot.memory_mb} MB "
        f"({pricing.PRICE_LIST}). Better still, let Application Auto Scaling track utilization."
    )
    return Finding(CHECK.id, snapshot.arn, "", message, FixSpec(
        "set-provisioned-concurrency", snapshot.arn,
        {"Qualifier": qualifier, "ProvisionedConcurrentExecutions": wanted},
        {"Qualifier": qualifier, "ProvisionedConcurrentExecutions": current}), evidence)


def evaluate(snapshot: FunctionSnapshot, params: Params, account: AccountFacts) -> list[Finding]:
    """One finding per alias / version whose provisioned concurrency is under ``min_utilization`` on average.

    Example:
        >>> from chalicelib.model import FunctionRef
        >>> fn = FunctionSnapshot(FunctionRef("api", "123456789012", "us-east-1"), memory_mb=1024,
        ...                       provisioned=(ProvisionedConfig("live", 20, 20, "READY"),))
        >>> p = {"lookback_days": 7, "min_utilization": 0.5, "headroom": 1.25}
        >>> for q in metrics(p):
        ...     fn.metrics[MetricQuery(q.metric, q.stat, 7, qualifier="live")] = 0.1 if q.stat == "Average" else 3
        >>> evaluate(fn, p, AccountFacts())[0].fix.params
        {'Qualifier': 'live', 'ProvisionedConcurrentExecutions': 4}
    """
    findings = []
    now = datetime.now(timezone.utc)
    utilization_query, peak_query = metrics(params)
    for config in snapshot.provisioned:
        if config.status not in ("READY", "") or _changed_within(config, params["lookback_days"], now):
            continue
        # No datapoint at all: nothing ran on it for the whole look-back (utilization 0).
        utilization = snapshot.metrics.get(replace(utilization_query, qualifier=config.qualifier)) or 0.0
        peak = snapshot.metrics.get(replace(peak_query, qualifier=config.qualifier)) or 0.0
        if utilization < params["min_utilization"]:
            findings.append(_finding(snapshot, config, params, utilization, peak))
    return findings


CHECK = Check(
    id="provisioned-idle",
    footgun="8",
    title="Provisioned concurrency mostly idle",
    doc=__doc__ or "",
    default_mode="approve",
    default_severity="medium",
    evaluate=evaluate,
    params=(
        Param("lookback_days", int, 7, "Days of utilization history to average.", minimum=1, maximum=63),
        Param("min_utilization", float, 0.5, "Average ProvisionedConcurrencyUtilization (0-1) under which "
              "provisioned concurrency is idle.", minimum=0.01, maximum=1.0),
        Param("headroom", float, 1.25, "The fix keeps ceil(peak x headroom), never below 1.", minimum=1.0,
              maximum=10.0),
    ),
    needs=frozenset({"provisioned"}),
    metrics=metrics,
    fix_actions=("set-provisioned-concurrency",),
    read_permissions=("lambda:ListProvisionedConcurrencyConfigs", "cloudwatch:ListMetrics",
                      "cloudwatch:GetMetricData"),
    triggers=frozenset(("PutProvisionedConcurrencyConfig", "DeleteProvisionedConcurrencyConfig")),
)
