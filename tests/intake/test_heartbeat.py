"""A silent pipe is an incident: events stop reaching the bot while the account keeps changing → the sweep says
"no events from <account>/<region> since ...: check the trail / rule" on Slack, once per silence; a quiet account is
not an incident; doctor prints the last event per scope."""

from __future__ import annotations

import boto3

from chalicelib.bot.handlers import handle_event, on_schedule
from chalicelib.intake import heartbeat
from safetycatch import doctor, doctor_events
from safetycatch.local.cloudtrail import api_call

ACCOUNT, REGION = "123456789012", "us-east-1"
HOUR = 3600.0


def _at(runtime, epoch: float) -> None:
    runtime.store.clock = lambda: epoch


def _changed(aws, name: str = "orders-api") -> float:
    """When the function last changed, as Lambda (moto) says: the tests' clock is set from the world's own times,
    never from the machine's (``time.time()`` plus an offset)."""
    config = aws.client("lambda").get_function_configuration(FunctionName=name)
    at = heartbeat.modified_at(config["LastModified"])
    assert at is not None, config["LastModified"]
    return at


def _after_change(aws, runtime, minutes: float = 1) -> None:
    """The sweep runs ``minutes`` after the function's last change."""
    _at(runtime, _changed(aws) + minutes * 60)


def _event_then_silence(aws, runtime, hours_ago: float) -> float:
    """A function exists; a CloudTrail event reached the bot ``hours_ago`` hours before its creation (after it, for
    a negative value); then the events stop."""
    aws.function("orders-api", timeout=10)
    heard = _changed(aws) - hours_ago * HOUR
    _at(runtime, heard)
    report = handle_event(api_call("TagResource20170331v2", {"resource": "orders-api", "tags": {"team": "web"}}),
                          runtime=runtime)
    assert report["skipped"] is None
    return heard


def test_events_stop_while_functions_change_and_the_sweep_alarms_on_slack(aws, slack_bot):
    runtime = slack_bot.runtime
    heard = _event_then_silence(aws, runtime, hours_ago=8)
    # the pipe breaks (trail stopped, rule disabled): a change happens now, and no event of it reaches the bot
    aws.client("lambda").update_function_configuration(FunctionName="orders-api", MemorySize=1024)
    _after_change(aws, runtime)
    result = on_schedule({"detail-type": "Scheduled Event"}, runtime=runtime)
    expected = f"no events from {ACCOUNT}/{REGION} since {heartbeat.iso(heard)}: check the trail / rule"
    assert result["heartbeat"].startswith(expected) and "orders-api" in result["heartbeat"]
    (alarm,) = [m for m in slack_bot.slack.posted() if "no events from" in m.text]
    assert alarm.text.startswith(expected)
    again = on_schedule({"detail-type": "Scheduled Event"}, runtime=runtime)
    assert "heartbeat" not in again, "said once per silence"
    assert len([m for m in slack_bot.slack.posted() if "no events from" in m.text]) == 1


def test_an_event_arriving_again_ends_the_silence(aws, slack_bot):
    runtime = slack_bot.runtime
    _event_then_silence(aws, runtime, hours_ago=8)
    aws.client("lambda").update_function_configuration(FunctionName="orders-api", MemorySize=1024)
    _after_change(aws, runtime)
    handle_event(api_call("UpdateFunctionConfiguration20150331v2", {"functionName": "orders-api",
                                                                    "memorySize": 1024}), runtime=runtime)
    assert "heartbeat" not in on_schedule({"detail-type": "Scheduled Event"}, runtime=runtime)


def test_a_quiet_account_is_not_an_incident(aws, runtime):
    heard = _event_then_silence(aws, runtime, hours_ago=-0.5)  # the event came after the function's last change
    _at(runtime, heard + 30 * HOUR)  # a day and more without events, and without changes
    assert "heartbeat" not in on_schedule({"detail-type": "Scheduled Event"}, runtime=runtime)


def test_a_short_silence_is_not_yet_one(aws, runtime):
    _event_then_silence(aws, runtime, hours_ago=2)
    aws.client("lambda").update_function_configuration(FunctionName="orders-api", MemorySize=1024)
    _after_change(aws, runtime)
    assert "heartbeat" not in on_schedule({"detail-type": "Scheduled Event"}, runtime=runtime)


def test_a_scope_that_never_had_an_event_starts_its_watch_at_the_first_sweep(aws, runtime):
    aws.function("orders-api")
    _at(runtime, _changed(aws) - 10 * HOUR)
    assert "heartbeat" not in on_schedule({"detail-type": "Scheduled Event"}, runtime=runtime)  # the baseline
    aws.client("lambda").update_function_configuration(FunctionName="orders-api", MemorySize=1024)
    _after_change(aws, runtime)
    result = on_schedule({"detail-type": "Scheduled Event"}, runtime=runtime)
    assert "when the bot started watching; no event ever" in result["heartbeat"]


def test_the_state_table_is_written_at_most_once_a_minute_per_scope(runtime):
    table = runtime.store.table
    assert heartbeat.record(table, ACCOUNT, REGION, "CreateFunction20150331", 1000.0)
    assert not heartbeat.record(table, ACCOUNT, REGION, "TagResource20170331v2", 1030.0)
    assert heartbeat.record(table, ACCOUNT, REGION, "TagResource20170331v2", 1061.0)
    (item,) = heartbeat.last_events(table)
    assert (item["seen"], item["event_name"]) == (1061, "TagResource20170331v2")


def test_doctor_reports_the_last_event_per_scope(aws, make_runtime):
    from safetycatch.provision import init_state_table

    runtime = make_runtime(table="safetycatch-dev")
    init_state_table(runtime.clients(), "safetycatch-dev")
    _at(runtime, 1_780_000_000.0)
    handle_event(api_call("TagResource20170331v2", {"resource": "orders-api", "tags": {}}), runtime=runtime)
    handle_event(api_call("PutRolePolicy", {"roleName": "r", "policyName": "p", "policyDocument": "{}"},
                          service="iam", region="us-east-1", account="210987654321"), runtime=runtime)
    checker = doctor.Checker(boto3.session.Session(region_name=REGION), doctor.Target.for_stage("dev"))
    items = {i.id: i for i in doctor_events.last_event_items(checker, now=1_780_000_000.0 + 2 * HOUR)}
    assert items[f"last-event:{ACCOUNT}/{REGION}"].detail == (
        f"TagResource20170331v2 at {heartbeat.iso(1_780_000_000.0)} (2.0 h ago)")
    assert items[f"last-event:{ACCOUNT}/{REGION}"].status == "ok"
    assert f"last-event:210987654321/{REGION}" in items
