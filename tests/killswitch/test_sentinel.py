"""Sentinel mode (issues 12 and 21), from the metrics: a few Metrics Insights alarms watch every function; the test
world's CloudWatch (tests/world/cloudwatch_evaluator.py) evaluates them against the Lambda-shaped datapoints in moto and
sends what CloudWatch sends - the alarm's state changes and, for each series, a contributor state change - and
answers DescribeAlarmContributors (which moto lacks) through a botocore hook on the runtime's CloudWatch client.
Each event goes through the real handler: metrics -> evaluator -> event -> handler -> kill. No alarm state is set
by hand here."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from chalicelib.bot.handlers import handle_event
from chalicelib.killswitch import sentinel
from tests.world.cloudwatch_evaluator import ALARM_EVENT, CONTRIBUTOR_EVENT, Evaluator, lambda_minutes
from tests.world.runaway_support import policies_with

ALARM = "safetycatch-runaway-.sentinel.invocations"


@pytest.fixture
def sentinel_runtime(aws, make_runtime, tmp_path):
    return make_runtime(policies=policies_with(tmp_path, runaway={"params": {"sentinel": True,
                                                                              "invocations_per_minute": 1000}}))


@pytest.fixture
def world(aws, sentinel_runtime, calls):
    """The sweep puts the sentinels; CloudWatch (the evaluator) evaluates them from now on, on its own clock, which
    is also the state store's; the runtime's CloudWatch client asks it for DescribeAlarmContributors."""
    put = sentinel.ensure_policy(sentinel_runtime.policy_set, sentinel_runtime.engine("123456789012", "us-east-1"))
    assert put == [ALARM, "safetycatch-runaway-.sentinel.concurrentexecutions"]
    evaluator = Evaluator(aws.client("cloudwatch"))
    evaluator.serve(sentinel_runtime.clients("us-east-1")("cloudwatch"), recorder=calls)
    sentinel_runtime.store.clock = evaluator.epoch
    return evaluator


def _history(aws, name, per_minute_usual):
    """A week of ordinary minutes at the usual rate (one an hour, up to a day ago: the baseline a kill is confirmed
    against leaves out the last day)."""
    now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    dims = [{"Name": "FunctionName", "Value": name}]
    usual = [{"MetricName": "Invocations", "Dimensions": dims, "Timestamp": now - timedelta(hours=h, minutes=30),
              "Value": float(per_minute_usual)} for h in range(24, 7 * 24)]
    for start in range(0, len(usual), 500):
        aws.client("cloudwatch").put_metric_data(Namespace="AWS/Lambda", MetricData=usual[start:start + 500])


def _reserved(aws, name):
    return aws.client("lambda").get_function_concurrency(FunctionName=name).get("ReservedConcurrentExecutions")


def _deliver(events, runtime):
    """Each event through the deployed handler's code path (as EventBridge would deliver the rule's matches)."""
    return [handle_event(event, runtime=runtime) for event in events]


def _kinds(events):
    return [(e["detail-type"], e["detail"]["state"]["value"],
             (e["detail"].get("alarmContributor") or {}).get("attributes", {}).get("FunctionName")) for e in events]


def test_the_sentinel_kills_the_confirmed_loop_and_spares_a_busy_function(aws, sentinel_runtime, world):
    aws.function("looper")
    aws.function("checkout")
    _history(aws, "looper", 5)
    _history(aws, "checkout", 2800)  # always this busy
    lambda_minutes(aws.client("cloudwatch"), "looper", world.now, [9000] * 3)
    lambda_minutes(aws.client("cloudwatch"), "checkout", world.now, [3000] * 3)
    reports = _deliver(world.run(2), sentinel_runtime)
    fixed = [f for r in reports for f in r["findings"] if f["outcome"] == "fixed"]
    assert {f["function"].rsplit(":", 1)[1] for f in fixed} == {"looper"}
    assert _reserved(aws, "looper") == 0 and _reserved(aws, "checkout") is None
    assert any("checkout" in e and "busy, not a loop" in e for r in reports for e in r["errors"])


def test_a_second_loop_while_the_sentinel_is_already_in_alarm_is_killed(aws, sentinel_runtime, world, calls):
    """Issue 21's done-when: a legitimately busy function keeps the sentinel in ALARM, so a new loop changes no
    alarm state at all; CloudWatch sends only a contributor state change, which the bot subscribes to and acts on."""
    aws.function("checkout")
    aws.function("looper")
    _history(aws, "checkout", 2800)
    _history(aws, "looper", 5)
    cloudwatch = aws.client("cloudwatch")
    lambda_minutes(cloudwatch, "checkout", world.now, [3000] * 12)
    first = world.run(3)
    assert (ALARM_EVENT, "ALARM", None) in _kinds(first)
    assert all(r["findings"] == [] for r in _deliver(first, sentinel_runtime)), "busy, not a loop"
    lambda_minutes(cloudwatch, "looper", world.now, [9000] * 5)  # the second loop starts now
    second = world.run(3)
    assert _kinds(second) == [(CONTRIBUTOR_EVENT, "ALARM", "looper")], "the sentinel itself stays in ALARM"
    calls.clear()
    (report,) = _deliver(second, sentinel_runtime)
    (finding,) = report["findings"]
    assert finding["function"].endswith(":function:looper") and finding["outcome"] == "fixed"
    assert "cloudwatch.DescribeAlarmContributors" in calls.calls, "the contributor re-read from CloudWatch"
    assert _reserved(aws, "looper") == 0 and _reserved(aws, "checkout") is None


def test_each_contributor_is_confirmed_in_its_own_window(aws, sentinel_runtime, world):
    """The sentinel went to ALARM (for a busy function) minutes before a loop started; its ALARM event, delivered
    late (EventBridge retries), reads the contributors: the loop is confirmed in the window ending at its own
    StateTransitionedTimestamp - in the alarm's window it showed nothing and would be refused as 'no breach'."""
    aws.function("checkout")
    aws.function("looper")
    _history(aws, "checkout", 2800)
    cloudwatch = aws.client("cloudwatch")
    lambda_minutes(cloudwatch, "checkout", world.now, [3000] * 20)
    lambda_minutes(cloudwatch, "looper", world.now, [5] * 10)
    alarm_level = [e for e in world.run(2) if e["detail-type"] == ALARM_EVENT and e["detail"]["state"]["value"] ==
                   "ALARM"]
    world.run(6)
    lambda_minutes(cloudwatch, "looper", world.now, [9000] * 4)
    world.run(3)
    (report,) = _deliver(alarm_level, sentinel_runtime)
    assert [f["function"].rsplit(":", 1)[1] for f in report["findings"]] == ["looper"]
    assert report["findings"][0]["outcome"] == "fixed" and _reserved(aws, "looper") == 0


def test_every_contributor_is_read_and_those_beyond_the_kill_cap_are_named(aws, make_runtime, tmp_path, world,
                                                                          calls):
    """CloudWatch keeps up to 100 contributors in ALARM and pages them; the bot reads every page (the evaluator's
    pages hold 25), kills up to max_kills_per_hour and names the ones it did not act on."""
    (tmp_path / "cap").mkdir()
    runtime = make_runtime(policies=policies_with(tmp_path / "cap", runaway={"params": {
        "sentinel": True, "invocations_per_minute": 1000, "max_kills_per_hour": 26}}))
    world.serve(runtime.clients("us-east-1")("cloudwatch"), recorder=calls)
    runtime.store.clock = world.epoch
    names = [f"loop-{n:02d}" for n in range(28)]
    for n, name in enumerate(names):
        aws.function(name)
        lambda_minutes(aws.client("cloudwatch"), name, world.now, [9000 + n] * 3)
    events = world.run(2)
    assert [e for e in events if e["detail-type"] == CONTRIBUTOR_EVENT].__len__() == 28
    calls.clear()
    (alarm_level,) = [e for e in events if e["detail-type"] == ALARM_EVENT and e["detail"]["state"]["value"] == "ALARM"]
    report = handle_event(alarm_level, runtime=runtime)
    outcomes = [f["outcome"] for f in report["findings"]]
    assert outcomes.count("fixed") == 26 and len(outcomes) == 27, "the 27th is held back by the cap, told"
    assert calls.calls.count("cloudwatch.DescribeAlarmContributors") == 2, "two pages"
    (left,) = [e for e in report["errors"] if "NOT acted on" in e]
    assert "1 contributor(s)" in left and "hourly kill cap" in left and "loop-00" in left  # ORDER BY SUM() DESC
    assert sum(_reserved(aws, name) == 0 for name in names) == 26


def test_a_failed_sentinel_kill_re_arms_the_sentinel_and_the_next_evaluation_kills(aws, sentinel_runtime, world,
                                                                                   stub_only, calls):
    """After a failed kill nothing would fire again (the contributor and the sentinel stay in ALARM): the bot sets
    the sentinel - what fired - back to OK, CloudWatch's next evaluation sends a fresh ALARM change, and that
    kill succeeds."""
    aws.function("looper")
    lambda_minutes(aws.client("cloudwatch"), "looper", world.now, [9000] * 6)
    events = world.run(2)
    failing = stub_only(sentinel_runtime.clients("us-east-1")("lambda"), "PutFunctionConcurrency")
    failing.add_client_error("put_function_concurrency", "ServiceException", http_status_code=500)
    reports = _deliver(events, sentinel_runtime)
    failing.deactivate()
    assert [f["outcome"] for r in reports for f in r["findings"]] == ["failed"]
    assert any("re-armed (OK)" in e for r in reports for e in r["errors"])
    assert "cloudwatch.SetAlarmState" in calls.writes and _reserved(aws, "looper") is None
    again = world.tick()
    assert _kinds(again) == [(ALARM_EVENT, "ALARM", None)], "a fresh ALARM change of the sentinel"
    (report,) = _deliver(again, sentinel_runtime)
    assert [f["outcome"] for f in report["findings"]] == ["fixed"] and _reserved(aws, "looper") == 0


def test_a_contributor_event_for_a_function_not_in_alarm_kills_nothing(aws, sentinel_runtime, world):
    """A contributor event is a claim: the contributor it names must be in ALARM now (DescribeAlarmContributors)."""
    aws.function("checkout")
    aws.function("bystander")
    lambda_minutes(aws.client("cloudwatch"), "checkout", world.now, [3000] * 3)
    (forged,) = [e for e in world.run(2) if e["detail-type"] == CONTRIBUTOR_EVENT]
    forged["id"] = "another-event"
    forged["detail"]["alarmContributor"] = {"id": "0123456789abcdef", "attributes": {"FunctionName": "bystander"}}
    report = handle_event(forged, runtime=sentinel_runtime)
    assert report["findings"] == [] and "is not in ALARM now" in report["skipped"]
    assert _reserved(aws, "bystander") is None


def test_without_describe_alarm_contributors_nothing_is_killed_and_it_says_why(aws, make_runtime, tmp_path,
                                                                                stub_only):
    """Where the API is missing (a partition or region without it), AWS answers UnknownOperationException: only that
    call is stubbed, as AWS would answer it (moto in-process raises NotImplementedError, which AWS never does)."""
    runtime = make_runtime(policies=policies_with(tmp_path, runaway={"params": {"sentinel": True,
                                                                             "invocations_per_minute": 1000}}))
    sentinel.ensure_policy(runtime.policy_set, runtime.engine("123456789012", "us-east-1"))
    aws.function("looper")
    evaluator = Evaluator(aws.client("cloudwatch"))
    lambda_minutes(aws.client("cloudwatch"), "looper", evaluator.now, [9000] * 3)
    events = [e for e in evaluator.run(2) if e["detail-type"] == ALARM_EVENT and e["detail"]["state"]["value"] ==
              "ALARM"]
    stub = stub_only(runtime.clients("us-east-1")("cloudwatch"), "DescribeAlarmContributors")
    stub.add_client_error("describe_alarm_contributors", service_error_code="UnknownOperationException",
                          service_message="Unknown operation DescribeAlarmContributors", http_status_code=400)
    (report,) = _deliver(events, runtime)
    assert report["findings"] == []
    assert "DescribeAlarmContributors is not available here" in (report["skipped"] or " ".join(report["errors"]))
    assert _reserved(aws, "looper") is None


def test_sentinels_are_put_once_and_only_when_asked(aws, runtime, sentinel_runtime, calls):
    assert sentinel.ensure_policy(runtime.policy_set, runtime.engine("123456789012", "us-east-1")) == []
    engine = sentinel_runtime.engine("123456789012", "us-east-1")
    assert len(sentinel.ensure_policy(sentinel_runtime.policy_set, engine)) == 2
    calls.clear()
    assert sentinel.ensure_policy(sentinel_runtime.policy_set, engine) == [] and calls.writes == []


def test_a_sentinel_the_bot_did_not_put_or_that_was_edited_kills_nothing(aws, runtime, sentinel_runtime, world,
                                                                         calls):
    """Issue 11's rule for the sentinel: its state is no evidence by itself. A sentinel-named alarm while the policy
    has no sentinel, or the bot's sentinel edited to a threshold ordinary traffic crosses (and which CloudWatch then
    really puts in ALARM), is refused before its contributors are even read."""
    from chalicelib.domain import alarms

    aws.function("checkout")
    _history(aws, "checkout", 2800)
    lambda_minutes(aws.client("cloudwatch"), "checkout", world.now, [3000] * 10)
    (event,) = [e for e in world.run(2) if e["detail-type"] == ALARM_EVENT and e["detail"]["state"]["value"] ==
                "ALARM"]
    report = handle_event(event, runtime=runtime)  # the repo's policies: sentinel off
    assert report["findings"] == [] and "is not a sentinel safetycatch put" in report["skipped"]
    cloudwatch = aws.client("cloudwatch")
    (alarm,) = cloudwatch.describe_alarms(AlarmNames=[ALARM])["MetricAlarms"]
    cloudwatch.put_metric_alarm(**{**alarms.put_arguments(alarm), "Threshold": 10.0})
    calls.clear()
    edited = [e for e in world.run(2) if e["detail-type"] == ALARM_EVENT]
    edited = edited or [{**event, "id": "another-event"}]  # the edit left it in ALARM: its state unchanged
    (report,) = _deliver(edited, sentinel_runtime)
    assert report["findings"] == [] and "differs from the sentinel safetycatch puts" in report["skipped"]
    assert not [c for c in calls.calls if c.endswith("DescribeAlarmContributors")] and calls.writes == []
    assert _reserved(aws, "checkout") is None


def _contributor_event(**detail):
    base = {"alarmName": ALARM, "alarmContributor": {"id": "6d442278dba546f6", "attributes": {"FunctionName": "f"}},
            "state": {"value": "ALARM", "reason": "Threshold Crossed", "timestamp": "2025-12-01T13:42:04.919+0000"}}
    return {"version": "0", "id": "e1", "detail-type": CONTRIBUTOR_EVENT, "source": "aws.cloudwatch",
            "account": "123456789012", "region": "us-east-1", "detail": {**base, **detail}}


@pytest.mark.parametrize(("detail", "why"), [
    ({"alarmName": "safetycatch-runaway-f"}, "only sentinels have contributors"),
    ({"alarmName": "someone-elses-alarm"}, "only sentinels have contributors"),
    ({"state": {"value": "OK"}}, "contributor alarm state is OK, not ALARM"),
    ({"alarmContributor": {"id": "x", "attributes": {"TableName": "t"}}}, "no plain FunctionName"),
    ({"alarmContributor": {"id": "x", "attributes": {
        "FunctionName": "arn:aws:lambda:us-east-1:999999999999:function:f"}}}, "no plain FunctionName"),
    ({"alarmContributor": None}, "malformed contributor event"),
])
def test_contributor_events_that_are_no_evidence_are_skipped(detail, why):
    from chalicelib.killswitch import evidence

    parsed = evidence.parse(_contributor_event(**detail))
    assert isinstance(parsed, evidence.Skip) and why in parsed.reason


def test_a_contributor_event_names_its_function_and_contributor():
    """The shape of the CloudWatch User Guide's example ("Alarm events and EventBridge", Alarm Contributor)."""
    from chalicelib.killswitch import evidence

    parsed = evidence.parse(_contributor_event())
    assert isinstance(parsed, evidence.Evidence) and parsed.kind == CONTRIBUTOR_EVENT
    assert [ref.name for ref in parsed.functions] == ["f"] and parsed.contributor == "6d442278dba546f6"
    assert parsed.observed_at == datetime(2025, 12, 1, 13, 42, 4, 919000, tzinfo=timezone.utc)


def test_a_loop_that_goes_on_after_a_restore_is_killed_again(aws, sentinel_runtime, world):
    """Sentinel mode has no per-function alarm to re-arm: a restore re-arms the sentinel in ALARM, so a function
    restored while its contributor is still in ALARM, and still looping, is killed again at the next evaluation."""
    from chalicelib.killswitch import kill as killswitch

    aws.function("looper")
    lambda_minutes(aws.client("cloudwatch"), "looper", world.now, [9000] * 8)
    _deliver(world.run(2), sentinel_runtime)
    assert _reserved(aws, "looper") == 0
    restored = killswitch.restore(sentinel_runtime, "looper", "alice")
    assert restored["outcome"] == "restored" and f"alarm {ALARM} re-armed (OK)" in restored["message"]
    assert _reserved(aws, "looper") is None
    again = world.tick()  # still looping
    assert _kinds(again) == [(ALARM_EVENT, "ALARM", None)], "the sentinel's fresh ALARM change"
    (report,) = _deliver(again, sentinel_runtime)
    assert [f["outcome"] for f in report["findings"]] == ["fixed"] and _reserved(aws, "looper") == 0
