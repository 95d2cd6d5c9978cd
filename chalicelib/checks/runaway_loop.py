"""runaway-loop (kill-switch): every function in scope has a runaway alarm, so a loop is stopped in minutes.

A recursive loop (footgun 4) costs money by the minute; AWS's loop detection covers a few services, acts after
16 hops and tells you hours later. safetycatch keeps one alarm per function in scope,
``safetycatch-runaway-<function>``, on Invocations and ConcurrentExecutions over the thresholds below and on
RecursiveInvocationsDropped. When it goes to ALARM (or an AWS Health notice reports a loop) the kill-switch
throttles the function to 0, disables its event source mappings and turns Lambda's loop detection to
Terminate, after storing the exact prior state; ``safetycatch restore`` puts it back. A function with a
recursive-trigger finding gets a sensitive alarm (thresholds divided by ``sensitivity``, one minute). Thresholds
never go under ``baseline_multiplier`` x the function's own busiest minute over ``baseline_days``.
"""

from __future__ import annotations

import fnmatch
import math

from chalicelib.checks.base import Check, Param, Params, Rule
from chalicelib.core.model import AccountFacts, Finding, FixSpec, FunctionSnapshot, MetricQuery
from chalicelib.domain import alarms
from chalicelib.domain.loops import LOOP_PATH_CHANGES

LOOP_RISK_POLICIES = frozenset({"recursive-trigger"})


def in_scope(snapshot: FunctionSnapshot, params: Params) -> bool:
    """Tagged ``tag_key=tag_value``, named in ``functions``, or flagged by a loop-risk check (this check
    runs after those, see ``Check.after``)."""
    risky = bool(snapshot.flagged_by & LOOP_RISK_POLICIES) and bool(params["alarm_recursive_triggers"])
    return _listed(snapshot, params) or risky


def _listed(snapshot: FunctionSnapshot, params: Params) -> bool:
    tagged = snapshot.tagged(params["tag_key"], params["tag_value"])
    return tagged or any(fnmatch.fnmatchcase(snapshot.name, glob) for glob in params["functions"])


BASELINE_LAG_DAYS = 1  # the baseline leaves out the last day: a loop running now must not raise its own threshold


def metrics(params: Params) -> list[MetricQuery]:
    """The function's own baseline: its busiest minute of Invocations and its peak ConcurrentExecutions over
    ``baseline_days`` up to a day ago."""
    days = params["baseline_days"] - BASELINE_LAG_DAYS
    return [MetricQuery("Invocations", "Sum", days, period=60, lag_days=BASELINE_LAG_DAYS),
            MetricQuery("ConcurrentExecutions", "Maximum", days, lag_days=BASELINE_LAG_DAYS)]


def wanted_thresholds(snapshot: FunctionSnapshot, params: Params) -> alarms.Thresholds | None:
    """The alarm the function should have, or None when it is out of scope (:func:`kill_thresholds`).

    Example:
        >>> from chalicelib.core.model import FunctionRef
        >>> fn = FunctionSnapshot(FunctionRef("f", "123456789012", "us-east-1"), flagged_by={"recursive-trigger"})
        >>> wanted_thresholds(fn, CHECK.defaults())
        Thresholds(invocations_per_minute=500, concurrent_executions=50, recursion_dropped=True, minutes=1)
        >>> fn.metrics[metrics(CHECK.defaults())[0]] = 8000.0
        >>> fn.flagged_by.clear()
        >>> wanted_thresholds(fn, {**CHECK.defaults(), "tag_key": "x", "functions": ["f"]}).invocations_per_minute
        80000
    """
    risky = bool(snapshot.flagged_by & LOOP_RISK_POLICIES)
    if not (_listed(snapshot, params) or (risky and params["alarm_recursive_triggers"])):
        return None
    return kill_thresholds(snapshot, params)


def kill_thresholds(snapshot: FunctionSnapshot, params: Params) -> alarms.Thresholds:
    """What a kill of the function needs its own metrics to cross: its alarm's thresholds, and what a sentinel's
    contributor is confirmed against (chalicelib/killswitch/evidence.py), so both kills follow one rule.

    Thresholds come from the policy and from the function's own baseline (``metrics``, read into the snapshot),
    whichever is higher: ``baseline_multiplier`` x its busiest minute (and its peak concurrency) over
    ``baseline_days`` up to a day ago, so tagging a busy, healthy function does not get it killed on an ordinary
    day, and a loop running now does not raise its own threshold. A recursive-trigger finding divides the policy's
    thresholds by ``sensitivity`` (one minute), but never goes under twice the function's own busiest minute.

    Example:
        >>> from chalicelib.core.model import FunctionRef
        >>> fn = FunctionSnapshot(FunctionRef("f", "123456789012", "us-east-1"))
        >>> fn.metrics[metrics(CHECK.defaults())[0]] = 300.0
        >>> kill_thresholds(fn, CHECK.defaults()).invocations_per_minute
        5000
    """
    risky = bool(snapshot.flagged_by & LOOP_RISK_POLICIES)
    divisor = params["sensitivity"] if risky else 1
    factor = max(2.0, params["baseline_multiplier"] / divisor) if risky else params["baseline_multiplier"]
    busiest_minute, peak = (snapshot.metrics.get(q) or 0.0 for q in metrics(params))

    def threshold(policy_value: int, baseline: float) -> int:
        if not policy_value:
            return 0  # not watched
        return max(math.ceil(policy_value / divisor), math.ceil(baseline * factor))

    return alarms.Thresholds(threshold(params["invocations_per_minute"], busiest_minute),
                             threshold(params["concurrent_executions"], peak),
                             params["watch_recursion_dropped"], 1 if risky else params["minutes"])


def evaluate(snapshot: FunctionSnapshot, params: Params, account: AccountFacts) -> list[Finding]:
    """Propose creating (or updating) the managed alarm when it is missing or differs from the wanted one."""
    wanted = wanted_thresholds(snapshot, params)
    if wanted is None or not wanted.watches_anything:
        return []
    spec = alarms.alarm_spec(snapshot.name, wanted)
    if alarms.canonical(snapshot.alarm) == alarms.canonical(spec):
        return []
    risky = sorted(snapshot.flagged_by & LOOP_RISK_POLICIES)
    why = f" (sensitive: {', '.join(risky)} finding)" if risky else ""
    if snapshot.alarm is None:
        head = "No runaway alarm: a recursive loop would run unnoticed until the bill comes."
    else:
        head = "The runaway alarm differs from the policy (edited by hand or the thresholds changed)."
    message = f"{head} Put {spec['AlarmName']}: {alarms.describe(wanted)}{why}; in ALARM the kill-switch " \
              "throttles the function to 0."
    return [Finding(CHECK.id, snapshot.arn, "", message,
                    FixSpec("put-runaway-alarm", snapshot.arn, wanted.to_params(snapshot.name),
                            {"Alarm": snapshot.alarm}),
                    {"sensitive": bool(risky), "existing": snapshot.alarm is not None})]


# A kill throttles a function to 0: an alarm that fires on ordinary traffic would turn the kill-switch into an
# outage. These floors hold for the sensitive alarm too (thresholds divided by ``sensitivity``).
MIN_INVOCATIONS_PER_MINUTE = 50
MIN_CONCURRENT_EXECUTIONS = 5
RULES = (
    Rule(f"invocations_per_minute / sensitivity >= {MIN_INVOCATIONS_PER_MINUTE} (or 0: not watched): an alarm "
         "must not fire on ordinary traffic", ("invocations_per_minute", "sensitivity"),
         lambda p: p["invocations_per_minute"] == 0
         or p["invocations_per_minute"] >= MIN_INVOCATIONS_PER_MINUTE * p["sensitivity"]),
    Rule(f"concurrent_executions / sensitivity >= {MIN_CONCURRENT_EXECUTIONS} (or 0: not watched): an alarm "
         "must not fire on ordinary traffic", ("concurrent_executions", "sensitivity"),
         lambda p: p["concurrent_executions"] == 0
         or p["concurrent_executions"] >= MIN_CONCURRENT_EXECUTIONS * p["sensitivity"]),
    Rule("the alarm watches something: invocations_per_minute, concurrent_executions or watch_recursion_dropped",
         ("invocations_per_minute", "concurrent_executions", "watch_recursion_dropped"),
         lambda p: bool(p["invocations_per_minute"] or p["concurrent_executions"] or p["watch_recursion_dropped"])),
)

CHECK = Check(
    id="runaway-loop",
    footgun="4",
    title="Kill-switch: a function in a runaway invocation loop",
    doc=__doc__ or "",
    default_mode="auto",
    default_severity="medium",
    evaluate=evaluate,
    params=(
        Param("tag_key", str, "safetycatch:kill-switch", "Tag key that puts a function under the kill-switch."),
        Param("tag_value", str, "true", "Tag value that puts a function under the kill-switch (case-insensitive)."),
        Param("functions", list, [], "Function names or globs under the kill-switch without a tag."),
        Param("alarm_recursive_triggers", bool, True, "Also alarm every function with a recursive-trigger finding."),
        Param("invocations_per_minute", int, 5000, "Invocations per minute that mean a loop (0: not watched).",
              minimum=0, maximum=10_000_000),
        Param("concurrent_executions", int, 500, "Concurrent executions that mean a loop (0: not watched).",
              minimum=0, maximum=100_000),
        Param("watch_recursion_dropped", bool, True, "Alarm when Lambda drops a recursive invocation."),
        Param("sentinel", bool, False, "Also watch every function through a few Metrics Insights alarms per "
              "account and region (chalicelib/killswitch/sentinel.py); a contributor is killed once confirmed a loop."),
        Param("minutes", int, 2, "Consecutive minutes over a threshold before the alarm fires.", minimum=1, maximum=60),
        Param(
            "sensitivity",
            int,
            10,
            "A recursive-trigger finding divides the thresholds by this (1 minute).",
            minimum=1,
            maximum=1000,
        ),
        Param("baseline_multiplier", int, 10, "Thresholds are at least this many times the function's busiest "
              "minute (and peak concurrency) over baseline_days.", minimum=1, maximum=1000),
        Param("baseline_days", int, 14, "Days of the function's own metrics its baseline is taken from, up to a "
              "day ago (per-minute data is kept 15 days).", minimum=2, maximum=14),
        Param(
            "max_kills_per_hour",
            int,
            3,
            "Automatic kills per account per hour; beyond it: notify only.",
            minimum=0,
            maximum=100,
        ),
    ),
    rules=RULES,
    needs=frozenset({"alarms", "metrics"}),
    in_scope=in_scope,
    metrics=metrics,
    fix_actions=("put-runaway-alarm", "kill"),
    read_permissions=(
        "cloudwatch:DescribeAlarms",
        "cloudwatch:DescribeAlarmContributors",
        "cloudwatch:GetMetricData",
        "lambda:GetFunctionConcurrency",
        "lambda:ListEventSourceMappings",
        "lambda:GetFunctionRecursionConfig",
    ),
    after=LOOP_RISK_POLICIES,
    triggers=LOOP_PATH_CHANGES,
)
