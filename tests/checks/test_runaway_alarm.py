"""The managed runaway alarms: the pure check, idempotent create/update through the engine, a sensitive alarm for
a recursive-trigger finding, bulk reads in a sweep, undo."""

from __future__ import annotations

import dataclasses
import re

import pytest

from chalicelib.act import fixes
from chalicelib.act.gateway import Gateway
from chalicelib.bot.handlers import handle_event
from chalicelib.checks import REGISTRY, Check, runaway_loop
from chalicelib.core.model import AccountFacts, Finding, FixSpec, FunctionRef, FunctionSnapshot
from chalicelib.domain import alarms
from safetycatch.local.cloudtrail import api_call
from tests.world.runaway_support import policies_with

ACCOUNT = "123456789012"
TAG = {"safetycatch:kill-switch": "true"}


def _snapshot(name="example-fn", tags=None, flagged=(), alarm=None):
    return FunctionSnapshot(FunctionRef(name, ACCOUNT, "us-east-1"), tags=dict(tags or {}), flagged_by=set(flagged),
                            alarm=alarm)


def _params(**overrides):
    return {**runaway_loop.CHECK.defaults(), **overrides}


def _alarm(aws, name="example-fn"):
    found = aws.client("cloudwatch").describe_alarms(AlarmNames=[alarms.alarm_name(name)])["MetricAlarms"]
    return found[0] if found else None


def _tag_event(name="example-fn"):
    return api_call("TagResource20170331v2", {"resource": f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{name}",
                                              "tags": TAG})


def test_the_wanted_alarm_watches_all_three_metrics_of_the_function():
    (finding,) = runaway_loop.evaluate(_snapshot(tags=TAG), _params(), AccountFacts())
    assert finding.fix.action == "put-runaway-alarm" and finding.fix.prior == {"Alarm": None}
    spec = alarms.alarm_spec("example-fn", alarms.Thresholds.from_params(finding.fix.params))
    assert spec["AlarmName"] == "safetycatch-runaway-example-fn"
    stats = {m["Id"]: m["MetricStat"] for m in spec["Metrics"] if "MetricStat" in m}
    assert {s["Metric"]["MetricName"]: s["Stat"] for s in stats.values()} == {
        "Invocations": "Sum", "ConcurrentExecutions": "Maximum", "RecursiveInvocationsDropped": "Sum"}
    assert all(s["Metric"]["Dimensions"] == [{"Name": "FunctionName", "Value": "example-fn"}] for s in stats.values())
    assert spec["Metrics"][0]["Expression"] == ("IF(FILL(inv, 0) > 5000 OR FILL(conc, 0) > 500 OR FILL(rec, 0) > 0, "
                                                "1, 0)")
    assert (spec["EvaluationPeriods"], spec["DatapointsToAlarm"]) == (2, 2)


@pytest.mark.parametrize("snapshot, params, wanted", [
    (_snapshot(), {}, False),
    (_snapshot(tags={"safetycatch:kill-switch": "TRUE"}), {}, True),
    (_snapshot(name="thumb-resize"), {"functions": ["thumb-*"]}, True),
    (_snapshot(flagged={"recursive-trigger"}), {}, True),
    (_snapshot(flagged={"recursive-trigger"}), {"alarm_recursive_triggers": False}, False),
    (_snapshot(tags=TAG), {"invocations_per_minute": 0, "concurrent_executions": 0,
                           "watch_recursion_dropped": False}, False),
])
def test_scope(snapshot, params, wanted):
    assert bool(runaway_loop.evaluate(snapshot, _params(**params), AccountFacts())) is wanted


def test_a_recursive_trigger_finding_makes_the_alarm_sensitive():
    (finding,) = runaway_loop.evaluate(_snapshot(tags=TAG, flagged={"recursive-trigger"}), _params(), AccountFacts())
    assert finding.fix.params["InvocationsPerMinute"] == 500 and finding.fix.params["ConcurrentExecutions"] == 50
    assert finding.fix.params["Minutes"] == 1 and "sensitive: recursive-trigger" in finding.message


def test_an_alarm_as_wanted_gives_no_finding_and_a_hand_edit_is_corrected():
    wanted = alarms.alarm_spec("example-fn", alarms.Thresholds(5000, 500, True, 2))
    assert runaway_loop.evaluate(_snapshot(tags=TAG, alarm=wanted), _params(), AccountFacts()) == []
    edited = {**wanted, "EvaluationPeriods": 30, "DatapointsToAlarm": 30}
    (finding,) = runaway_loop.evaluate(_snapshot(tags=TAG, alarm=edited), _params(), AccountFacts())
    assert finding.fix.prior == {"Alarm": edited} and "differs from the policy" in finding.message


def test_event_path_creates_the_alarm_once(aws, runtime, calls):
    aws.function("example-fn", tags=TAG)
    first = handle_event(_tag_event(), runtime=runtime)
    assert [(f["policy"], f["outcome"]) for f in first["findings"]] == [("runaway-loop", "fixed")]
    assert calls.writes == ["cloudwatch.PutMetricAlarm"]
    created = _alarm(aws)
    assert alarms.canonical(alarms.put_arguments(created)) == alarms.canonical(
        alarms.alarm_spec("example-fn", alarms.Thresholds(5000, 500, True, 2)))
    calls.clear()
    second = handle_event(_tag_event(), runtime=runtime)
    assert second["findings"] == [] and calls.writes == []
    assert "cloudwatch.DescribeAlarms" in calls.calls


def test_a_threshold_change_updates_and_undo_restores_the_previous_alarm(aws, make_runtime, tmp_path, calls):
    aws.function("example-fn", tags=TAG)
    handle_event(_tag_event(), runtime=make_runtime())
    before = alarms.put_arguments(_alarm(aws))
    runtime = make_runtime(policies=policies_with(tmp_path, runaway={"params": {"invocations_per_minute": 800}}))
    (finding,) = handle_event(_tag_event(), runtime=runtime)["findings"]
    assert finding["outcome"] == "fixed" and "Invocations > 800/min" in finding["message"]
    assert "FILL(inv, 0) > 800" in _alarm(aws)["Metrics"][0]["Expression"]
    fix = runtime.store.get_fix(finding["fix_id"])
    fixes.undo(Gateway(runtime.clients()), FixSpec.from_json(fix["spec"]))
    assert alarms.canonical(alarms.put_arguments(_alarm(aws))) == alarms.canonical(before)


def test_undo_of_a_created_alarm_deletes_it(aws, runtime):
    aws.function("example-fn", tags=TAG)
    (finding,) = handle_event(_tag_event(), runtime=runtime)["findings"]
    fixes.undo(Gateway(runtime.clients()), FixSpec.from_json(runtime.store.get_fix(finding["fix_id"])["spec"]))
    assert _alarm(aws) is None


def test_dry_run_creates_no_alarm(aws, make_runtime, calls):
    aws.function("example-fn", tags=TAG)
    report = handle_event(_tag_event(), runtime=make_runtime(mode="dry-run"))
    assert [f["outcome"] for f in report["findings"]] == ["dry-run"]
    assert calls.writes == [] and _alarm(aws) is None


def test_sweep_reads_all_alarms_in_one_call(aws, runtime, calls):
    for i in range(6):
        aws.function(f"fn-{i}", tags=TAG if i % 2 else None)
    engine = runtime.engine(ACCOUNT, "us-east-1")
    engine.sweep(act=True)
    assert calls.calls.count("cloudwatch.DescribeAlarms") == 1
    assert calls.writes.count("cloudwatch.PutMetricAlarm") == 3
    calls.clear()
    report = runtime.engine(ACCOUNT, "us-east-1").sweep(act=True)
    assert [d for d in report.decisions if d.finding.policy == "runaway-loop"] == []
    assert calls.writes == [] and calls.calls.count("cloudwatch.DescribeAlarms") == 1


def test_engine_runs_runaway_loop_after_the_check_that_flags_a_recursive_trigger(aws, runtime, monkeypatch):
    """The engine hands recursive-trigger's finding to runaway-loop in the same evaluation (ordering + flag)."""
    def flags_everything(snapshot, params, account):
        return [Finding("recursive-trigger", snapshot.arn, "", "writes to its own trigger")]

    rt = REGISTRY.get("recursive-trigger") or Check("recursive-trigger", "4", "t", "d", "notify", "high",
                                                    flags_everything)
    fake = dataclasses.replace(rt, evaluate=flags_everything, in_scope=lambda s, p: True, needs=frozenset(),
                               finding_needs=frozenset(), metrics=lambda p: [], log_search=lambda p: None)
    monkeypatch.setitem(REGISTRY, "recursive-trigger", fake)
    cfg = dataclasses.replace(runtime.policy_set.policies["runaway-loop"], id="recursive-trigger", mode="notify",
                              params=rt.defaults())
    # "runaway-loop" sorts after "recursive-trigger" by id: put it first to prove the engine orders by ``after``
    policies = {"runaway-loop": runtime.policy_set.policies["runaway-loop"], "recursive-trigger": cfg}
    monkeypatch.setattr(type(runtime.policy_set), "enabled", lambda self: [
        (REGISTRY[pid], policies[pid]) for pid in ("runaway-loop", "recursive-trigger")])
    aws.function("uploader")  # untagged: only the recursive-trigger finding puts it in scope
    report = handle_event(_tag_event("uploader"), runtime=runtime)
    by_policy = {f["policy"]: f for f in report["findings"]}
    assert by_policy["runaway-loop"]["fix"]["params"]["InvocationsPerMinute"] == 500
    assert "FILL(inv, 0) > 500" in _alarm(aws, "uploader")["Metrics"][0]["Expression"]


# -- every input of the expression is filled ----------------------------------------------------------------

_TERM = re.compile(r"^(?:FILL\((?P<filled>\w+), 0\)|(?P<bare>\w+)) > (?P<limit>\d+)$")


def _evaluate(expression: str, series: dict[str, dict[int, float]], timestamps: list[int]) -> dict[int, float]:
    """``IF(t1 OR t2 ..., 1, 0)`` as metric math computes it over time series: an operation has a value only at
    timestamps where each of its inputs has one, and ``FILL(m, 0)`` gives ``m`` the value 0 wherever it has none
    in the period."""
    inner = expression.removeprefix("IF(").removesuffix(", 1, 0)")
    terms = [_TERM.match(t) for t in inner.split(" OR ")]
    assert all(terms), expression
    out = {}
    for ts in timestamps:
        values = []
        for term in terms:
            name = term["filled"] or term["bare"]
            value = series.get(name, {}).get(ts, 0.0 if term["filled"] else None)
            values.append(None if value is None else value > int(term["limit"]))
        if None not in values:
            out[ts] = 1.0 if any(values) else 0.0
    return out


@pytest.mark.parametrize("thresholds", [alarms.Thresholds(5000, 500, True, 2), alarms.Thresholds(5000, 0, True, 1),
                                        alarms.Thresholds(0, 500, True, 3), alarms.Thresholds(800, 40, False, 2)])
def test_every_input_of_the_runaway_expression_is_filled(thresholds):
    spec = alarms.alarm_spec("orders-api", thresholds)
    expression = spec["Metrics"][0]["Expression"]
    inputs = {m["Id"] for m in spec["Metrics"] if "MetricStat" in m}
    used = set(re.findall(r"\b(inv|conc|rec)\b", expression))
    assert used == inputs, "the expression reads every input it declares, and only those"
    assert all(f"FILL({i}, 0)" in expression for i in inputs)
    assert not re.search(r"(?<!FILL\()\b(inv|conc|rec)\b(?!, 0\))", expression), "no input read unfilled"


def test_a_loop_breaches_on_a_minute_where_recursion_reports_nothing():
    """The normal case: RecursiveInvocationsDropped has no datapoint, Invocations is far over the limit."""
    minutes = [0, 60, 120]
    series = {"inv": {0: 9000.0, 60: 9000.0, 120: 9000.0}, "conc": {0: 3.0, 60: 3.0, 120: 3.0}, "rec": {}}
    old = "IF(inv > 5000 OR conc > 500 OR rec > 0, 1, 0)"
    assert _evaluate(old, series, minutes) == {}, "unfilled, the expression has no value: the alarm never fires"
    new = alarms.alarm_spec("orders-api", alarms.Thresholds(5000, 500, True, 2))["Metrics"][0]["Expression"]
    assert _evaluate(new, series, minutes) == {0: 1.0, 60: 1.0, 120: 1.0}
    quiet = {"inv": {0: 10.0}, "conc": {}, "rec": {}}
    assert _evaluate(new, quiet, minutes) == {0: 0.0, 60: 0.0, 120: 0.0}, "a quiet function stays below"
