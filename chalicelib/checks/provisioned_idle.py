"""provisioned-idle (footgun 8): provisioned concurrency that mostly sits idle.

Provisioned concurrency is billed every second it exists, used or not. When the average
ProvisionedConcurrencyUtilization of an alias or version over ``lookback_days`` is under ``min_utilization``,
it is over-provisioned. The footgun's fix is Application Auto Scaling, so that is what the check reads and
proposes:

* Already scaled (a scalable target on the alias / version, with its scaling policies and scheduled actions,
  read only for flagged functions): the value belongs to the scaler, and lowering it would start a fight with
  it. No change is proposed; the message names the scaler and says to tune it (MinCapacity, the scheduled
  minimums, the target value).

* Not scaled: the fix registers the alias / version as a scalable target, with MinCapacity the average number
  of environments in use and MaxCapacity the observed peak (Maximum ProvisionedConcurrentExecutions) x
  ``headroom``, never above today's value, and a target-tracking policy on ProvisionedConcurrencyUtilization at
  ``target_utilization``. Undo removes the policy and the target and puts the prior value back. Scheduled
  actions for business hours are the other documented option (the message says so).

A configuration changed within the look-back is left alone (too recent to judge). CloudWatch has no datapoint
for minutes without invocations, so the average is over busy minutes only: the real utilization is lower still.
Savings are estimates from published prices.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime, timedelta, timezone

from chalicelib.checks.base import Check, Param, Params
from chalicelib.core.model import (
    EACH_PROVISIONED,
    AccountFacts,
    Finding,
    FixSpec,
    FunctionSnapshot,
    MetricQuery,
    ProvisionedConfig,
    Scaler,
)
from chalicelib.domain import pricing

POLICY_NAME = "safetycatch-pc-utilization"


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
    evidence: dict[str, object] = {"qualifier": qualifier, "utilization": round(utilization, 4), "peak": peak,
                                   "allocated": config.allocated}
    current = config.allocated or config.requested
    if current is None:
        return Finding(CHECK.id, snapshot.arn, "", f"Provisioned concurrency mostly idle ({seen}), but its size "
                       f"is unknown ({snapshot.provisioned_note}). No fix proposed; check it with "
                       f"`aws lambda list-provisioned-concurrency-configs`.", None, evidence)
    scaler = next((s for s in snapshot.scalers if s.qualifier == qualifier), None)
    if scaler is not None:
        evidence["scaler"] = {"min": scaler.min_capacity, "max": scaler.max_capacity,
                              "policies": [p[0] for p in scaler.policies],
                              "schedules": [a[0] for a in scaler.schedules]}
        return Finding(CHECK.id, snapshot.arn, "", (
            f"Provisioned concurrency {current} is mostly idle ({seen}), but Application Auto Scaling manages it "
            f"({describe_scaler(scaler)}): lowering the value would fight the scaler, which sets it back. Tune "
            f"the scaler instead: a lower MinCapacity or scheduled minimum, or a higher target value."), None, evidence)
    if "scaling" not in snapshot.loaded:
        return Finding(CHECK.id, snapshot.arn, "", f"Provisioned concurrency {current} is mostly idle ({seen}); "
                       f"whether Application Auto Scaling manages it is not known, so no change is proposed.",
                       None, evidence)
    return _scale_it(snapshot, config, params, current, utilization, peak, seen, evidence)


def describe_scaler(scaler: Scaler) -> str:
    """A scaler in a few words.

    Example:
        >>> policy, schedule = ("util", "TargetTrackingScaling", 0.7), ("day", "cron(0 8 * * ? *)")
        >>> describe_scaler(Scaler("live", 2, 20, (policy,), (schedule,)))
        'min 2, max 20; target tracking at 70% (util); scheduled: day cron(0 8 * * ? *)'
    """
    parts = [f"min {scaler.min_capacity}, max {scaler.max_capacity}"]
    for name, kind, target in scaler.policies:
        parts.append(f"target tracking at {target:.0%} ({name})" if kind == "TargetTrackingScaling"
                     and target is not None else f"{kind} policy {name}")
    if scaler.schedules:
        parts.append("scheduled: " + ", ".join(f"{name} {schedule}" for name, schedule in scaler.schedules))
    return "; ".join(parts)


def _scale_it(snapshot: FunctionSnapshot, config: ProvisionedConfig, params: Params, current: int,
              utilization: float, peak: float, seen: str, evidence: dict[str, object]) -> Finding:
    """No scaler yet: propose target tracking with min/max from what was observed, never above today's value."""
    target = params["target_utilization"]
    in_use = round(utilization * current, 6)  # 0.3 x 20 is 6, not 6.000000000000001
    minimum = max(1, math.ceil(in_use))
    maximum = max(minimum, min(current, math.ceil(peak * params["headroom"])))
    expected = min(maximum, max(minimum, math.ceil(in_use / target)))
    saving = pricing.provisioned_monthly(max(0, current - expected), snapshot.memory_mb, snapshot.architectures)
    evidence.update({"min_capacity": minimum, "max_capacity": maximum, "target_utilization": target,
                     "estimated_monthly_saving_usd": round(saving, 2)})
    capped = f", capped at today's {current}" if maximum == current and minimum < current else ""
    message = (
        f"Provisioned concurrency {current} is mostly idle ({seen}) and no Application Auto Scaling manages it. "
        f"Scale it on utilization instead of a fixed value: register {config.qualifier} as a scalable target "
        f"(min {minimum}, the average in use; max {maximum}, the peak x {params['headroom']}{capped}) with target "
        f"tracking at {target:.0%} ProvisionedConcurrencyUtilization - estimated saving {pricing.usd(saving)}/month "
        f"at {snapshot.memory_mb} MB ({pricing.PRICE_LIST}). Scheduled actions can raise the minimum for business "
        f"hours."
    )
    return Finding(CHECK.id, snapshot.arn, "", message, FixSpec(
        "scale-provisioned-concurrency", snapshot.arn,
        {"Qualifier": config.qualifier, "MinCapacity": minimum, "MaxCapacity": maximum, "TargetValue": target,
         "PolicyName": POLICY_NAME},
        {"Qualifier": config.qualifier, "ProvisionedConcurrentExecutions": current, "ScalableTarget": None}), evidence)


def evaluate(snapshot: FunctionSnapshot, params: Params, account: AccountFacts) -> list[Finding]:
    """One finding per alias / version whose provisioned concurrency is under ``min_utilization`` on average.

    Example:
        >>> from chalicelib.core.model import FunctionRef
        >>> fn = FunctionSnapshot(FunctionRef("api", "123456789012", "us-east-1"), memory_mb=1024,
        ...                       provisioned=(ProvisionedConfig("live", 20, 20, "READY"),))
        >>> p = {"lookback_days": 7, "min_utilization": 0.5, "headroom": 1.25, "target_utilization": 0.7}
        >>> for q in metrics(p):
        ...     fn.metrics[MetricQuery(q.metric, q.stat, 7, qualifier="live")] = 0.1 if q.stat == "Average" else 3
        >>> fn.loaded.add("scaling")  # read: no Application Auto Scaling on it
        >>> spec = evaluate(fn, p, AccountFacts())[0].fix
        >>> spec.action, spec.params["MinCapacity"], spec.params["MaxCapacity"]
        ('scale-provisioned-concurrency', 2, 4)
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
        Param("headroom", float, 1.25, "The scaler's MaxCapacity is ceil(peak x headroom), never above today's "
              "value.", minimum=1.0, maximum=10.0),
        Param("target_utilization", float, 0.7, "ProvisionedConcurrencyUtilization (0-1) the proposed "
              "target-tracking policy keeps.", minimum=0.1, maximum=0.95),
    ),
    needs=frozenset({"provisioned"}),
    finding_needs=frozenset({"scaling"}),
    metrics=metrics,
    fix_actions=("scale-provisioned-concurrency",),
    read_permissions=("lambda:ListProvisionedConcurrencyConfigs", "cloudwatch:ListMetrics",
                      "cloudwatch:GetMetricData", "application-autoscaling:DescribeScalableTargets",
                      "application-autoscaling:DescribeScalingPolicies",
                      "application-autoscaling:DescribeScheduledActions"),
    triggers=frozenset(("PutProvisionedConcurrencyConfig", "DeleteProvisionedConcurrencyConfig")),
)
