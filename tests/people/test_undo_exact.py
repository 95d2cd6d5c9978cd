"""Undo is exact (issue 11, item 8): for every fix kind, Undo (and a kill's Restore) refuses to overwrite a change
made after the fix; the Undo of batch-partial-failure and reserved-concurrency fixes through the real Slack flow."""

from __future__ import annotations

import pytest

from chalicelib.bot.handlers import handle_event
from chalicelib.core.model import Finding, FixSpec, FunctionRef
from chalicelib.domain import alarms
from chalicelib.killswitch import kill as killswitch
from chalicelib.people import decisions
from safetycatch.local.cloudtrail import api_call
from tests.world.runaway_support import stub_recursion
from tests.world.slack_helpers import APPROVER, buttons

ACCOUNT = "123456789012"
LIST, PUT = "ListProvisionedConcurrencyConfigs", "PutProvisionedConcurrencyConfig"


def _arn(name: str) -> str:
    return f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{name}"


def _apply(runtime, policy: str, spec: FixSpec) -> str:
    """Apply ``spec`` as the bot applies an approved fix (prior stored first, audited); returns the fix id."""
    engine = runtime.engine(ACCOUNT, "us-east-1")
    snapshot = engine.inventory.function(FunctionRef.parse(spec.target, ACCOUNT, "us-east-1"))
    finding = Finding(policy, snapshot.arn, "high", "test fix", spec)
    decision = engine.apply_approved(snapshot, finding, runtime.policy_set.policies[policy], "approved (test)")
    assert decision.outcome == "fixed", decision.detail
    return decision.fix_id


def _undo(runtime, fix_id: str) -> decisions.Outcome:
    return decisions.decide(runtime, "undo", fix_id, actor=APPROVER)


def test_undo_of_provisioned_concurrency_refuses_over_a_later_change(aws, runtime, stub_only, calls):
    """Attack (by accident or not): after the bot lowered provisioned concurrency 20 → 4, the owner raised it to
    50 for a launch; Undo used to put 20 back over the 50."""
    arn = aws.function("orders-api")
    lam = stub_only(runtime.clients()("lambda"), LIST, PUT)
    lam.add_response("put_provisioned_concurrency_config", {"RequestedProvisionedConcurrentExecutions": 4},
                     {"FunctionName": arn, "Qualifier": "live", "ProvisionedConcurrentExecutions": 4})
    spec = FixSpec("set-provisioned-concurrency", arn, {"Qualifier": "live", "ProvisionedConcurrentExecutions": 4},
                   {"Qualifier": "live", "ProvisionedConcurrentExecutions": 20})
    fix_id = _apply(runtime, "provisioned-idle", spec)
    lam.add_response("list_provisioned_concurrency_configs", {"ProvisionedConcurrencyConfigs": [
        {"FunctionArn": f"{arn}:live", "RequestedProvisionedConcurrentExecutions": 50, "Status": "READY"}]},
        {"FunctionName": arn})
    calls.clear()
    outcome = _undo(runtime, fix_id)
    assert not outcome.ok and "ProvisionedConcurrentExecutions is now 50, the fix set 4" in outcome.text
    assert "lambda.PutProvisionedConcurrencyConfig" not in calls.calls
    assert runtime.store.get_fix(fix_id)["status"] == "applied"


def test_undo_of_provisioned_concurrency_puts_the_prior_back_when_untouched(aws, runtime, stub_only):
    arn = aws.function("orders-api")
    lam = stub_only(runtime.clients()("lambda"), LIST, PUT)
    for value in (4, 20):
        lam.add_response("put_provisioned_concurrency_config", {"RequestedProvisionedConcurrentExecutions": value},
                         {"FunctionName": arn, "Qualifier": "live", "ProvisionedConcurrentExecutions": value})
        if value == 4:
            spec = FixSpec("set-provisioned-concurrency", arn,
                           {"Qualifier": "live", "ProvisionedConcurrentExecutions": 4},
                           {"Qualifier": "live", "ProvisionedConcurrentExecutions": 20})
            fix_id = _apply(runtime, "provisioned-idle", spec)
            lam.add_response("list_provisioned_concurrency_configs", {"ProvisionedConcurrencyConfigs": [
                {"FunctionArn": f"{arn}:live", "RequestedProvisionedConcurrentExecutions": 4, "Status": "READY"}]},
                {"FunctionName": arn})
    outcome = _undo(runtime, fix_id)
    assert outcome.ok, outcome.text
    lam.assert_no_pending_responses()


def test_undo_of_the_runaway_alarm_refuses_over_a_hand_edit(aws, runtime, calls):
    """The bot created the function's runaway alarm; someone edited it since (say, added their own actions):
    Undo used to delete their alarm."""
    arn = aws.function("orders-api")
    params = alarms.Thresholds(5000, 500, True, 2).to_params("orders-api")
    fix_id = _apply(runtime, "runaway-loop", FixSpec("put-runaway-alarm", arn, params, {"Alarm": None}))
    cloudwatch = aws.client("cloudwatch")
    edited = alarms.alarm_spec("orders-api", alarms.Thresholds(9000, 500, True, 2))
    cloudwatch.put_metric_alarm(**edited)
    calls.clear()
    outcome = _undo(runtime, fix_id)
    assert not outcome.ok and "alarm safetycatch-runaway-orders-api was changed after the fix" in outcome.text
    assert "cloudwatch.DeleteAlarms" not in calls.calls
    assert cloudwatch.describe_alarms(AlarmNames=["safetycatch-runaway-orders-api"])["MetricAlarms"]
    cloudwatch.put_metric_alarm(**alarms.alarm_spec("orders-api", alarms.Thresholds.from_params(params)))
    assert _undo(runtime, fix_id).ok, "as the bot put it: undo deletes it"
    assert cloudwatch.describe_alarms(AlarmNames=["safetycatch-runaway-orders-api"])["MetricAlarms"] == []


def test_undo_of_stop_recursive_loop_refuses_over_a_later_recursion_change(aws, runtime, calls):
    arn = aws.function("thumbnailer")
    stubber = stub_recursion(runtime)
    stubber.add_response("put_function_recursion_config", {"RecursiveLoop": "Terminate"},
                         {"FunctionName": arn, "RecursiveLoop": "Terminate"})
    spec = FixSpec("stop-recursive-loop", arn, {"RecursiveLoop": "Terminate"}, {"RecursiveLoop": "Allow"})
    fix_id = _apply(runtime, "recursive-trigger", spec)
    stubber.add_response("get_function_recursion_config", {"RecursiveLoop": "Allow"}, {"FunctionName": arn})
    calls.clear()
    outcome = _undo(runtime, fix_id)
    assert not outcome.ok and "RecursiveLoop is now Allow, the fix set Terminate" in outcome.text
    stubber.assert_no_pending_responses()


def test_restore_of_a_kill_refuses_over_a_later_concurrency_change(aws, runtime):
    """After the kill, the owner fixed the loop and set their own cap of 50: Restore used to delete it."""
    aws.function("thumbnailer")
    result = killswitch.kill(runtime, "thumbnailer", "loop", "alice")
    aws.client("lambda").put_function_concurrency(FunctionName="thumbnailer", ReservedConcurrentExecutions=50)
    outcome = decisions.decide(runtime, "restore", result["fix_id"], actor=APPROVER)
    assert not outcome.ok and "ReservedConcurrentExecutions is now 50, the kill set 0" in outcome.text
    assert aws.client("lambda").get_function_concurrency(FunctionName="thumbnailer")[
        "ReservedConcurrentExecutions"] == 50
    with pytest.raises(killswitch.KillSwitchError, match="now 50"):
        killswitch.restore(runtime, "thumbnailer", "alice")


# -- the real Undo flow (Slack button → worker → decision) ------------------------------------------------


def test_undo_of_batch_partial_failure_through_slack(slack_bot, aws):
    lam = aws.client("lambda")
    arn = aws.function("orders-worker")
    uuid = aws.sqs_mapping(arn, "orders-queue")
    event = api_call("UpdateEventSourceMapping20150331", {"uUID": uuid, "batchSize": 10})
    (finding,) = handle_event(event, runtime=slack_bot.runtime)["findings"]
    slack_bot.click(APPROVER, "approve", finding["approval_id"])
    assert lam.get_event_source_mapping(UUID=uuid)["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    (undo,) = [b for b in buttons(slack_bot.slack.posted()[0]) if b["action_id"] == "undo"]
    lam.update_event_source_mapping(UUID=uuid, FunctionResponseTypes=[])  # changed by hand since
    slack_bot.click(APPROVER, "undo", undo["value"])
    assert "FunctionResponseTypes is now" in slack_bot.slack.ephemerals[-1]["text"]
    lam.update_event_source_mapping(UUID=uuid, FunctionResponseTypes=["ReportBatchItemFailures"])
    slack_bot.click(APPROVER, "undo", undo["value"])
    assert lam.get_event_source_mapping(UUID=uuid).get("FunctionResponseTypes", []) == []
    assert slack_bot.runtime.store.get_fix(undo["value"])["status"] == "undone"


def test_undo_of_reserved_concurrency_through_slack(slack_bot, aws):
    lam = aws.client("lambda")
    arn = aws.function("payments", tags={"critical": "true"})
    event = api_call("TagResource20170331v2", {"resource": arn, "tags": {"critical": "true"}})
    (finding,) = [f for f in handle_event(event, runtime=slack_bot.runtime)["findings"]
                  if f["policy"] == "reserved-concurrency"]
    assert finding["outcome"] == "fixed"
    reserved = lam.get_function_concurrency(FunctionName="payments")["ReservedConcurrentExecutions"]
    lam.put_function_concurrency(FunctionName="payments", ReservedConcurrentExecutions=reserved + 40)
    slack_bot.click(APPROVER, "undo", finding["fix_id"])
    assert f"ReservedConcurrentExecutions is now {reserved + 40}, the fix set {reserved}" in \
        slack_bot.slack.ephemerals[-1]["text"]
    lam.put_function_concurrency(FunctionName="payments", ReservedConcurrentExecutions=reserved)
    slack_bot.click(APPROVER, "undo", finding["fix_id"])
    assert "ReservedConcurrentExecutions" not in lam.get_function_concurrency(FunctionName="payments")
    assert slack_bot.runtime.store.get_fix(finding["fix_id"])["status"] == "undone"


def test_every_fix_kind_says_what_undo_compares():
    from chalicelib.act import drift, fixes

    assert set(drift._READERS) == set(fixes.ACTIONS)
