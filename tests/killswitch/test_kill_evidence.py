"""A kill needs evidence the bot can verify (issue 11, item 1). Anyone with cloudwatch:PutMetricAlarm or
SetAlarmState could make an alarm named ``safetycatch-runaway-*`` go to ALARM; the bot killed the function in its
dimensions. Now an alarm kills only when it is the alarm the bot put (its recorded definition, compared with the
alarm read fresh), the function is in kill-switch scope on a fresh read, and the function's own metrics over the
alarm's window cross its thresholds. A refused alarm is audited, posted once, and does not use up the kill cap."""

from __future__ import annotations

from chalicelib.bot.handlers import handle_event
from chalicelib.domain import alarms
from safetycatch.local.cloudtrail import api_call
from safetycatch.local.evidence import alarm_state_change
from tests.killswitch.conftest import reserved as _reserved
from tests.world.runaway_support import loop_metrics, policies_with
from tests.world.slack_helpers import text_of

ACCOUNT = "123456789012"
KILL_SWITCH = {"safetycatch:kill-switch": "true"}


def _arn(name: str) -> str:
    return f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{name}"


def _bot_puts_the_alarm(aws, runtime, name: str) -> None:
    """The function is tagged for the kill-switch and the bot puts its alarm (a TagResource through the handler)."""
    handle_event(api_call("TagResource20170331v2", {"resource": _arn(name), "tags": KILL_SWITCH}), runtime=runtime)
    assert aws.client("cloudwatch").describe_alarms(AlarmNames=[alarms.alarm_name(name)])["MetricAlarms"]


def _alarm_event(aws, name: str) -> dict:
    """Force the alarm to ALARM (what an insider with cloudwatch:SetAlarmState can do) and return the event."""
    cloudwatch = aws.client("cloudwatch")
    cloudwatch.set_alarm_state(AlarmName=alarms.alarm_name(name), StateValue="ALARM", StateReason="Threshold Crossed")
    return alarm_state_change(cloudwatch.describe_alarms(AlarmNames=[alarms.alarm_name(name)])["MetricAlarms"][0])


DEFAULTS = alarms.Thresholds(5000, 500, True, 2)


def _forged_alarm(aws, name: str) -> dict:
    """An insider puts an alarm with the bot's name and shape on ``name`` and forces it to ALARM."""
    aws.client("cloudwatch").put_metric_alarm(**alarms.alarm_spec(name, DEFAULTS))
    return _alarm_event(aws, name)


def test_a_forged_alarm_with_the_bots_name_kills_nothing(aws, runtime, calls):
    """Attack: put ``safetycatch-runaway-payments`` (exactly the bot's shape) on a healthy function and set it to
    ALARM. The bot killed payments."""
    aws.function("payments", tags=KILL_SWITCH)
    report = handle_event(_forged_alarm(aws, "payments"), runtime=runtime)
    assert report["findings"] == [] and report["skipped"] == (
        "alarm safetycatch-runaway-payments refused: safetycatch-runaway-payments is not an alarm safetycatch put "
        "(no record of putting it): nothing killed")
    assert _reserved(aws, "payments") is None
    (audit,) = runtime.store.audit_trail(_arn("payments"))
    assert audit["outcome"] == "refused" and audit["policy"] == "runaway-loop"


def test_forcing_the_bots_own_alarm_into_alarm_kills_nothing(aws, runtime):
    """Attack: ``aws cloudwatch set-alarm-state --state-value ALARM`` on the bot's real alarm; nothing loops."""
    aws.function("orders-api", tags=KILL_SWITCH)
    _bot_puts_the_alarm(aws, runtime, "orders-api")
    aws.metric_history("orders-api", "Invocations", 40, hours=3, unit="Count")  # healthy traffic
    report = handle_event(_alarm_event(aws, "orders-api"), runtime=runtime)
    assert report["findings"] == [] and "refused: the metrics do not show a breach" in report["skipped"]
    assert _reserved(aws, "orders-api") is None


def test_an_alarm_edited_since_the_bot_put_it_kills_nothing(aws, runtime):
    """Attack: lower the bot's alarm to ``inv > 10`` so that ordinary traffic fires it."""
    aws.function("orders-api", tags=KILL_SWITCH)
    _bot_puts_the_alarm(aws, runtime, "orders-api")
    aws.client("cloudwatch").put_metric_alarm(**alarms.alarm_spec("orders-api", alarms.Thresholds(10, 500, True, 2)))
    loop_metrics(aws, "orders-api", per_minute=200)  # over the edited 10, far under the bot's 5,000
    report = handle_event(_alarm_event(aws, "orders-api"), runtime=runtime)
    assert report["findings"] == [] and "differs from the alarm safetycatch put" in report["skipped"]
    assert _reserved(aws, "orders-api") is None


def test_a_function_out_of_kill_switch_scope_now_is_not_killed(aws, runtime):
    """The owner took the function out of the kill-switch (untagged it); its old alarm must not kill it."""
    aws.function("orders-api", tags=KILL_SWITCH)
    _bot_puts_the_alarm(aws, runtime, "orders-api")
    aws.client("lambda").untag_resource(Resource=_arn("orders-api"), TagKeys=list(KILL_SWITCH))
    loop_metrics(aws, "orders-api")
    report = handle_event(_alarm_event(aws, "orders-api"), runtime=runtime)
    assert report["findings"] == [] and "orders-api is not in kill-switch scope now" in report["skipped"]
    assert _reserved(aws, "orders-api") is None


def test_a_real_loop_on_the_bots_alarm_is_killed(aws, runtime):
    aws.function("orders-api", tags=KILL_SWITCH)
    _bot_puts_the_alarm(aws, runtime, "orders-api")
    loop_metrics(aws, "orders-api", per_minute=9000, minutes=3)
    (finding,) = handle_event(_alarm_event(aws, "orders-api"), runtime=runtime)["findings"]
    assert finding["outcome"] == "fixed" and _reserved(aws, "orders-api") == 0
    assert "Evidence confirmed from the metrics: 3 minutes over Invocations > 5000" in finding["message"]
    assert "(Invocations 9000; Invocations 9000; Invocations 9000)" in finding["message"]


def test_junk_alarms_do_not_use_up_the_kill_cap(aws, make_runtime, tmp_path):
    """Attack: three junk alarms an hour used up max_kills_per_hour=3, so a real loop that hour went unkilled."""
    runtime = make_runtime(policies=policies_with(tmp_path, runaway={"params": {"max_kills_per_hour": 3}}))
    for name in ("a", "b", "c"):
        aws.function(name, tags=KILL_SWITCH)
        assert "refused" in handle_event(_forged_alarm(aws, name), runtime=runtime)["skipped"]
    aws.function("looping", tags=KILL_SWITCH)
    _bot_puts_the_alarm(aws, runtime, "looping")
    loop_metrics(aws, "looping")
    (finding,) = handle_event(_alarm_event(aws, "looping"), runtime=runtime)["findings"]
    assert finding["outcome"] == "fixed" and _reserved(aws, "looping") == 0
    assert [_reserved(aws, name) for name in ("a", "b", "c")] == [None, None, None]


def test_a_refused_alarm_is_posted_once(slack_bot, aws):
    aws.function("payments", tags=KILL_SWITCH)
    forged = _forged_alarm(aws, "payments")
    handle_event(forged, runtime=slack_bot.runtime)
    handle_event({**forged, "id": "another-delivery"}, runtime=slack_bot.runtime)
    handle_event(_alarm_event(aws, "payments"), runtime=slack_bot.runtime)  # ALARM again, a new event
    (message,) = slack_bot.slack.posted()
    assert "NOT killed" in text_of(message) and "not an alarm safetycatch put" in text_of(message)


def test_a_refused_alarm_slack_did_not_take_is_posted_by_the_next_delivery(slack_bot, aws):
    """Posted once means delivered once (issue 16's honest ``notified``): a refusal Slack did not take is reported
    as not delivered, and its once-a-day claim is given back, so the next delivery of the alarm posts it."""
    aws.function("payments", tags=KILL_SWITCH)
    forged = _forged_alarm(aws, "payments")
    slack_bot.slack.down()
    report = handle_event(forged, runtime=slack_bot.runtime)
    assert report["skipped"].startswith("alarm safetycatch-runaway-payments refused")
    assert [e for e in report["errors"] if e.startswith("not notified: Slack")], report["errors"]
    slack_bot.slack.up()
    for delivery in ("another-delivery", "a-third-delivery"):
        assert handle_event({**forged, "id": delivery}, runtime=slack_bot.runtime)["errors"] == []
    (message,) = slack_bot.slack.posted()
    assert "NOT killed" in text_of(message) and "not an alarm safetycatch put" in text_of(message)
