"""Sentinel mode: every function under the kill-switch, through a few alarms per account and region.

A per-function runaway alarm watches three metrics of one function, and CloudWatch bills alarms per metric:
that is why the kill-switch's scope is tagged or listed functions. A sentinel is one alarm on a Metrics Insights
query that returns one time series per function, each a *contributor* with its own state::

    SELECT SUM(Invocations) FROM SCHEMA("AWS/Lambda", FunctionName)
    GROUP BY FunctionName ORDER BY SUM() DESC LIMIT 500

A runaway loop is, by definition, among the busiest functions, so the 500 series a query returns (CloudWatch's
limit; 10,000 metrics analyzed per query, 200 such alarms per account and region) hold it. When a sentinel goes
to ALARM, the kill-switch checks the sentinel is the one it puts, lists its contributors in ALARM
(DescribeAlarmContributors, every page: CloudWatch keeps up to 100 in ALARM), confirms each exactly as any kill
(``chalicelib.killswitch.evidence.verify_contributor``: the function's own metrics over the thresholds its own alarm
would get, raised by its own baseline - a loop, not a busy function - in the window ending at that contributor's own
``StateTransitionedTimestamp``), and kills only those, up to the hourly kill cap (the rest are named). While the
sentinel stays in ALARM (one busy function is enough), a new loop changes no alarm state: CloudWatch sends only a
"CloudWatch Alarm Contributor State Change", which the same rule subscribes to (and member accounts forward); the
kill-switch acts on the contributor it names once DescribeAlarmContributors shows it in ALARM. After a failed
kill the sentinel itself is set back to OK, so its next evaluation sends a fresh ALARM change. Per-function alarms
stay for functions that need tight thresholds (the ``runaway-loop`` policy's tags and list).

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

from chalicelib.domain import alarms

if TYPE_CHECKING:
    from chalicelib.decide.engine import Engine
    from chalicelib.policy.settings import PolicySet

PREFIX = f"{alarms.PREFIX}.sentinel."
SERIES_PER_ALARM = 500  # Metrics Insights: a query returns at most 500 time series
# (metric, Metrics Insights function, the runaway-loop parameter holding its threshold)
WATCHED = (("Invocations", "SUM", "invocations_per_minute"),
           ("ConcurrentExecutions", "MAX", "concurrent_executions"))


def is_sentinel(alarm_name: Any) -> bool:
    return isinstance(alarm_name, str) and alarm_name.startswith(PREFIX) and len(alarm_name) > len(PREFIX)


def watched_metric(alarm_name: str) -> tuple[str, str, str]:
    """The sentinel's metric, its Metrics Insights function and the runaway-loop parameter holding its threshold;
    ValueError for a name that is no sentinel's."""
    suffix = alarm_name[len(PREFIX):]
    for watched in WATCHED:
        if watched[0].lower() == suffix:
            return watched
    raise ValueError(f"{alarm_name[:120]} is not a sentinel alarm")


def sentinel_specs(invocations_per_minute: int, concurrent_executions: int, minutes: int) -> list[dict[str, Any]]:
    """PutMetricAlarm arguments of the sentinels (a threshold of 0 leaves its metric unwatched)."""
    thresholds = {"invocations_per_minute": invocations_per_minute, "concurrent_executions": concurrent_executions}
    specs = []
    for metric, function, param in WATCHED:
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
