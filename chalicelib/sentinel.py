"""Sentinel mode: every function under the kill-switch, through a few alarms per account and region.

A per-function runaway alarm watches three metrics of one function, and CloudWatch bills alarms per metric:
that is why the kill-switch's scope is tagged or listed functions. A sentinel is one alarm on a Metrics Insights
query that returns one time series per function, each a *contributor* with its own state::

    SELECT SUM(Invocations) FROM SCHEMA("AWS/Lambda", FunctionName)
    GROUP BY FunctionName ORDER BY SUM() DESC LIMIT 500

A runaway loop is, by definition, among the busiest functions, so the 500 series a query returns (CloudWatch's
limit; 10,000 metrics analyzed per query, 200 such alarms per account and region) hold it. When a sentinel goes
to ALARM, the kill-switch lists its contributors in ALARM (DescribeAlarmContributors), confirms each against the
function's own recent metrics and baseline (:func:`confirm_against_baseline`: a loop, not a busy function), and
kills only those. Per-function alarms stay for functions that need tight thresholds (the ``runaway-loop``
policy's tags and list).

Sentinel alarms are named ``safetycatch-runaway-.sentinel.<metric>``: inside the managed-alarm prefix (the
bot's IAM scope and its EventBridge rule), and never a function's alarm (``.`` is not allowed in a function
name).

Example:
    >>> [spec["AlarmName"] for spec in sentinel_specs(5000, 500, 2)]
    ['safetycatch-runaway-.sentinel.invocations', 'safetycatch-runaway-.sentinel.concurrentexecutions']
    >>> is_sentinel("safetycatch-runaway-.sentinel.invocations"), is_sentinel("safetycatch-runaway-orders")
    (True, False)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalicelib import alarms

if TYPE_CHECKING:
    from chalicelib.engine import Engine
    from chalicelib.inventory import Inventory
    from chalicelib.settings import PolicySet

PREFIX = f"{alarms.PREFIX}.sentinel."
SERIES_PER_ALARM = 500  # Metrics Insights: a query returns at most 500 time series
BASELINE_DAYS = 7
BASELINE_FACTOR = 10.0  # a loop runs at least this many times its own usual rate
# (metric, Metrics Insights function, GetMetricData statistic, the runaway-loop parameter holding its threshold)
WATCHED = (("Invocations", "SUM", "Sum", "invocations_per_minute"),
           ("ConcurrentExecutions", "MAX", "Maximum", "concurrent_executions"))


def is_sentinel(alarm_name: Any) -> bool:
    return isinstance(alarm_name, str) and alarm_name.startswith(PREFIX) and len(alarm_name) > len(PREFIX)


def watched_metric(alarm_name: str) -> tuple[str, str, str, str]:
    """The sentinel's metric, its Metrics Insights function, its GetMetricData statistic and the runaway-loop
    parameter holding its threshold; ValueError for a name that is no sentinel's."""
    suffix = alarm_name[len(PREFIX):]
    for watched in WATCHED:
        if watched[0].lower() == suffix:
            return watched
    raise ValueError(f"{alarm_name[:120]} is not a sentinel alarm")


def sentinel_specs(invocations_per_minute: int, concurrent_executions: int, minutes: int) -> list[dict[str, Any]]:
    """PutMetricAlarm arguments of the sentinels (a threshold of 0 leaves its metric unwatched)."""
    thresholds = {"invocations_per_minute": invocations_per_minute, "concurrent_executions": concurrent_executions}
    specs = []
    for metric, function, _, param in WATCHED:
        if not thresholds[param]:
            continue
        query = (f'SELECT {function}({metric}) FROM SCHEMA("AWS/Lambda", FunctionName) GROUP BY FunctionName '
                 f"ORDER BY {function}() DESC LIMIT {SERIES_PER_ALARM}")
        specs.append({
            "AlarmName": f"{PREFIX}{metric.lower()}",
            "AlarmDescription": (f"safetycatch sentinel: any function over {thresholds[param]} {metric} a minute for "
                                 f"{minutes} min is checked against its own baseline and, if it is a loop, throttled "
                                 "to 0. Managed by safetycatch; edits are overwritten."),
            "ActionsEnabled": True,
            "Metrics": [{"Id": "q1", "Expression": query, "Period": 60, "ReturnData": True}],
            "Threshold": float(thresholds[param]),
            "ComparisonOperator": "GreaterThanThreshold",
            "EvaluationPeriods": minutes,
            "DatapointsToAlarm": minutes,
            "TreatMissingData": "notBreaching",
        })
    return specs


def ensure(engine: Engine, params: dict[str, Any]) -> list[str]:
    """Put the sentinels the ``runaway-loop`` params ask for where they are missing or differ (through the
    gateway: dry-run aware, audited); returns the names put. Nothing when ``params["sentinel"]`` is off."""
    if not params.get("sentinel"):
        return []
    existing = engine.inventory.sentinel_alarms(PREFIX)
    put = []
    for spec in sentinel_specs(int(params["invocations_per_minute"]), int(params["concurrent_executions"]),
                               int(params["minutes"])):
        if alarms.canonical(existing.get(spec["AlarmName"])) != alarms.canonical(spec):
            engine.gateway.put_metric_alarm(**spec)
            put.append(spec["AlarmName"])
    return put


def ensure_policy(policy_set: PolicySet, engine: Engine) -> list[str]:
    """:func:`ensure` with the ``runaway-loop`` policy's params (nothing when the policy is missing or off)."""
    cfg = policy_set.policies.get("runaway-loop")
    return ensure(engine, cfg.params) if cfg and cfg.mode != "off" else []


def confirm_against_baseline(inventory: Inventory, function_name: str, alarm_name: str, threshold: float,
                             minutes: int) -> tuple[bool, str]:
    """Is this contributor a runaway loop? Its own metric must be over ``threshold`` for each of the last
    ``minutes`` minutes AND at least ``BASELINE_FACTOR`` times its average minute of the last ``BASELINE_DAYS``
    days (GetMetricData). A function that is always this busy is not killed. Returns (confirmed, why)."""
    metric, _, stat, _ = watched_metric(alarm_name)
    recent, baseline = inventory.recent_and_baseline(function_name, metric, stat, minutes, BASELINE_DAYS)
    if len(recent) < minutes or min(recent) <= threshold:
        return False, (f"{function_name}: {metric} {_fmt(recent)} in the last {minutes} min is not over "
                       f"{threshold:g} every minute")
    floor = BASELINE_FACTOR * max(baseline, 1.0)
    if min(recent) < floor:
        return False, (f"{function_name}: {metric} {_fmt(recent)} is within {BASELINE_FACTOR:g}x its "
                       f"{BASELINE_DAYS}-day baseline ({baseline:.1f}/min): busy, not a loop")
    return True, (f"{function_name}: {metric} {_fmt(recent)} a minute, over {threshold:g} and "
                  f"{min(recent) / max(baseline, 1.0):.0f}x its {BASELINE_DAYS}-day baseline ({baseline:.1f}/min)")


def _fmt(values: list[float]) -> str:
    return "/".join(f"{v:g}" for v in values) or "no data"
