"""The safety tests sit on the boundaries (issue 24, item 10): each test here is the one that a hand-made mutation
of a safety module survived. Each was seen failing against its mutation (the closing note of issue 24 lists them:
mutation, test, result). Metrics are put in moto's CloudWatch as Lambda publishes them; the kill-switch, the
Slack gate and the limits run as deployed."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import botocore.session

from chalicelib import alarms, killswitch
from chalicelib.aws import is_transient
from chalicelib.evidence import confirmed_breach
from chalicelib.handlers import handle_event

ACCOUNT, REGION = "123456789012", "us-east-1"
THRESHOLDS = alarms.Thresholds(invocations_per_minute=5000, concurrent_executions=0, recursion_dropped=False,
                               minutes=3)
END = datetime.now(timezone.utc).replace(second=0, microsecond=0) - timedelta(minutes=5)  # the alarm's change


def _arn(name: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"


def _minutes(aws, name: str, values: dict[int, float]) -> None:
    """Invocations per minute as Lambda publishes them: ``{minutes before END: value}`` (mid-minute stamps)."""
    aws.client("cloudwatch").put_metric_data(Namespace="AWS/Lambda", MetricData=[
        {"MetricName": "Invocations", "Dimensions": [{"Name": "FunctionName", "Value": name}],
         "Timestamp": END - timedelta(minutes=k) + timedelta(seconds=30), "Value": v, "Unit": "Count"}
        for k, v in values.items()])


def _breach(runtime, name: str, end: datetime = END) -> bool:
    return confirmed_breach(runtime.engine(ACCOUNT, REGION).inventory, name, THRESHOLDS, end).ok


# -- evidence.confirmed_breach ------------------------------------------------------------------------------------


def test_exactly_the_alarms_minutes_confirm_and_one_fewer_does_not(aws, runtime):
    """Mutations: ``best >= minutes`` made ``best >= minutes - 1`` or ``best > minutes``."""
    _minutes(aws, "three", {0: 5001, 1: 5001, 2: 5001})
    _minutes(aws, "two", {0: 5001, 1: 5001, 2: 100})
    assert _breach(runtime, "three") and not _breach(runtime, "two")


def test_a_minute_at_the_threshold_is_not_over_it(aws, runtime):
    """Mutation: ``value > limit`` made ``>=`` (the alarm's operator is GreaterThanThreshold)."""
    _minutes(aws, "at", {0: 5000, 1: 5000, 2: 5000})
    _minutes(aws, "over", {0: 5000.5, 1: 5000.5, 2: 5000.5})
    assert not _breach(runtime, "at") and _breach(runtime, "over")


def test_minutes_with_a_gap_are_not_consecutive(aws, runtime):
    """Mutation: gaps between minutes allowed (any three minutes over, not three in a row)."""
    _minutes(aws, "gappy", {0: 9000, 1: 9000, 2: 100, 3: 9000, 4: 9000})
    assert not _breach(runtime, "gappy")


def test_a_burst_hours_before_the_alarm_does_not_confirm_it(aws, runtime):
    """Mutation: the window made the whole last day: a burst this morning plus a forced ALARM at noon killed."""
    _minutes(aws, "morning", {180: 9000, 181: 9000, 182: 9000, 183: 9000})
    assert not _breach(runtime, "morning")
    assert _breach(runtime, "morning", END - timedelta(minutes=180)), "at the burst itself it is a breach"


# -- the kill-switch ----------------------------------------------------------------------------------------------


def test_a_fresh_killing_claim_is_not_taken_over_but_a_stale_one_is(aws, runtime, calls):
    """Mutation: ``_settled`` ignoring a fresh ``killing`` claim (a second piece of evidence for one loop killed
    again while the first kill was under way, storing the zeroed state as the prior)."""
    aws.function("thumbnailer")
    store = runtime.store
    assert store.claim_kill(_arn("thumbnailer"), None)  # the first kill, under way
    calls.clear()
    result = killswitch.kill(runtime, "thumbnailer", "loop", "alice")
    assert result["outcome"] == "fixed" and "already killed" in result["message"]
    assert not [c for c in calls.writes if c.startswith("lambda.")], "nothing written to the function"
    now = store.clock()
    store.clock = lambda: now + killswitch.STALE_CLAIM_SECONDS + 1  # crashed half-way: may be taken over
    assert killswitch.kill(runtime, "thumbnailer", "loop", "alice")["fix"] is not None
    assert aws.client("lambda").get_function_concurrency(FunctionName="thumbnailer")[
        "ReservedConcurrentExecutions"] == 0


def test_the_function_the_bot_runs_in_is_never_killed(aws, runtime, monkeypatch):
    """Mutation: the running-function refusal removed (own_functions is empty outside a package)."""
    aws.function("safetycatch-prod-on_runaway_alarm")
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "safetycatch-prod-on_runaway_alarm")
    monkeypatch.setenv("AWS_REGION", REGION)
    result = killswitch.kill(runtime, "safetycatch-prod-on_runaway_alarm", "loop", "alice")
    assert result["outcome"] == "exempt" and "safetycatch's own functions" in result["message"]


def test_an_undone_runaway_alarm_is_not_the_alarm_safetycatch_put(aws, runtime):
    """Mutation: ``recorded_alarm`` counting an undone ``put-runaway-alarm`` fix: after its undo, an alarm of that
    name is somebody else's and kills nothing."""
    from chalicelib import undo
    from cli.cloudtrail import api_call

    aws.function("thumbnailer", tags={"safetycatch:kill-switch": "true"})
    report = handle_event(api_call("TagResource20170331v2", {"resource": _arn("thumbnailer"),
                                                             "tags": {"safetycatch:kill-switch": "true"}}),
                          runtime=runtime)
    (put,) = [f for f in report["findings"] if f["outcome"] == "fixed"]
    assert killswitch.recorded_alarm(runtime.store, _arn("thumbnailer")) is not None
    assert undo.undo_fix(runtime, put["fix_id"], "alice").ok
    assert killswitch.recorded_alarm(runtime.store, _arn("thumbnailer")) is None


def test_evidence_acts_only_in_its_own_region(aws, runtime, make_runtime):
    """Mutation: the account/region guard of ``handle_evidence`` removed. A Health notice from us-east-1 (the
    Health API confirming it and listing the entity) names a function of the same account in eu-west-1."""
    from cli.evidence import health_event
    from cli.sandbox import SandboxAccount
    from tests.health_support import stub_health

    elsewhere = SandboxAccount(region="eu-west-1")
    far = elsewhere.function("thumbnailer", tags={"safetycatch:kill-switch": "true"})
    notice = health_event([far])
    stub_health(runtime, notice)
    report = handle_event(notice, runtime=runtime)
    assert report["findings"] == [] and "not in the event's own account and region" in (report["skipped"] or "")
    assert "ReservedConcurrentExecutions" not in elsewhere.client("lambda").get_function_concurrency(
        FunctionName="thumbnailer")


# -- what AWS sends ----------------------------------------------------------------------------------------------


def test_kms_access_denied_is_permanent_as_lambda_sends_it():
    """``KMSAccessDeniedException`` was tested as HTTP 402; Lambda's service model says 502 (botocore), which the
    5xx rule called transient: retried until the dead-letter queue. A key policy does not fix itself."""
    from botocore.exceptions import ClientError

    model = botocore.session.get_session().get_service_model("lambda")
    for code in ("KMSAccessDeniedException", "KMSDisabledException", "KMSNotFoundException",
                 "KMSInvalidStateException", "EC2AccessDeniedException", "InvalidSubnetIDException"):
        status = model.shape_for(code).metadata["error"]["httpStatusCode"]
        error = ClientError({"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}},
                            "Invoke")
        assert status == 502 and not is_transient(error), code
    unready = ClientError({"Error": {"Code": "ResourceNotReadyException"}, "ResponseMetadata": {
        "HTTPStatusCode": 502}}, "Invoke")
    assert is_transient(unready), "a function still being created is worth retrying"
