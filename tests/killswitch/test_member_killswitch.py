"""Member accounts are first-class for the kill-switch (issue 12): a member's runaway alarm, forwarded from a
member region onto the bot's bus, kills that member's function through the member role; ``safetycatch restore
<ARN>`` puts it back exactly; the Slack Restore button and Undo do the same; messages name the account."""

from __future__ import annotations

import json

import pytest

from chalicelib.bot.handlers import handle_event
from chalicelib.killswitch import kill as killswitch
from safetycatch.local.cloudtrail import api_call
from safetycatch.local.sandbox import member_sandbox
from safetycatch.main import main
from tests.killswitch.conftest import TABLE
from tests.world.runaway_support import alarm_from_metrics

MEMBER, REGION = "111111111111", "eu-west-1"  # a member account, in a region other than the bot's home
ARN = f"arn:aws:lambda:{REGION}:{MEMBER}:function:thumbnailer"


@pytest.fixture
def member(aws, table):
    sandbox = member_sandbox(MEMBER, REGION)
    arn = sandbox.function("thumbnailer", tags={"safetycatch:kill-switch": "true"})
    assert arn == ARN
    sandbox.client("lambda").put_function_concurrency(FunctionName="thumbnailer", ReservedConcurrentExecutions=7)
    return sandbox


def _member_alarm_event(member, runtime):
    """The member's tag change reaches the bot (forwarded from the member region), which puts the managed alarm
    in the member account through the role (and records its definition); the function loops, and CloudWatch
    there reports the alarm in ALARM."""
    tagged = api_call("TagResource20170331v2", {"resource": ARN, "tags": {"safetycatch:kill-switch": "true"}},
                      account=MEMBER, region=REGION)
    handle_event(tagged, runtime=runtime)
    # what Lambda publishes there while it loops, evaluated by the member region's CloudWatch (the test world's)
    return alarm_from_metrics(member, "thumbnailer", account=MEMBER, region=REGION)


def _state(member):
    client = member.client("lambda")
    mappings = client.list_event_source_mappings(FunctionName="thumbnailer")["EventSourceMappings"]
    return (client.get_function_concurrency(FunctionName="thumbnailer").get("ReservedConcurrentExecutions"),
            sorted(m["State"] for m in mappings))


def test_a_member_alarm_kills_the_member_function_and_restore_by_arn_puts_it_back(aws, member, make_runtime,
                                                                                  capsys):
    uuid = member.sqs_mapping(ARN, "jobs")
    before = _state(member)
    assert before == (7, ["Enabled"])
    runtime = make_runtime(table=TABLE)
    report = handle_event(_member_alarm_event(member, runtime), runtime=runtime)
    assert report["skipped"] is None and report["function"] == ARN
    (finding,) = report["findings"]
    assert (finding["policy"], finding["outcome"]) == ("runaway-loop", "fixed")
    assert f"account {MEMBER}" in finding["message"] and f"safetycatch restore {ARN}" in finding["message"]
    assert _state(member) == (0, ["Disabled"])
    assert aws.client("lambda").list_functions()["Functions"] == [], "nothing was done in the bot's account"

    assert main(["restore", ARN, "--format", "json"]) == 0
    restored = json.loads(capsys.readouterr().out)
    assert restored["outcome"] == "restored" and restored["function"] == ARN
    assert _state(member) == before
    assert member.client("lambda").get_event_source_mapping(UUID=uuid)["State"] == "Enabled"
    alarm = member.client("cloudwatch").describe_alarms(AlarmNames=["safetycatch-runaway-thumbnailer"])
    assert alarm["MetricAlarms"][0]["StateValue"] == "OK", "re-armed in the member account"


def test_kill_by_full_arn_acts_in_the_member_account_and_names_it(aws, member, make_runtime):
    runtime = make_runtime(table=TABLE)
    runtime._account_names[MEMBER] = "payments-prod"  # as Organizations DescribeAccount would name it
    result = killswitch.kill(runtime, ARN, reason="bill spike", actor="alice")
    assert result["outcome"] == "fixed" and result["fix"]["prior"]["ReservedConcurrentExecutions"] == 7
    assert f"account {MEMBER} (payments-prod)" in result["message"]
    assert _state(member)[0] == 0
    fix = runtime.store.fixes_for(ARN)[0]
    assert killswitch.restore_fix(runtime, fix["id"], actor="U0APPROVER")["outcome"] == "restored"  # Slack Restore
    assert _state(member)[0] == 7


def test_evidence_acts_only_in_its_own_account(aws, member, runtime):
    """A bot-account alarm event cannot name a member's function: nothing is read or changed there."""
    event = _member_alarm_event(member, runtime)
    event["account"] = "123456789012"
    report = handle_event(event, runtime=runtime)
    assert report["findings"] == [] and _state(member)[0] == 7


def test_approve_and_undo_of_a_member_function_go_through_the_member_role(aws, member, make_runtime):
    from chalicelib.people import decisions

    uuid = member.sqs_mapping(ARN, "orders")  # without ReportBatchItemFailures: batch-partial-failure (approve)
    runtime = make_runtime(table=TABLE)
    report = runtime.engine(MEMBER, REGION).sweep(act=True)
    (asked,) = [d for d in report.decisions if d.finding.policy == "batch-partial-failure"]
    assert asked.outcome == "pending-approval"
    lambda_ = member.client("lambda")
    assert decisions.decide(runtime, "approve", asked.approval_id, "U0APPROVER").ok
    assert lambda_.get_event_source_mapping(UUID=uuid)["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    fix_id = runtime.store.get_approval(asked.approval_id)["fix_id"]
    assert decisions.decide(runtime, "undo", fix_id, "U0APPROVER").ok
    assert lambda_.get_event_source_mapping(UUID=uuid).get("FunctionResponseTypes", []) == []
