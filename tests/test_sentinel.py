"""Sentinel mode (issue 12): a few Metrics Insights alarms watch every function; when one goes to ALARM the
kill-switch names its contributors, confirms each against the function's own metrics and baseline, and kills
only the confirmed loop. moto lacks DescribeAlarmContributors: only that call is stubbed (botocore Stubber on
the runtime's real CloudWatch client); the alarms and metrics are moto's."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from chalicelib import sentinel
from chalicelib.handlers import handle_event
from cli.evidence import alarm_state_change
from tests.runaway_support import policies_with

ALARM = "safetycatch-runaway-.sentinel.invocations"


@pytest.fixture
def sentinel_runtime(aws, make_runtime, tmp_path):
    return make_runtime(policies=policies_with(tmp_path, runaway={"params": {"sentinel": True,
                                                                              "invocations_per_minute": 1000}}))


def _invocations(aws, name, per_minute_now, per_minute_usual):
    """A week of ordinary minutes at the usual rate (one an hour, up to a day ago: the baseline a kill is confirmed
    against leaves out the last day), then the last five minutes at ``per_minute_now``."""
    now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    cloudwatch, dims = aws.client("cloudwatch"), [{"Name": "FunctionName", "Value": name}]
    usual = [{"MetricName": "Invocations", "Dimensions": dims, "Timestamp": now - timedelta(hours=h, minutes=30),
              "Value": float(per_minute_usual)} for h in range(24, 7 * 24)]
    recent = [{"MetricName": "Invocations", "Dimensions": dims, "Timestamp": now - timedelta(minutes=m),
               "Value": float(per_minute_now)} for m in range(0, 5)]
    for start in range(0, len(usual + recent), 500):
        cloudwatch.put_metric_data(Namespace="AWS/Lambda", MetricData=(usual + recent)[start:start + 500])


def _sentinel_in_alarm(aws, runtime):
    """The sweep puts the sentinels; CloudWatch then reports the invocations sentinel in ALARM."""
    put = sentinel.ensure_policy(runtime.policy_set, runtime.engine("123456789012", "us-east-1"))
    assert put == [ALARM, "safetycatch-runaway-.sentinel.concurrentexecutions"]
    cloudwatch = aws.client("cloudwatch")
    (alarm,) = cloudwatch.describe_alarms(AlarmNames=[ALARM])["MetricAlarms"]
    assert "GROUP BY FunctionName ORDER BY SUM() DESC LIMIT 500" in alarm["Metrics"][0]["Expression"]
    cloudwatch.set_alarm_state(AlarmName=ALARM, StateValue="ALARM", StateReason="Threshold Crossed")
    (alarm,) = cloudwatch.describe_alarms(AlarmNames=[ALARM])["MetricAlarms"]
    return alarm_state_change(alarm)


def test_the_sentinel_kills_the_confirmed_loop_and_spares_a_busy_function(aws, sentinel_runtime, stub_only):
    aws.function("looper")
    aws.function("checkout")
    _invocations(aws, "looper", per_minute_now=9000, per_minute_usual=5)
    _invocations(aws, "checkout", per_minute_now=3000, per_minute_usual=2800)  # always this busy
    event = _sentinel_in_alarm(aws, sentinel_runtime)
    stub = stub_only(sentinel_runtime.clients("us-east-1")("cloudwatch"), "DescribeAlarmContributors")
    stub.add_response("describe_alarm_contributors", {"AlarmContributors": [
        {"ContributorId": "c1", "ContributorAttributes": {"FunctionName": "looper"}, "StateReason": "breaching"},
        {"ContributorId": "c2", "ContributorAttributes": {"FunctionName": "checkout"}, "StateReason": "breaching"},
    ]}, {"AlarmName": ALARM})
    report = handle_event(event, runtime=sentinel_runtime)
    (finding,) = report["findings"]
    assert finding["function"].endswith(":function:looper") and finding["outcome"] == "fixed"
    assert aws.client("lambda").get_function_concurrency(FunctionName="looper")["ReservedConcurrentExecutions"] == 0
    assert "ReservedConcurrentExecutions" not in aws.client("lambda").get_function_concurrency(
        FunctionName="checkout")
    assert any("checkout" in e and "busy, not a loop" in e for e in report["errors"])


def test_without_describe_alarm_contributors_nothing_is_killed_and_it_says_why(aws, sentinel_runtime, stub_only):
    """Where the API is missing (a partition or region without it), AWS answers UnknownOperationException: only that
    call is stubbed, as AWS would answer it (moto in-process raises NotImplementedError, which AWS never does)."""
    aws.function("looper")
    stub = stub_only(sentinel_runtime.clients("us-east-1")("cloudwatch"), "DescribeAlarmContributors")
    stub.add_client_error("describe_alarm_contributors", service_error_code="UnknownOperationException",
                          service_message="Unknown operation DescribeAlarmContributors", http_status_code=400)
    report = handle_event(_sentinel_in_alarm(aws, sentinel_runtime), runtime=sentinel_runtime)
    assert report["findings"] == []
    assert "DescribeAlarmContributors is not available here" in (report["skipped"] or " ".join(report["errors"]))
    assert "ReservedConcurrentExecutions" not in aws.client("lambda").get_function_concurrency(FunctionName="looper")


def test_sentinels_are_put_once_and_only_when_asked(aws, runtime, sentinel_runtime, calls):
    assert sentinel.ensure_policy(runtime.policy_set, runtime.engine("123456789012", "us-east-1")) == []
    engine = sentinel_runtime.engine("123456789012", "us-east-1")
    assert len(sentinel.ensure_policy(sentinel_runtime.policy_set, engine)) == 2
    calls.clear()
    assert sentinel.ensure_policy(sentinel_runtime.policy_set, engine) == [] and calls.writes == []


def test_a_sentinel_the_bot_did_not_put_or_that_was_edited_kills_nothing(aws, runtime, sentinel_runtime, calls):
    """Issue 11's rule for the sentinel: its state is no evidence by itself. A sentinel-named alarm while the policy
    has no sentinel, or the bot's sentinel edited to a threshold ordinary traffic crosses, is refused before its
    contributors are even read (no DescribeAlarmContributors call: a stub would have to answer it)."""
    from chalicelib import alarms

    aws.function("checkout")
    _invocations(aws, "checkout", per_minute_now=3000, per_minute_usual=2800)
    event = _sentinel_in_alarm(aws, sentinel_runtime)
    report = handle_event(event, runtime=runtime)  # the repo's policies: sentinel off
    assert report["findings"] == [] and "is not a sentinel safetycatch put" in report["skipped"]
    cloudwatch = aws.client("cloudwatch")
    (alarm,) = cloudwatch.describe_alarms(AlarmNames=[ALARM])["MetricAlarms"]
    cloudwatch.put_metric_alarm(**{**alarms.put_arguments(alarm), "Threshold": 10.0})
    cloudwatch.set_alarm_state(AlarmName=ALARM, StateValue="ALARM", StateReason="Threshold Crossed")
    calls.clear()
    report = handle_event({**event, "id": "another-event"}, runtime=sentinel_runtime)
    assert report["findings"] == [] and "differs from the sentinel safetycatch puts" in report["skipped"]
    assert not [c for c in calls.calls if c.endswith("DescribeAlarmContributors")] and calls.writes == []
    assert "ReservedConcurrentExecutions" not in aws.client("lambda").get_function_concurrency(
        FunctionName="checkout")
