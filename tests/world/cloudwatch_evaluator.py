"""A CloudWatch alarm evaluator for the tests: the bot's own alarms evaluated as CloudWatch does, against moto.

moto stores alarms and datapoints but never evaluates an alarm, has no multi-time-series (Metrics Insights) alarms,
no ``DescribeAlarmContributors`` and sends no EventBridge event. This component is that missing piece of the test
world. Each :meth:`Evaluator.tick` advances its clock one minute, evaluates every metric alarm of one account and
region in moto against the datapoints in moto, writes the resulting state back into moto (so ``DescribeAlarms``
answers as CloudWatch would, ``StateTransitionedTimestamp`` on the evaluator's clock) and returns the EventBridge
events CloudWatch would send. Tests then go: Lambda-shaped metrics -> evaluator -> event -> handler -> kill.

The rules it implements, each from the CloudWatch documentation:

* **Periods and evaluation range** (User Guide, "Using Amazon CloudWatch alarms" / "Evaluating an alarm",
  https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/alarm-evaluation.html): an alarm evaluates
  the ``EvaluationPeriods`` (N) most recent periods; here, at a tick at minute T, the N complete periods before T.
* **M out of N** (same page; PutMetricAlarm ``DatapointsToAlarm``): ALARM when at least M of the N datapoints
  breach, otherwise OK.
* **TreatMissingData** ("Configuring how CloudWatch alarms treat missing data",
  https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/alarms-and-missing-data.html): ``notBreaching``
  missing points are within the threshold, ``breaching`` they breach, ``ignore`` keeps the current state when
  every point is missing, ``missing`` (the default) goes to INSUFFICIENT_DATA when every point is missing. For a
  metric-math alarm a point is missing when the expression returns no value there ("Alarm data queries",
  https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/alarm-data-queries.html).
* **Metric math** ("Using math expressions with CloudWatch metrics",
  https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/using-metric-math.html): ``FILL(m, value)``
  gives every period of the range a value; arithmetic and comparisons between two series keep the timestamps
  both have; comparisons give 1 or 0; ``AND`` / ``OR`` are logical; ``IF(condition, a, b)`` takes ``a`` where the
  condition is non-zero and ``b`` elsewhere, at the condition's timestamps. Only ``ReturnData`` expressions
  decide.
* **Metrics Insights** ("Metrics Insights query components and syntax",
  https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch-metrics-insights-querylanguage.html,
  and "Metrics Insights quotas"): ``SCHEMA("ns", k1, ...)`` matches the metrics of the namespace whose dimension
  keys are exactly those; ``GROUP BY`` makes one series per group; ``ORDER BY f() DESC|ASC LIMIT n`` sorts the
  groups by the aggregate over the query's range and keeps n (at most 500).
* **Multi-time-series alarms** ("Create an alarm based on a Multi Time Series Metrics Insights query";
  "Acting on alarm changes", https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/Acting_Alarm_Changes.html;
  "Limits", https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/alarm-limits.html): each returned
  series is a contributor, only ever ALARM or OK; the alarm is in ALARM while any contributor is; at most 100
  contributors are in ALARM (state reason "k out of n time series evaluated to ALARM", or "100+ time series
  evaluated to ALARM").
* **Events** ("Alarm events and EventBridge",
  https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch-and-eventbridge.html): every state
  change of an alarm is a "CloudWatch Alarm State Change" (``state``, ``previousState``, ``configuration``);
  every state change of a contributor is a "CloudWatch Alarm Contributor State Change" with
  ``alarmContributor: {id, attributes}``, ``state`` and ``configuration`` and no ``previousState`` - also while
  the alarm itself stays in ALARM (so a new contributor sends no alarm-level event at all).
* **DescribeAlarmContributors** (API reference, ``DescribeAlarmContributors`` and ``AlarmContributor``): the
  contributors in ALARM with ``ContributorId`` (at most 16 characters), ``ContributorAttributes``,
  ``StateReason`` and ``StateTransitionedTimestamp``; ``NextToken`` pages; ``ResourceNotFoundException`` for an
  unknown alarm. moto lacks the call: :meth:`Evaluator.serve` answers it for one botocore client through a
  ``before-call`` event hook (the mechanism botocore's Stubber uses), from the evaluator's contributors; every
  other call on that client still goes to moto.
* **SetAlarmState** (API reference): sets the alarm's state until the next evaluation, which then changes it
  back by the data (and sends the change). A state set by anyone (the bot's re-arm, an insider) is seen at the
  next tick as the alarm's current state. For a multi-time-series alarm it sets the alarm's own state only;
  its contributors keep theirs (an assumption: the documentation does not say).

Not modelled (see docs in the closing note of issue 21): CloudWatch's own delay before it evaluates (metrics
arrive 1-3 minutes late; alarms may look back further for late data), the extra datapoints CloudWatch fetches
for ``missing``/``ignore`` when some points in the range are missing, percentiles and low-sample-count rules,
anomaly bands, composite alarms, high-resolution periods, metric math beyond FILL/IF/arithmetic/comparison,
Metrics Insights ``WHERE`` and ``FROM "namespace"`` without SCHEMA, the 10,000-metrics-analysed cap, attribute
volume limits that keep fewer than 100 contributors in ALARM, alarm actions (SNS), and a contributor's
disappearance beyond "no data in the range" (it goes OK).

Example::

    evaluator = Evaluator(aws.client("cloudwatch"))
    evaluator.serve(runtime.clients("us-east-1")("cloudwatch"))
    lambda_minutes(aws.client("cloudwatch"), "looper", evaluator.now, [9000, 9000])
    events = evaluator.run(2)  # -> [{"detail-type": "CloudWatch Alarm State Change", ...}]
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from botocore.awsrequest import AWSResponse
from moto.cloudwatch.models import MetricAggregatedDatum, cloudwatch_backends

ALARM_EVENT = "CloudWatch Alarm State Change"
CONTRIBUTOR_EVENT = "CloudWatch Alarm Contributor State Change"
MAX_CONTRIBUTORS_IN_ALARM = 100  # "Limits": contributors in ALARM per multi-time-series alarm
UNCHECKED = "Unchecked: Initial alarm creation"  # moto's reason for a new alarm (which it puts in OK, not
# INSUFFICIENT_DATA as CloudWatch does; PutMetricAlarm on an existing alarm leaves its state unchanged: API reference)
PAGE = 25  # DescribeAlarmContributors page size here (AWS documents none): small so paging is exercised
Series = dict[datetime, float]
_COMPARE = {"GreaterThanThreshold": lambda v, t: v > t, "GreaterThanOrEqualToThreshold": lambda v, t: v >= t,
            "LessThanThreshold": lambda v, t: v < t, "LessThanOrEqualToThreshold": lambda v, t: v <= t}
_INSIGHTS = re.compile(
    r'^SELECT\s+(?P<fn>\w+)\((?P<metric>\w+)\)\s+FROM\s+SCHEMA\("(?P<ns>[^"]+)"(?P<keys>(?:\s*,\s*\w+)*)\)'
    r'\s+GROUP\s+BY\s+(?P<group>\w+(?:\s*,\s*\w+)*)\s+ORDER\s+BY\s+(?P<order>\w+)\(\)\s+(?P<dir>ASC|DESC)'
    r'\s+LIMIT\s+(?P<limit>\d+)$', re.IGNORECASE)


def minute(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc).replace(second=0, microsecond=0)


def cw_time(moment: datetime) -> str:
    """CloudWatch's timestamp format in events: ``2025-12-01T13:42:04.919+0000``."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def lambda_minutes(cloudwatch: Any, function_name: str, start: datetime, invocations: list[float],
                   concurrent: list[float] | None = None) -> None:
    """What Lambda publishes for ``function_name``: one Invocations (Sum) datapoint per minute from ``start``
    (and ConcurrentExecutions when given), as moto stores them (PutMetricData, namespace AWS/Lambda)."""
    dims = [{"Name": "FunctionName", "Value": function_name}]
    data = [{"MetricName": "Invocations", "Dimensions": dims, "Timestamp": minute(start) + timedelta(minutes=i,
             seconds=30), "Value": float(v), "Unit": "Count"} for i, v in enumerate(invocations)]
    data += [{"MetricName": "ConcurrentExecutions", "Dimensions": dims, "Timestamp": minute(start) + timedelta(
        minutes=i, seconds=30), "Value": float(v), "Unit": "Count"} for i, v in enumerate(concurrent or [])]
    for offset in range(0, len(data), 500):
        cloudwatch.put_metric_data(Namespace="AWS/Lambda", MetricData=data[offset:offset + 500])


@dataclass
class Contributor:
    id: str
    attributes: dict[str, str]
    state: str = "OK"
    reason: str = ""
    transitioned: datetime | None = None


@dataclass
class _Alarm:
    """What the evaluator remembers of one alarm between ticks (CloudWatch's side of it)."""

    state: str = "INSUFFICIENT_DATA"
    written: str = "INSUFFICIENT_DATA"  # the state the evaluator last put in moto (else someone set it)
    contributors: dict[str, Contributor] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)  # contributor ids as the query last ordered them


class Evaluator:
    """CloudWatch's alarm evaluation for one account and region of moto, on its own clock (``now``, a minute).

    ``start`` defaults to the current minute; ``tick()`` moves one minute on and evaluates; ``run(n)`` ticks n
    times and returns every event. ``events`` keeps every event sent so far; ``transitions`` (alarm or
    contributor, state, time) records when each change happened, for time-to-kill figures.
    """

    def __init__(self, cloudwatch: Any, start: datetime | None = None, account: str = "123456789012",
                 region: str = "us-east-1") -> None:
        self.cloudwatch, self.account, self.region = cloudwatch, account, region
        self.now = minute(start or datetime.now(timezone.utc))
        self.alarms: dict[str, _Alarm] = {}
        self.events: list[dict[str, Any]] = []
        self.transitions: list[tuple[str, str, datetime]] = []

    # -- the clock ---------------------------------------------------------------------------------------

    def epoch(self) -> float:
        """The evaluator's clock as ``time.time()`` would give it (for a state store's ``clock``)."""
        return self.now.timestamp()

    def run(self, minutes: int) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for _ in range(minutes):
            found += self.tick()
        return found

    def tick(self) -> list[dict[str, Any]]:
        """One minute on: evaluate every metric alarm, write the states into moto, return the events sent."""
        self.now += timedelta(minutes=1)
        sent: list[dict[str, Any]] = []
        pages = self.cloudwatch.get_paginator("describe_alarms").paginate(AlarmTypes=["MetricAlarm"])
        for alarm in (a for page in pages for a in page.get("MetricAlarms", [])):
            sent += self._evaluate(alarm)
        self.events += sent
        return sent

    # -- one alarm ---------------------------------------------------------------------------------------

    def _evaluate(self, alarm: dict[str, Any]) -> list[dict[str, Any]]:
        name = alarm["AlarmName"]
        memory = self.alarms.setdefault(name, _Alarm())
        if alarm.get("StateReason") == UNCHECKED:  # (re)put since the last tick: new, or its state unchanged
            self._write(name, memory.state, "Unchecked: Initial alarm creation", {}, [self.now])
        elif alarm["StateValue"] != memory.written:  # SetAlarmState since the last tick: that is the state now
            memory.state = memory.written = alarm["StateValue"]
        periods = self._periods(alarm)
        query = next((m for m in alarm.get("Metrics") or [] if m.get("ReturnData", True)), None)
        if query and _INSIGHTS.match(" ".join(str(query.get("Expression", "")).split())):
            return self._evaluate_insights(alarm, memory, periods, query)
        values = self._alarm_series(alarm, periods)
        state, reason = self._decide(alarm, periods, values, memory.state)
        return self._set(alarm, memory, state, reason, values, periods)

    def _periods(self, alarm: dict[str, Any]) -> list[datetime]:
        period = int(alarm.get("Period") or next((m.get("Period") or m.get("MetricStat", {}).get("Period")
                                                  for m in alarm.get("Metrics") or [] if m.get("ReturnData", True)),
                                                 None) or 60)
        count = int(alarm["EvaluationPeriods"])
        return [self.now - timedelta(seconds=period * k) for k in range(count, 0, -1)]

    def _decide(self, alarm: dict[str, Any], periods: list[datetime], values: Series, current: str) -> tuple[str, str]:
        """M out of N with TreatMissingData (the rules in the module docstring)."""
        threshold, compare = float(alarm["Threshold"]), _COMPARE[alarm["ComparisonOperator"]]
        needed = int(alarm.get("DatapointsToAlarm") or alarm["EvaluationPeriods"])
        treat = alarm.get("TreatMissingData") or "missing"
        present = [p for p in periods if p in values]
        breaching = [p for p in present if compare(values[p], threshold)]
        if treat == "breaching":
            breaching += [p for p in periods if p not in values]
        if len(breaching) >= needed:
            shown = ", ".join(f"{values.get(p, 0.0):g} ({p:%d/%m/%y %H:%M:%S})" for p in sorted(breaching)[-needed:])
            return "ALARM", (f"Threshold Crossed: {len(breaching)} out of the last {len(periods)} datapoints "
                             f"[{shown}] crossed the threshold ({threshold:g}).")
        if not present and treat == "missing":
            return "INSUFFICIENT_DATA", "Insufficient Data: no datapoints were received for the evaluation range."
        if not present and treat == "ignore":
            return current, "Missing data ignored: state unchanged."
        return "OK", (f"Threshold Crossed: {len(breaching)} out of the last {len(periods)} datapoints crossed the "
                      f"threshold ({threshold:g}), fewer than {needed}.")

    def _set(self, alarm: dict[str, Any], memory: _Alarm, state: str, reason: str, values: Series,
             periods: list[datetime]) -> list[dict[str, Any]]:
        if state == memory.state:
            return []
        previous, memory.state = memory.state, state
        self._write(alarm["AlarmName"], state, reason, values, periods)
        self.transitions.append((alarm["AlarmName"], state, self.now))
        return [self._alarm_event(alarm, state, previous, reason)]

    def _write(self, name: str, state: str, reason: str, values: Series, periods: list[datetime]) -> None:
        """The new state into moto, as CloudWatch stores it (moto's own SetAlarmState would stamp wall-clock time
        and is the insider's path, so the evaluator writes its backend directly)."""
        stored = cloudwatch_backends[self.account][self.region].alarms[name]
        data = json.dumps({"version": "1.0", "queryDate": cw_time(self.now), "startDate": cw_time(periods[0]),
                           "period": 60, "recentDatapoints": [values[p] for p in periods if p in values]})
        stored.update_state(reason if reason != UNCHECKED else "Unchecked: evaluated next minute", data, state)
        stored.state_updated_timestamp = self.now
        stored.state_transitioned_timestamp = self.now  # type: ignore[attr-defined]  # moto serialises it by name
        self.alarms[name].written = state

    # -- metric math -------------------------------------------------------------------------------------

    def _alarm_series(self, alarm: dict[str, Any], periods: list[datetime]) -> Series:
        """The alarm's evaluated values by period: its metric, or its ReturnData expression over its metrics."""
        if alarm.get("MetricName"):
            return self._stat_series(alarm["Namespace"], alarm["MetricName"], alarm.get("Dimensions") or [],
                                     alarm.get("Statistic") or "Sum", periods)
        named: dict[str, Series] = {}
        for metric in alarm.get("Metrics") or []:
            stat = metric.get("MetricStat")
            if stat:
                inner = stat["Metric"]
                named[metric["Id"]] = self._stat_series(inner["Namespace"], inner["MetricName"],
                                                        inner.get("Dimensions") or [], stat["Stat"], periods)
        result = next(m for m in alarm["Metrics"] if m.get("ReturnData", True))
        if "Expression" not in result:
            return named[result["Id"]]
        value = _Math(result["Expression"], named, periods).evaluate()
        return value if isinstance(value, dict) else dict.fromkeys(periods, value)

    def _datapoints(self, namespace: str, metric: str) -> list[Any]:
        backend = cloudwatch_backends[self.account][self.region]
        return [d for d in backend.get_all_metrics() if d.namespace == namespace and d.name == metric]

    def _stat_series(self, namespace: str, metric: str, dimensions: list[dict[str, str]], stat: str,
                     periods: list[datetime]) -> Series:
        wanted = {(d["Name"], d["Value"]) for d in dimensions}
        points = [d for d in self._datapoints(namespace, metric)
                  if {(x.name, x.value) for x in d.dimensions} == wanted]
        return _aggregate(points, stat, periods)

    # -- Metrics Insights ---------------------------------------------------------------------------------

    def _insights_series(self, expression: str, periods: list[datetime]) -> list[tuple[dict[str, str], Series]]:
        """Each group the query returns, in its ORDER BY order (LIMIT applied): (attributes, series)."""
        query = _INSIGHTS.match(" ".join(expression.split()))
        assert query is not None
        keys = {k.strip() for k in query["keys"].split(",") if k.strip()}
        group_by = [k.strip() for k in query["group"].split(",")]
        groups: dict[tuple[str, ...], list[Any]] = {}
        for datum in self._datapoints(query["ns"], query["metric"]):
            dims = {x.name: x.value for x in datum.dimensions}
            if set(dims) == keys:
                groups.setdefault(tuple(dims[k] for k in group_by), []).append(datum)
        stat = {"SUM": "Sum", "MAX": "Maximum", "MIN": "Minimum", "AVG": "Average", "COUNT": "SampleCount"}
        found = []
        for values, points in groups.items():
            series = _aggregate(points, stat[query["fn"].upper()], periods)
            if series:
                order = _aggregate(points, stat[query["order"].upper()], [periods[0]],
                                   width=periods[-1] + timedelta(minutes=1) - periods[0])
                found.append((dict(zip(group_by, values, strict=True)), series, order.get(periods[0], 0.0)))
        found.sort(key=lambda item: item[2], reverse=query["dir"].upper() == "DESC")
        return [(attributes, series) for attributes, series, _ in found[:min(int(query["limit"]), 500)]]

    def _evaluate_insights(self, alarm: dict[str, Any], memory: _Alarm, periods: list[datetime],
                           query: dict[str, Any]) -> list[dict[str, Any]]:
        sent: list[dict[str, Any]] = []
        returned = self._insights_series(query["Expression"], periods)
        seen, in_alarm = [], 0
        for attributes, series in returned:
            cid = contributor_id(attributes)
            seen.append(cid)
            contributor = memory.contributors.setdefault(cid, Contributor(cid, attributes))
            state, reason = self._decide(alarm, periods, series, contributor.state)
            state = "ALARM" if state == "ALARM" and in_alarm < MAX_CONTRIBUTORS_IN_ALARM else "OK"
            in_alarm += state == "ALARM"
            sent += self._set_contributor(alarm, contributor, state, reason)
        for cid, contributor in memory.contributors.items():  # no data in the range any more: OK
            if cid not in seen:
                sent += self._set_contributor(alarm, contributor, "OK", "No datapoints in the evaluation range.")
        memory.order = seen
        state = "ALARM" if in_alarm else ("OK" if returned or alarm.get("TreatMissingData") == "notBreaching"
                                          else "INSUFFICIENT_DATA")
        reason = (f"{in_alarm} out of {len(returned)} time series evaluated to ALARM"
                  if in_alarm < MAX_CONTRIBUTORS_IN_ALARM else f"{MAX_CONTRIBUTORS_IN_ALARM}+ time series "
                                                               "evaluated to ALARM")
        return sent + self._set(alarm, memory, state, reason, {}, periods)

    def _set_contributor(self, alarm: dict[str, Any], contributor: Contributor, state: str,
                         reason: str) -> list[dict[str, Any]]:
        if state == contributor.state:
            return []
        contributor.state, contributor.reason, contributor.transitioned = state, reason, self.now
        self.transitions.append((f"{alarm['AlarmName']}/{contributor.id}", state, self.now))
        return [self._contributor_event(alarm, contributor)]

    # -- what CloudWatch sends and answers -----------------------------------------------------------------

    def _envelope(self, kind: str, alarm: dict[str, Any], detail: dict[str, Any]) -> dict[str, Any]:
        return {"version": "0", "id": str(uuid.uuid4()), "detail-type": kind, "source": "aws.cloudwatch",
                "account": self.account, "time": self.now.strftime("%Y-%m-%dT%H:%M:%SZ"), "region": self.region,
                "resources": [alarm["AlarmArn"]], "detail": detail}

    def _alarm_event(self, alarm: dict[str, Any], state: str, previous: str, reason: str) -> dict[str, Any]:
        return self._envelope(ALARM_EVENT, alarm, {
            "alarmName": alarm["AlarmName"],
            "state": {"value": state, "reason": reason, "timestamp": cw_time(self.now)},
            "previousState": {"value": previous, "reason": "", "timestamp": cw_time(self.now)},
            "configuration": _configuration(alarm)})

    def _contributor_event(self, alarm: dict[str, Any], contributor: Contributor) -> dict[str, Any]:
        return self._envelope(CONTRIBUTOR_EVENT, alarm, {
            "alarmName": alarm["AlarmName"],
            "alarmContributor": {"id": contributor.id, "attributes": dict(contributor.attributes)},
            "state": {"value": contributor.state, "reason": contributor.reason,
                      "timestamp": cw_time(contributor.transitioned or self.now)},
            "configuration": _configuration(alarm)})

    def describe_alarm_contributors(self, alarm_name: str, next_token: str | None = None) -> dict[str, Any]:
        """DescribeAlarmContributors as the API reference shapes it (raises ``LookupError`` for no such alarm)."""
        if alarm_name not in cloudwatch_backends[self.account][self.region].alarms:
            raise LookupError(alarm_name)
        memory = self.alarms.get(alarm_name) or _Alarm()
        listed = [memory.contributors[c] for c in memory.order if memory.contributors[c].state == "ALARM"]
        start = int(next_token or 0)
        page = listed[start:start + PAGE]
        answer: dict[str, Any] = {"AlarmContributors": [
            {"ContributorId": c.id, "ContributorAttributes": dict(c.attributes), "StateReason": c.reason,
             "StateTransitionedTimestamp": c.transitioned} for c in page]}
        if start + PAGE < len(listed):
            answer["NextToken"] = str(start + PAGE)
        return answer

    def serve(self, client: Any, recorder: Any = None) -> None:
        """Answer ``DescribeAlarmContributors`` on this botocore ``client`` from the evaluator (moto lacks it);
        every other call still goes to moto. ``recorder`` (tests' CallRecorder) sees the call as made."""

        asked: dict[str, Any] = {}

        def remember(params: dict[str, Any], **_: Any) -> None:  # the call's own parameters (the body is encoded)
            asked.clear()
            asked.update(params)

        def answer(model: Any, **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
            if recorder is not None:
                recorder.calls.append(f"cloudwatch.{model.name}")
            body = dict(asked)
            try:
                parsed = self.describe_alarm_contributors(body.get("AlarmName", ""), body.get("NextToken"))
                return AWSResponse("https://monitoring", 200, {}, None), {**parsed, "ResponseMetadata": {}}
            except LookupError:
                error = {"Code": "ResourceNotFoundException", "Message": f"Alarm {body.get('AlarmName')} not found"}
                return AWSResponse("https://monitoring", 404, {}, None), {"Error": error, "ResponseMetadata": {}}

        client.meta.events.register("before-parameter-build.cloudwatch.DescribeAlarmContributors", remember)
        client.meta.events.register("before-call.cloudwatch.DescribeAlarmContributors", answer)


def contributor_id(attributes: dict[str, str]) -> str:
    """A stable contributor id (16 characters, as the API reference bounds it) for one set of attributes."""
    return hashlib.sha256(json.dumps(attributes, sort_keys=True).encode()).hexdigest()[:16]


def _aggregate(points: list[Any], stat: str, periods: list[datetime], width: timedelta | None = None) -> Series:
    """The statistic of raw (or statistic-set) datapoints in each period starting at ``periods``."""
    width = width or timedelta(minutes=1)
    out: Series = {}
    for start in periods:
        inside = [p for p in points if start <= p.timestamp.astimezone(timezone.utc) < start + width]
        if not inside:
            continue
        sums = [p.sum if isinstance(p, MetricAggregatedDatum) else float(p.value) for p in inside]
        counts = [p.sample_count if isinstance(p, MetricAggregatedDatum) else 1.0 for p in inside]
        highs = [p.max if isinstance(p, MetricAggregatedDatum) else float(p.value) for p in inside]
        lows = [p.min if isinstance(p, MetricAggregatedDatum) else float(p.value) for p in inside]
        out[start] = {"Sum": sum(sums), "Maximum": max(highs), "Minimum": min(lows), "SampleCount": sum(counts),
                      "Average": sum(sums) / max(sum(counts), 1.0)}[stat]
    return out


def _configuration(alarm: dict[str, Any]) -> dict[str, Any]:
    """The ``configuration`` of an alarm event: its metrics as events write them (``dimensions`` a map)."""
    metrics = []
    for metric in alarm.get("Metrics") or []:
        item: dict[str, Any] = {"id": metric["Id"], "returnData": bool(metric.get("ReturnData", True))}
        if metric.get("Expression"):
            item.update(expression=metric["Expression"], **({"label": metric["Label"]} if metric.get("Label") else {}))
            if metric.get("Period"):
                item["period"] = metric["Period"]
        if metric.get("MetricStat"):
            stat, inner = metric["MetricStat"], metric["MetricStat"]["Metric"]
            dimensions = {d["Name"]: d["Value"] for d in inner.get("Dimensions", [])}
            item["metricStat"] = {"metric": {"namespace": inner["Namespace"], "name": inner["MetricName"],
                                             "dimensions": dimensions}, "period": stat["Period"], "stat": stat["Stat"]}
        metrics.append(item)
    return {"description": alarm.get("AlarmDescription", ""), "metrics": metrics}


class _Math:
    """A recursive-descent reader of the metric math the bot's alarms use: numbers, metric ids, + - * /,
    comparisons, AND / OR, FILL(series, value), IF(condition, a, b) - each over series by period."""

    _TOKEN = re.compile(r"\s*(>=|<=|==|!=|[A-Za-z_][A-Za-z0-9_]*|\d+(?:\.\d+)?|[()+\-*/<>,])")

    def __init__(self, text: str, named: dict[str, Series], periods: list[datetime]) -> None:
        self.tokens, self.named, self.periods, self.at = self._tokenize(text), named, periods, 0

    def _tokenize(self, text: str) -> list[str]:
        tokens, at = [], 0
        while at < len(text.rstrip()):
            found = self._TOKEN.match(text, at)
            if not found:
                raise ValueError(f"metric math not modelled: {text[at:at + 20]!r}")
            tokens.append(found.group(1))
            at = found.end()
        return tokens

    def evaluate(self) -> Series | float:
        value = self._or()
        if self.at != len(self.tokens):
            raise ValueError(f"metric math not modelled after {self.tokens[:self.at]}")
        return value

    def _peek(self) -> str:
        return self.tokens[self.at] if self.at < len(self.tokens) else ""

    def _take(self, expected: str | None = None) -> str:
        token = self._peek()
        if expected is not None and token.upper() != expected:
            raise ValueError(f"expected {expected}, got {token!r}")
        self.at += 1
        return token

    def _binary(self, next_level: Any, operators: dict[str, Any]) -> Series | float:
        left = next_level()
        while self._peek().upper() in operators:
            op = operators[self._take().upper()]
            left = _combine(left, next_level(), op)
        return left

    def _or(self) -> Series | float:
        return self._binary(self._and, {"OR": lambda a, b: float(bool(a) or bool(b))})

    def _and(self) -> Series | float:
        return self._binary(self._compare, {"AND": lambda a, b: float(bool(a) and bool(b))})

    def _compare(self) -> Series | float:
        return self._binary(self._sum, {">": lambda a, b: float(a > b), "<": lambda a, b: float(a < b),
                                        ">=": lambda a, b: float(a >= b), "<=": lambda a, b: float(a <= b),
                                        "==": lambda a, b: float(a == b), "!=": lambda a, b: float(a != b)})

    def _sum(self) -> Series | float:
        return self._binary(self._product, {"+": lambda a, b: a + b, "-": lambda a, b: a - b})

    def _product(self) -> Series | float:
        return self._binary(self._atom, {"*": lambda a, b: a * b, "/": lambda a, b: a / b if b else float("nan")})

    def _atom(self) -> Series | float:
        token = self._take()
        if token == "(":
            value = self._or()
            self._take(")")
            return value
        if re.fullmatch(r"\d+(?:\.\d+)?", token):
            return float(token)
        if token.upper() in ("FILL", "IF"):
            self._take("(")
            args = [self._or()]
            while self._peek() == ",":
                self._take()
                args.append(self._or())
            self._take(")")
            return self._fill(*args) if token.upper() == "FILL" else self._if(*args)
        if token in self.named:
            return self.named[token]
        raise ValueError(f"metric math not modelled: {token!r}")

    def _fill(self, series: Series | float, value: Series | float) -> Series:
        assert isinstance(series, dict) and not isinstance(value, dict), "FILL(series, number) only"
        return {p: series.get(p, float(value)) for p in self.periods}

    def _if(self, condition: Series | float, yes: Series | float, no: Series | float = 0.0) -> Series | float:
        if not isinstance(condition, dict):
            return yes if condition else no
        out: Series = {}
        for stamp, value in condition.items():
            chosen = yes if value else no
            if isinstance(chosen, dict):
                if stamp in chosen:
                    out[stamp] = chosen[stamp]
            else:
                out[stamp] = chosen
        return out


def _combine(left: Series | float, right: Series | float, op: Any) -> Series | float:
    """A binary operation by period: series with series on the timestamps both have; a number with each value."""
    if isinstance(left, dict) and isinstance(right, dict):
        return {p: op(left[p], right[p]) for p in left if p in right}
    if isinstance(left, dict):
        return {p: op(v, right) for p, v in left.items()}
    if isinstance(right, dict):
        return {p: op(left, v) for p, v in right.items()}
    return op(left, right)
