"""The test world's CloudWatch (tests/world/cloudwatch_evaluator.py) evaluates the bot's own alarms as the CloudWatch
documentation says: metric math with FILL/IF, M out of N, TreatMissingData, Metrics Insights GROUP BY / ORDER BY /
LIMIT contributors, events in EventBridge's shapes and DescribeAlarmContributors in the API's shape."""

from __future__ import annotations

from datetime import timedelta

import pytest

from chalicelib.domain import alarms
from chalicelib.killswitch import sentinel
from tests.world.cloudwatch_evaluator import ALARM_EVENT, CONTRIBUTOR_EVENT, PAGE, Evaluator, lambda_minutes

RUNAWAY = alarms.alarm_name("looper")
SENTINEL = "safetycatch-runaway-.sentinel.invocations"


@pytest.fixture
def cloudwatch(aws):
    return aws.client("cloudwatch")


def _kinds(events):
    return [(e["detail-type"], e["detail"]["alarmName"], e["detail"]["state"]["value"],
             (e["detail"].get("alarmContributor") or {}).get("attributes", {}).get("FunctionName")) for e in events]


def test_the_per_function_alarm_needs_m_out_of_n_breaching_minutes(cloudwatch):
    cloudwatch.put_metric_alarm(**alarms.alarm_spec("looper", alarms.Thresholds(5000, 500, True, 2)))
    evaluator = Evaluator(cloudwatch)
    lambda_minutes(cloudwatch, "looper", evaluator.now, [9000, 100, 9000, 9000])
    first = evaluator.run(2)  # [9000, 100]: one breaching minute of two; FILL(rec, 0) makes the others OK
    assert _kinds(first) == [(ALARM_EVENT, RUNAWAY, "OK", None)]
    assert evaluator.tick() == []  # [100, 9000]
    assert evaluator.tick()[0]["detail"]["state"]["value"] == "ALARM"  # [9000, 9000]
    (alarm,) = cloudwatch.describe_alarms(AlarmNames=[RUNAWAY])["MetricAlarms"]
    assert alarm["StateValue"] == "ALARM" and alarm["StateTransitionedTimestamp"] == evaluator.now
    assert "2 out of the last 2 datapoints" in alarm["StateReason"]


def test_missing_data_follows_treat_missing_data(cloudwatch):
    spec = alarms.alarm_spec("quiet", alarms.Thresholds(5000, 0, False, 2))
    cloudwatch.put_metric_alarm(**spec)  # notBreaching (FILL makes every minute present anyway)
    single = {"AlarmName": "single", "Namespace": "AWS/Lambda", "MetricName": "Invocations", "Statistic": "Sum",
              "Dimensions": [{"Name": "FunctionName", "Value": "quiet"}], "Period": 60, "EvaluationPeriods": 2,
              "Threshold": 1.0, "ComparisonOperator": "GreaterThanThreshold"}
    cloudwatch.put_metric_alarm(**single)  # TreatMissingData omitted: missing
    cloudwatch.put_metric_alarm(**{**single, "AlarmName": "breaching", "TreatMissingData": "breaching"})
    evaluator = Evaluator(cloudwatch)
    states = {e["detail"]["alarmName"]: e["detail"]["state"]["value"] for e in evaluator.run(2)}
    assert states == {alarms.alarm_name("quiet"): "OK", "breaching": "ALARM"}  # "single" stays INSUFFICIENT_DATA
    assert cloudwatch.describe_alarms(AlarmNames=["single"])["MetricAlarms"][0]["StateValue"] == "INSUFFICIENT_DATA"


def test_a_sentinel_names_each_busy_function_as_a_contributor_and_a_later_one_alone(cloudwatch):
    for spec in sentinel.sentinel_specs(1000, 0, 2):
        cloudwatch.put_metric_alarm(**spec)
    evaluator = Evaluator(cloudwatch)
    lambda_minutes(cloudwatch, "checkout", evaluator.now, [3000] * 8)
    lambda_minutes(cloudwatch, "quiet", evaluator.now, [5] * 8)
    assert _kinds(evaluator.run(2)) == [(ALARM_EVENT, SENTINEL, "OK", None),  # out of INSUFFICIENT_DATA
                                        (CONTRIBUTOR_EVENT, SENTINEL, "ALARM", "checkout"),
                                        (ALARM_EVENT, SENTINEL, "ALARM", None)]
    lambda_minutes(cloudwatch, "looper", evaluator.now + timedelta(minutes=1), [9000] * 4)
    later = evaluator.run(3)
    assert _kinds(later) == [(CONTRIBUTOR_EVENT, SENTINEL, "ALARM", "looper")], "no alarm-level change at all"
    detail = later[0]["detail"]
    assert set(detail) == {"alarmName", "alarmContributor", "state", "configuration"} and len(
        detail["alarmContributor"]["id"]) == 16
    answer = evaluator.describe_alarm_contributors(SENTINEL)
    listed = {c["ContributorAttributes"]["FunctionName"]: c["StateTransitionedTimestamp"]
              for c in answer["AlarmContributors"]}
    assert listed == {"looper": evaluator.now, "checkout": evaluator.now - timedelta(minutes=3)}


def test_contributors_are_paged_ordered_and_capped_at_100_in_alarm(cloudwatch):
    (spec, _) = sentinel.sentinel_specs(1000, 500, 2)
    cloudwatch.put_metric_alarm(**spec)
    evaluator = Evaluator(cloudwatch)
    for n in range(120):
        lambda_minutes(cloudwatch, f"f{n:03d}", evaluator.now, [2000 + n] * 2)
    events = evaluator.run(2)
    assert sum(e["detail-type"] == CONTRIBUTOR_EVENT for e in events) == 100
    assert events[-1]["detail"]["state"]["reason"] == "100+ time series evaluated to ALARM"
    pages, token = [], None
    while True:
        page = evaluator.describe_alarm_contributors(SENTINEL, token)
        pages.append(page["AlarmContributors"])
        token = page.get("NextToken")
        if not token:
            break
    names = [c["ContributorAttributes"]["FunctionName"] for page in pages for c in page]
    assert len(pages[0]) == PAGE and len(names) == 100 and names[0] == "f119", "ORDER BY SUM() DESC"


def test_a_state_set_by_hand_lasts_until_the_next_evaluation(cloudwatch, runtime):
    """The bot's re-arm (SetAlarmState to OK through its gateway) is the alarm's state until CloudWatch evaluates it
    again, which, the loop going on, sends a fresh ALARM change."""
    from chalicelib.killswitch import kill as killswitch

    cloudwatch.put_metric_alarm(**alarms.alarm_spec("looper", alarms.Thresholds(5000, 0, False, 2)))
    evaluator = Evaluator(cloudwatch)
    lambda_minutes(cloudwatch, "looper", evaluator.now, [9000] * 6)
    assert _kinds(evaluator.run(2))[-1] == (ALARM_EVENT, RUNAWAY, "ALARM", None)
    assert "re-armed (OK)" in killswitch._rearm(runtime.engine("123456789012", "us-east-1"), RUNAWAY, "test")
    assert cloudwatch.describe_alarms(AlarmNames=[RUNAWAY])["MetricAlarms"][0]["StateValue"] == "OK"
    assert _kinds(evaluator.tick()) == [(ALARM_EVENT, RUNAWAY, "ALARM", None)], "a fresh ALARM change"


def test_describe_alarm_contributors_is_served_on_the_client_only(aws, cloudwatch):
    from botocore.exceptions import ClientError

    (spec, _) = sentinel.sentinel_specs(1000, 500, 2)
    cloudwatch.put_metric_alarm(**spec)
    evaluator = Evaluator(cloudwatch)
    lambda_minutes(cloudwatch, "looper", evaluator.now, [9000] * 2)
    evaluator.run(2)
    client = aws.client("cloudwatch")
    evaluator.serve(client)
    (only,) = client.describe_alarm_contributors(AlarmName=SENTINEL)["AlarmContributors"]
    assert only["ContributorAttributes"] == {"FunctionName": "looper"}
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        client.describe_alarm_contributors(AlarmName="nope")
    assert client.describe_alarms(AlarmNames=[SENTINEL])["MetricAlarms"][0]["StateValue"] == "ALARM"  # moto's
