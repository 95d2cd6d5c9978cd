"""Evidence → kill through the real handlers: managed alarm state changes and AWS Health notices (recorded
fixtures and variations), malformed and foreign events skipped, duplicates and the bot's own changes ignored."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
from chalice.test import Client

from chalicelib.bot.handlers import handle_event
from chalicelib.decide.engine import NOT_CONFIGURED
from chalicelib.killswitch import kill as killswitch
from chalicelib.store.state import table_definition
from safetycatch.local.cloudtrail import api_call
from safetycatch.local.evidence import health_event
from tests.killswitch.conftest import reserved as _reserved
from tests.world.health_support import stub_health
from tests.world.runaway_support import alarm_from_metrics, policies_with, recovered

ACCOUNT = "123456789012"


def _arn(name):
    return f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{name}"


def _managed_alarm_event(aws, runtime, name="example-fn"):
    """Let the bot create the function's alarm (a CloudTrail TagResource through the real handler); the function
    then loops, and the test world's CloudWatch evaluates the alarm from its metrics: the ALARM state-change event
    CloudWatch sends."""
    tags = {"safetycatch:kill-switch": "true"}
    handle_event(api_call("TagResource20170331v2", {"resource": _arn(name), "tags": tags}), runtime=runtime)
    cloudwatch = aws.client("cloudwatch")
    assert cloudwatch.describe_alarms(AlarmNames=[f"safetycatch-runaway-{name}"])["MetricAlarms"], \
        "the bot created the managed alarm"
    return alarm_from_metrics(aws, name)


def test_managed_alarm_going_to_alarm_kills_the_function(aws, runtime):
    aws.function("example-fn", tags={"safetycatch:kill-switch": "true"})
    event = _managed_alarm_event(aws, runtime)
    metrics = event["detail"]["configuration"]["metrics"]
    assert len(metrics) == 4 and metrics[1]["metricStat"]["metric"]["dimensions"] == {"FunctionName": "example-fn"}
    report = handle_event(event, runtime=runtime)
    assert report["skipped"] is None and report["function"] == _arn("example-fn")
    (finding,) = report["findings"]
    assert (finding["policy"], finding["outcome"], finding["severity"]) == ("runaway-loop", "fixed", "critical")
    assert _reserved(aws, "example-fn") == 0
    assert runtime.store.get_fix(finding["fix_id"])["spec"]["action"] == "kill"


def test_the_same_alarm_event_twice_kills_once(aws, runtime, calls):
    aws.function("example-fn", tags={"safetycatch:kill-switch": "true"})
    event = _managed_alarm_event(aws, runtime)
    handle_event(event, runtime=runtime)
    calls.clear()
    again = handle_event(copy.deepcopy(event), runtime=runtime)
    assert again["skipped"] == "duplicate event (already handled)" and calls.calls == []


def test_two_alarm_events_and_a_health_notice_for_one_loop_make_one_kill(aws, runtime, calls):
    aws.function("example-fn", tags={"safetycatch:kill-switch": "true"})
    first = _managed_alarm_event(aws, runtime)
    second = _managed_alarm_event(aws, runtime)  # ALARM → OK → ALARM: a new event id
    notice = health_event([_arn("example-fn")])
    stub_health(runtime, notice)  # AWS Health confirms the notice (moto has no Health API)
    reports = [handle_event(e, runtime=runtime) for e in (first, second, notice)]
    outcomes = [(r["findings"][0]["outcome"], r["findings"][0].get("detail", "")[:14]) for r in reports]
    assert outcomes == [("fixed", ""), ("fixed", "already killed"), ("fixed", "already killed")]
    kills = [f for f in runtime.store.fixes_for(_arn("example-fn")) if f["spec"]["action"] == "kill"]
    assert len(kills) == 1 and kills[0]["spec"]["prior"]["ReservedConcurrentExecutions"] is None


def test_metric_math_alarm_with_several_metrics_of_one_function(aws, runtime, event):
    aws.function("example-fn", tags={"safetycatch:kill-switch": "true"})
    _managed_alarm_event(aws, runtime)  # the alarm exists and is in ALARM; the event below is the recorded shape
    alarm = event("cloudwatch-AlarmStateChange-lambda-invocations")
    alarm["detail"]["alarmName"] = "safetycatch-runaway-example-fn"
    stat = alarm["detail"]["configuration"]["metrics"][0]
    conc = copy.deepcopy(stat)
    conc["id"], conc["metricStat"]["metric"]["name"], conc["returnData"] = "conc", "ConcurrentExecutions", False
    alarm["detail"]["configuration"]["metrics"] = [
        {"id": "loop", "expression": "IF(inv > 10 OR conc > 5, 1, 0)", "label": "loop", "returnData": True},
        stat, conc]
    (finding,) = handle_event(alarm, runtime=runtime)["findings"]
    assert finding["outcome"] == "fixed" and _reserved(aws, "example-fn") == 0


def _malformed(base):
    def edit(path, value):
        event = copy.deepcopy(base)
        target = event
        for key in path[:-1]:
            target = target[key]
        if value is KeyError:
            del target[path[-1]]
        else:
            target[path[-1]] = value
        return event

    metrics = ("detail", "configuration", "metrics")
    dims = ("detail", "configuration", "metrics", 0, "metricStat", "metric", "dimensions")
    other = copy.deepcopy(base["detail"]["configuration"]["metrics"][0])
    other["metricStat"]["metric"]["dimensions"] = {"FunctionName": "billing"}
    return [
        (edit(("detail", "state", "value"), "OK"), "alarm state is OK, not ALARM"),
        (edit(("detail", "state"), "ALARM"), "alarm state is missing, not ALARM"),
        (edit(metrics, KeyError), "malformed alarm event: no configuration.metrics"),
        (edit(metrics, []), "malformed alarm event: no configuration.metrics"),
        (edit(metrics, "inv"), "malformed alarm event: no configuration.metrics"),
        (edit(dims, [{"name": "FunctionName", "value": "example-fn"}]), "malformed alarm event: a metric without"),
        (edit(dims, {"Resource": "example-fn:live"}), "no FunctionName dimension"),
        (edit(dims, {"FunctionName": "billing"}), "alarm safetycatch-runaway-example-fn watches FunctionName 'bil"),
        (edit(dims, {"FunctionName": ["example-fn"]}), "alarm safetycatch-runaway-example-fn watches FunctionName"),
        (edit(metrics, [base["detail"]["configuration"]["metrics"][0], other]), "the alarm's metrics name several"),
        (edit(("detail", "alarmName"), 42), "malformed alarm event: no alarmName"),
        (edit(("detail",), "x"), "malformed event: no detail object"),
        (edit(("account",), "me"), "malformed event: no account or region"),
        (edit(("source",), "aws.events"), "not from aws.cloudwatch"),
        (edit(("id",), None), "malformed event: no id"),
    ]


def test_malformed_alarm_events_are_skipped_without_any_aws_call(aws, runtime, calls, event):
    base = event("cloudwatch-AlarmStateChange-lambda-invocations")
    base["detail"]["alarmName"] = "safetycatch-runaway-example-fn"
    for bad, reason in _malformed(base):
        report = handle_event(bad, runtime=runtime)
        assert report["skipped"] and report["skipped"].startswith(reason), (reason, report["skipped"])
        assert report["findings"] == []
    assert calls.calls == []


def test_alarms_safetycatch_does_not_manage_are_skipped(aws, runtime, calls, event):
    aws.function("example-fn")
    report = handle_event(event("cloudwatch-AlarmStateChange-lambda-invocations"), runtime=runtime)
    assert report["skipped"] == "alarm example-fn-invocations-runaway is not a runaway alarm safetycatch manages"
    bare = event("cloudwatch-AlarmStateChange-lambda-invocations")
    bare["detail"]["alarmName"] = "safetycatch-runaway-"
    assert handle_event(bare, runtime=runtime)["skipped"].endswith("is not a runaway alarm safetycatch manages")
    assert calls.calls == [] and _reserved(aws, "example-fn") is None


def test_recorded_health_notice_kills_the_affected_function(aws, runtime, event):
    aws.function("example-fn", tags={"safetycatch:kill-switch": "true"})
    notice = event("health-AWS_LAMBDA_RUNAWAY_TERMINATION_NOTIFICATION")
    stub_health(runtime, notice)  # the Health API confirms it: open, recent, the same entity
    report = handle_event(notice, runtime=runtime)
    assert report["event_name"] == "AWS_LAMBDA_RUNAWAY_TERMINATION_NOTIFICATION"
    assert report["event_id"].startswith("arn:aws:health:us-east-1::event/LAMBDA/")
    (finding,) = report["findings"]
    assert finding["outcome"] == "fixed" and "AWS Health AWS_LAMBDA_RUNAWAY" in runtime.store.audit_trail(
        _arn("example-fn"))[0]["context"]
    assert _reserved(aws, "example-fn") == 0


def test_health_notice_updates_are_one_notice(aws, runtime, calls, event):
    aws.function("example-fn", tags={"safetycatch:kill-switch": "true"})
    first = event("health-AWS_LAMBDA_RUNAWAY_TERMINATION_NOTIFICATION")
    stub_health(runtime, first)
    assert handle_event(first, runtime=runtime)["findings"][0]["outcome"] == "fixed"
    update = copy.deepcopy(first)
    update["id"] = "5b1c0e7e-77c6-4a57-9bd3-2f0f1b2d4c11"
    update["detail"]["lastUpdatedTime"] = "Tue, 10 Jun 2025 17:00:00 GMT"
    calls.clear()
    assert handle_event(update, runtime=runtime)["skipped"] == "duplicate event (already handled)"
    assert calls.calls == []


def test_health_variations(aws, runtime, calls, event):
    aws.function("example-fn", tags={"safetycatch:kill-switch": "true"})
    aws.function("billing", tags={"safetycatch:kill-switch": "true"})
    base = event("health-AWS_LAMBDA_RUNAWAY_TERMINATION_NOTIFICATION")

    def variant(**detail):
        out = copy.deepcopy(base)
        out["detail"].update(detail)
        out["detail"]["eventArn"] += "-" + str(len(detail)) + "".join(sorted(detail))
        return out

    skipped = {
        "service": (variant(service="EC2"), "Health event for EC2, not LAMBDA"),
        "code": (variant(eventTypeCode="AWS_LAMBDA_PLANNED_LIFECYCLE_EVENT"), "Health event AWS_LAMBDA_PLANNED"),
        "account": (variant(affectedAccount="x"), f"the notice from account {ACCOUNT} is about account x"),
        "nothing": ({**variant(affectedEntities=[{"entityValue": f"arn:aws:ec2:us-east-1:{ACCOUNT}:instance/i-0a"}]),
                     "resources": []}, "no Lambda function among"),
        "many": (variant(affectedEntities=[{"entityValue": f"fn-{i}"} for i in range(21)]), "21 affected functions"),
        "source": ({**variant(), "source": "aws.lambda"}, "not from aws.health"),
    }
    for name, (bad, reason) in skipped.items():
        report = handle_event(bad, runtime=runtime)
        assert (report["skipped"] or "").startswith(reason), (name, report["skipped"])
    assert calls.writes == []
    # entity by name, plus the envelope's resources as the fallback when affectedEntities is empty
    both = variant(affectedEntities=[{"entityValue": "billing"}, {"entityValue": "example-fn"}])
    stubber = stub_health(runtime, both)
    by_name = handle_event(both, runtime=runtime)
    assert [f["function"] for f in by_name["findings"]] == [_arn("billing"), _arn("example-fn")]
    assert {f["outcome"] for f in by_name["findings"]} == {"fixed"}
    fallback_notice = variant(affectedEntities=[], eventTypeCode="AWS_LAMBDA_RECURSIVE_LOOP_DETECTED")
    stub_health(runtime, fallback_notice, entities=[_arn("example-fn")], stubber=stubber)
    fallback = handle_event(fallback_notice, runtime=runtime)
    assert fallback["findings"][0]["detail"].startswith("already killed")
    # Lambda notifies only once it has stopped the loop: a notice published already closed still acts (issue 21)
    aws.function("closed-fn", tags={"safetycatch:kill-switch": "true"})
    closed_notice = variant(statusCode="closed", affectedEntities=[{"entityValue": "closed-fn"}])
    stub_health(runtime, closed_notice, status="closed", stubber=stubber)
    closed = handle_event(closed_notice, runtime=runtime)
    assert [(f["function"], f["outcome"]) for f in closed["findings"]] == [(_arn("closed-fn"), "fixed")]


def test_health_notice_of_a_loop_older_than_the_restore_does_not_kill_again(aws, runtime, event):
    aws.function("example-fn", tags={"safetycatch:kill-switch": "true"})
    killswitch.kill(runtime, "example-fn", "alarm", "safetycatch", automatic=True)
    killswitch.restore(runtime, "example-fn", "alice")
    late = event("health-AWS_LAMBDA_RUNAWAY_TERMINATION_NOTIFICATION")
    # the Health API says the loop started ten minutes ago: before the restore (its time is AWS's, not the event's)
    stubber = stub_health(runtime, late, started=datetime.now(timezone.utc) - timedelta(minutes=10))
    (finding,) = handle_event(late, runtime=runtime)["findings"]
    # held back; without Slack nobody was told, so it is ``reported`` (issue 16), with the reason in the detail
    assert finding["outcome"] == "reported" and "before it was restored" in finding["message"]
    assert finding["detail"] == "evidence predates the last restore; not delivered (see errors)"
    assert _reserved(aws, "example-fn") is None
    fresh = health_event([_arn("example-fn")])
    fresh["detail"]["startTime"] = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=2), usegmt=True)
    stub_health(runtime, fresh, started=datetime.now(timezone.utc) + timedelta(seconds=2), stubber=stubber)
    assert handle_event(fresh, runtime=runtime)["findings"][0]["outcome"] == "fixed"


def test_evidence_for_a_deleted_function_or_another_account_is_skipped(aws, runtime):
    ghost = health_event([_arn("ghost")])
    stub_health(runtime, ghost)
    skipped = handle_event(ghost, runtime=runtime)["skipped"]
    assert skipped == f"ghost not killed: no function ghost in {ACCOUNT} us-east-1"
    foreign = health_event(["arn:aws:lambda:us-east-1:999999999999:function:x"])
    assert handle_event(foreign, runtime=runtime)["skipped"] == (
        f"the event from account {ACCOUNT} names a function in account 999999999999: not acting")


def test_policy_off_or_missing_skips_evidence(aws, make_runtime, tmp_path, calls):
    aws.function("example-fn")
    for policies in (policies_with(tmp_path / "a", runaway={"mode": "off"}),
                     policies_with(tmp_path / "b", drop=("runaway-loop.yaml",))):
        report = handle_event(health_event([_arn("example-fn")]), runtime=make_runtime(policies=policies))
        assert report["skipped"].startswith("the runaway-loop policy is off")
    assert calls.writes == []


def test_mode_off_skips_evidence(aws, make_runtime, calls):
    report = handle_event(health_event([_arn("example-fn")]), runtime=make_runtime(mode="off"))
    assert report["skipped"] == "safetycatch is off (SAFETYCATCH_MODE=off)" and calls.calls == []


@pytest.mark.parametrize("event_name, request_parameters, service", [
    ("PutFunctionConcurrency20171031", {"functionName": "example-fn", "reservedConcurrentExecutions": 0}, "lambda"),
    ("UpdateEventSourceMapping20150331", {"uUID": "6f1e7a4c-26b9-4a5e-9d8e-3f0b1c2d4e5f", "enabled": False},
     "lambda"),
    ("PutFunctionRecursionConfig", {"functionName": "example-fn", "recursiveLoop": "Terminate"}, "lambda"),
    ("DeleteFunctionConcurrency20171031", {"functionName": "example-fn"}, "lambda"),
    ("PutMetricAlarm", {"alarmName": "safetycatch-runaway-example-fn"}, "monitoring"),
])
def test_the_bots_own_kill_writes_are_ignored(aws, runtime, calls, event_name, request_parameters, service):
    event = api_call(event_name, request_parameters, service=service, role="safetycatch-dev", session="safetycatch")
    report = handle_event(event, runtime=runtime)
    assert report["skipped"].startswith("the bot's own change" if service == "lambda" else "not a change safetycatch")
    assert calls.calls == []


def test_chalice_handlers_are_wired(aws, monkeypatch, tmp_path):
    """Through chalice.test.Client: app.py's alarm and Health handlers reach the kill-switch."""
    import app as chalice_app

    aws.client("dynamodb").create_table(**table_definition("safetycatch-dev"))  # .chalice/config.json, stage dev
    aws.client("ssm").put_parameter(Name="/safetycatch/dev/mode", Value="enforce", Type="String")  # as deployed
    monkeypatch.setenv("SAFETYCATCH_POLICIES", str(policies_with(tmp_path)))
    aws.function("example-fn", tags={"safetycatch:kill-switch": "true"})
    aws.function("billing", tags={"safetycatch:kill-switch": "true"})
    with Client(chalice_app.app) as client:
        tag = api_call("TagResource20170331v2", {"resource": _arn("example-fn"),
                                                 "tags": {"safetycatch:kill-switch": "true"}})
        client.lambda_.invoke("on_config_change", tag)
        alarm = client.lambda_.invoke("on_runaway_alarm", alarm_from_metrics(aws, "example-fn")).payload
        from chalicelib.bot.handlers import current_runtime

        notice = health_event([_arn("billing")])
        stub_health(current_runtime(), notice)  # the deployed handler's own runtime reads the Health API
        health = client.lambda_.invoke("on_lambda_health", notice).payload
    assert alarm["findings"][0]["outcome"] == "fixed" and health["findings"][0]["outcome"] == "fixed"
    assert _reserved(aws, "example-fn") == 0 and _reserved(aws, "billing") == 0


def test_a_failed_kill_re_arms_the_alarm_so_the_next_period_retries(aws, runtime, monkeypatch):
    from botocore.exceptions import ClientError

    from chalicelib.act.gateway import Gateway

    aws.function("example-fn", tags={"safetycatch:kill-switch": "true"})
    event = _managed_alarm_event(aws, runtime)
    original = Gateway.put_function_concurrency

    def refuse(self, function_arn, value):
        raise ClientError({"Error": {"Code": "TooManyRequestsException", "Message": "Rate exceeded"}},
                          "PutFunctionConcurrency")

    monkeypatch.setattr(Gateway, "put_function_concurrency", refuse)
    report = handle_event(event, runtime=runtime)
    assert report["findings"][0]["outcome"] == "failed" and "kill FAILED" in report["findings"][0]["message"]
    assert report["errors"] == [f"not notified: {NOT_CONFIGURED}",  # no Slack here: the failure told nobody
                                "example-fn: the kill failed; alarm safetycatch-runaway-example-fn re-armed (OK)"]
    assert aws.client("cloudwatch").describe_alarms(
        AlarmNames=["safetycatch-runaway-example-fn"])["MetricAlarms"][0]["StateValue"] == "OK"
    monkeypatch.setattr(Gateway, "put_function_concurrency", original)
    retry = _managed_alarm_event(aws, runtime)  # the next period: ALARM again, a new event
    assert handle_event(retry, runtime=runtime)["findings"][0]["outcome"] == "fixed"
    assert _reserved(aws, "example-fn") == 0


def test_hostile_evidence_never_raises_nor_calls_aws(aws, runtime, calls):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=12)
    json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) |
                               st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=12)
    metric = st.fixed_dictionaries({"id": st.text(max_size=4), "metricStat": st.fixed_dictionaries(
        {"metric": st.fixed_dictionaries({"dimensions": json_values | st.fixed_dictionaries(
            {"FunctionName": json_values})})})})
    alarm_detail = st.fixed_dictionaries({
        "alarmName": st.sampled_from(["safetycatch-runaway-", "safetycatch-runaway-x/y", "other"]) | json_values,
        "state": st.fixed_dictionaries({"value": st.sampled_from(["ALARM", "OK"]) | json_values}),
        "configuration": st.fixed_dictionaries({"metrics": st.lists(metric, max_size=3) | json_values})})
    health_detail = st.fixed_dictionaries({
        "service": st.sampled_from(["LAMBDA", "EC2"]) | json_values,
        "eventTypeCode": st.sampled_from(["AWS_LAMBDA_RUNAWAY_TERMINATION_NOTIFICATION", "X"]) | json_values,
        "affectedEntities": st.lists(st.fixed_dictionaries({"entityValue": json_values}), max_size=3) | json_values,
        "affectedAccount": st.sampled_from(["x", "12"]) | json_values})
    events = st.fixed_dictionaries({
        "detail-type": st.sampled_from(["CloudWatch Alarm State Change", "AWS Health Event"]),
        "source": st.sampled_from(["aws.cloudwatch", "aws.health"]) | json_values,
        "account": st.sampled_from(["123456789012", "x"]), "region": st.sampled_from(["us-east-1", ""]),
        "id": st.text(max_size=8), "detail": alarm_detail | health_detail | json_values}) | json_values

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(events)
    def check(event):
        report = handle_event(event, runtime=runtime)
        assert report["skipped"] and report["findings"] == []

    check()
    assert calls.calls == []


def test_an_alarm_event_is_checked_against_the_alarm_itself(aws, runtime):
    """Never trust the event: an ALARM event for a managed alarm that is OK now (or gone) kills nothing."""
    aws.function("example-fn", tags={"safetycatch:kill-switch": "true"})
    event = _managed_alarm_event(aws, runtime)
    recovered(aws, "example-fn")  # the loop stopped: CloudWatch puts the alarm back to OK
    report = handle_event(event, runtime=runtime)
    assert report["skipped"] == "alarm safetycatch-runaway-example-fn is OK now, not ALARM: nothing killed"
    assert _reserved(aws, "example-fn") is None
    aws.client("cloudwatch").delete_alarms(AlarmNames=["safetycatch-runaway-example-fn"])
    event["id"] = "another-delivery"
    assert handle_event(event, runtime=runtime)["skipped"].endswith("is not there now, not ALARM: nothing killed")
