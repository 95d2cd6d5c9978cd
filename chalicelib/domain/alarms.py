"""The runaway alarm safetycatch manages for a function: its wanted shape and a canonical form to compare.

One metric-math alarm per function, named ``safetycatch-runaway-<function name>`` (contract). It goes to ALARM
when, for ``minutes`` consecutive one-minute periods, Invocations (Sum) or ConcurrentExecutions (Maximum)
exceed their thresholds, or Lambda's own loop detection drops a recursive invocation
(RecursiveInvocationsDropped > 0). Every input is read through ``FILL(m, 0)``: a series without a datapoint at
a timestamp (RecursiveInvocationsDropped has none on a normal minute) would otherwise leave the whole expression
without a value there, and a loop visible in Invocations alone would never breach. CloudWatch sends every state
change to EventBridge, where app.py's rule hands ALARM changes to the kill-switch. Pure: no AWS calls here.

Example:
    >>> spec = alarm_spec("orders-api", Thresholds(5000, 500, True, 2))
    >>> spec["AlarmName"], spec["Metrics"][0]["Expression"]
    ('safetycatch-runaway-orders-api', 'IF(FILL(inv, 0) > 5000 OR FILL(conc, 0) > 500 OR FILL(rec, 0) > 0, 1, 0)')
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PREFIX = "safetycatch-runaway-"

# PutMetricAlarm arguments that DescribeAlarms gives back (what a prior alarm is restored from).
_PUT_KEYS = ("AlarmName", "AlarmDescription", "ActionsEnabled", "OKActions", "AlarmActions",
             "InsufficientDataActions", "MetricName", "Namespace", "Statistic", "ExtendedStatistic", "Dimensions",
             "Period", "Unit", "EvaluationPeriods", "DatapointsToAlarm", "Threshold", "ComparisonOperator",
             "TreatMissingData", "EvaluateLowSampleCountPercentile", "Metrics", "ThresholdMetricId")


@dataclass(frozen=True)
class Thresholds:
    """What the alarm watches; 0 (or False) leaves a metric out."""

    invocations_per_minute: int
    concurrent_executions: int
    recursion_dropped: bool
    minutes: int

    @property
    def watches_anything(self) -> bool:
        return bool(self.invocations_per_minute or self.concurrent_executions or self.recursion_dropped)

    def to_params(self, function_name: str) -> dict[str, Any]:
        """The compact form a fix spec carries (``from_params`` reads it back)."""
        return {"AlarmName": alarm_name(function_name), "FunctionName": function_name,
                "InvocationsPerMinute": self.invocations_per_minute,
                "ConcurrentExecutions": self.concurrent_executions,
                "RecursiveInvocationsDropped": self.recursion_dropped, "Minutes": self.minutes}

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> Thresholds:
        return cls(int(params["InvocationsPerMinute"]), int(params["ConcurrentExecutions"]),
                   bool(params["RecursiveInvocationsDropped"]), int(params["Minutes"]))


def alarm_name(function_name: str) -> str:
    """``alarm_name("orders-api") == "safetycatch-runaway-orders-api"``."""
    return f"{PREFIX}{function_name}"


def function_of_alarm(name: Any) -> str | None:
    """The function name a managed alarm is for; None when the alarm is not one of ours."""
    if isinstance(name, str) and name.startswith(PREFIX) and len(name) > len(PREFIX):
        return name[len(PREFIX):]
    return None


def _stat(metric_id: str, metric: str, stat: str, function_name: str) -> dict[str, Any]:
    return {"Id": metric_id, "ReturnData": False, "MetricStat": {
        "Metric": {"Namespace": "AWS/Lambda", "MetricName": metric,
                   "Dimensions": [{"Name": "FunctionName", "Value": function_name}]},
        "Period": 60, "Stat": stat}}


def alarm_spec(function_name: str, thresholds: Thresholds) -> dict[str, Any]:
    """PutMetricAlarm arguments of the managed alarm for ``function_name``."""
    metrics, terms = [], []
    if thresholds.invocations_per_minute:
        metrics.append(_stat("inv", "Invocations", "Sum", function_name))
        terms.append(f"FILL(inv, 0) > {thresholds.invocations_per_minute}")
    if thresholds.concurrent_executions:
        metrics.append(_stat("conc", "ConcurrentExecutions", "Maximum", function_name))
        terms.append(f"FILL(conc, 0) > {thresholds.concurrent_executions}")
    if thresholds.recursion_dropped:
        metrics.append(_stat("rec", "RecursiveInvocationsDropped", "Sum", function_name))
        terms.append("FILL(rec, 0) > 0")
    expression = f"IF({' OR '.join(terms)}, 1, 0)"
    return {
        "AlarmName": alarm_name(function_name),
        "AlarmDescription": (f"safetycatch kill-switch for {function_name}: in ALARM the function is throttled to "
                             f"0 (undo: safetycatch restore {function_name}). Managed by safetycatch; edits are "
                             "overwritten."),
        "ActionsEnabled": True,
        "Metrics": [{"Id": "runaway", "Expression": expression, "Label": "runaway loop (1 = yes)",
                     "ReturnData": True}, *metrics],
        "Threshold": 1.0,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "EvaluationPeriods": thresholds.minutes,
        "DatapointsToAlarm": thresholds.minutes,
        "TreatMissingData": "notBreaching",
    }


def put_arguments(described: dict[str, Any]) -> dict[str, Any]:
    """PutMetricAlarm arguments that recreate an alarm as DescribeAlarms returned it (JSON-safe).

    Example:
        >>> put_arguments({"AlarmName": "a", "Threshold": 1.0, "StateValue": "OK", "Dimensions": []})
        {'AlarmName': 'a', 'Threshold': 1.0}
    """
    out: dict[str, Any] = {}
    for key in _PUT_KEYS:
        value = described.get(key)
        if value in (None, [], ""):
            continue
        out[key] = value
    return out


def canonical(alarm: dict[str, Any] | None) -> dict[str, Any] | None:
    """The parts of an alarm that decide what it does, in one comparable form (put or described)."""
    if alarm is None:
        return None
    metrics = []
    for metric in alarm.get("Metrics") or []:
        item: dict[str, Any] = {"Id": metric.get("Id"), "ReturnData": bool(metric.get("ReturnData", True)),
                                "Expression": metric.get("Expression") or ""}
        stat = metric.get("MetricStat") or {}
        if stat:
            inner = stat.get("Metric") or {}
            item["MetricStat"] = [inner.get("Namespace"), inner.get("MetricName"),
                                  sorted([d.get("Name"), d.get("Value")] for d in inner.get("Dimensions") or []),
                                  int(stat.get("Period") or 0), stat.get("Stat")]
        metrics.append(item)
    evaluation_periods = int(alarm.get("EvaluationPeriods") or 0)
    return {
        "Metrics": sorted(metrics, key=lambda m: str(m["Id"])),
        "MetricName": alarm.get("MetricName"),
        "Threshold": float(alarm.get("Threshold") or 0),
        "ComparisonOperator": alarm.get("ComparisonOperator"),
        "EvaluationPeriods": evaluation_periods,
        "DatapointsToAlarm": int(alarm.get("DatapointsToAlarm") or evaluation_periods),
        "TreatMissingData": alarm.get("TreatMissingData") or "missing",
        "ActionsEnabled": bool(alarm.get("ActionsEnabled", True)),
        "AlarmDescription": alarm.get("AlarmDescription") or "",
    }


def describe(thresholds: Thresholds) -> str:
    """One line for humans: ``Invocations > 5000/min or ConcurrentExecutions > 500 ... for 2 min``."""
    parts = []
    if thresholds.invocations_per_minute:
        parts.append(f"Invocations > {thresholds.invocations_per_minute}/min")
    if thresholds.concurrent_executions:
        parts.append(f"ConcurrentExecutions > {thresholds.concurrent_executions}")
    if thresholds.recursion_dropped:
        parts.append("RecursiveInvocationsDropped > 0")
    minutes = f"{thresholds.minutes} minute{'s' if thresholds.minutes != 1 else ''}"
    return f"{' or '.join(parts)} for {minutes}"
