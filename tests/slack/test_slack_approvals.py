"""Slack approvals end to end: moto as AWS, the local Slack over HTTP, the real routes through chalice's
test client with requests signed exactly as Slack signs them, and the worker inline."""

from __future__ import annotations

import threading
import time

import pytest
from chalice.test import Client

import app as app_module
from chalicelib.bot import handlers, slack_routes
from chalicelib.bot.handlers import handle_event
from safetycatch.local.cloudtrail import api_call
from safetycatch.local.slack_local import block_actions, signed
from tests.world.slack_helpers import (
    APPROVER,
    BOT_TOKEN,
    CHANNEL,
    GROUP,
    GROUP_MEMBER,
    OUTSIDER,
    SIGNING_SECRET,
    buttons,
    configure_slack,
    create_secret,
    deployed_bot,
    policies_dir,
    text_of,
)


@pytest.fixture
def make_bot(aws, make_runtime, local_slack, monkeypatch, tmp_path):
    """``make_bot(batch_partial_failure="approve")``: the bot with Slack configured, as deployed."""
    configure_slack(aws, monkeypatch, local_slack)

    def build(**modes):
        return deployed_bot(make_runtime, local_slack, policies_dir(tmp_path, **modes))

    yield build
    slack_routes.wait_inline()


@pytest.fixture
def bot(make_bot):
    return make_bot()


def _mapping_event(aws, batch=10):
    arn = aws.function("orders-worker")
    uuid = aws.sqs_mapping(arn, "orders-queue", batch_size=batch)
    return uuid, api_call("UpdateEventSourceMapping20150331", {"uUID": uuid, "batchSize": batch}, session="alice")


def _response_types(aws, uuid):
    return aws.client("lambda").get_event_source_mapping(UUID=uuid).get("FunctionResponseTypes") or []


def _pending(bot, aws):
    uuid, event = _mapping_event(aws)
    report = handle_event(event, runtime=bot.runtime)
    (finding,) = report["findings"]
    assert finding["outcome"] == "pending-approval"
    return uuid, finding["approval_id"]


# -- the message -----------------------------------------------------------------------------------


def test_approval_message_has_the_facts_and_buttons_with_only_the_id(bot, aws):
    uuid, approval_id = _pending(bot, aws)
    (message,) = bot.slack.posted()
    text = text_of(message)
    for fact in ("orders-worker", "123456789012", "us-east-1", "batch-partial-failure", "medium",
                 "Why it matters", "FunctionResponseTypes = none", "FunctionResponseTypes = ReportBatchItemFailures",
                 uuid, "UpdateEventSourceMapping by arn:aws:iam::123456789012:role/dev-role"):
        assert fact in text, fact
    approve, deny = buttons(message)
    assert (approve["action_id"], approve["style"], approve["value"]) == ("approve", "primary", approval_id)
    assert (deny["action_id"], deny["style"], deny["value"]) == ("deny", "danger", approval_id)
    assert deny["confirm"]["confirm"]["text"] == "Deny" and "confirm" not in approve
    approval = bot.runtime.store.get_approval(approval_id)
    assert (approval["channel"], approval["ts"]) == (message.channel, message.ts)


def test_one_message_per_function_and_event_grouping_its_findings(make_bot, aws):
    bot = make_bot(apigw_timeout="auto")
    arn = aws.function("example-fn", timeout=30, tags={"critical": "true"})
    aws.rest_api(arn, path="orders")
    aws.sqs_mapping(arn, "orders-queue")
    # a tag change concerns every policy: three findings on one function, one message
    report = handle_event(api_call("TagResource20170331v2", {"resource": arn, "tags": {"critical": "true"}}),
                          runtime=bot.runtime)
    assert sorted(f["outcome"] for f in report["findings"]) == ["fixed", "fixed", "pending-approval"]
    (message,) = bot.slack.posted()
    assert sorted(b["action_id"] for b in buttons(message)) == ["approve", "deny", "undo", "undo"]
    assert message.text == "safetycatch · example-fn: 1 awaiting approval, 2 fixed"


def test_notify_findings_post_without_buttons_and_only_once_a_day(make_bot, aws):
    bot = make_bot(batch_partial_failure="notify")
    uuid, event = _mapping_event(aws)
    handle_event(event, runtime=bot.runtime)
    (message,) = bot.slack.posted()
    assert buttons(message) == [] and "Notify only" in text_of(message)
    event["detail"]["eventID"] = "another-event-id"
    handle_event(event, runtime=bot.runtime)
    assert len(bot.slack.posted()) == 1


def test_dry_run_posts_nothing(aws, make_runtime, local_slack, monkeypatch, tmp_path):
    create_secret(aws)
    monkeypatch.setenv("SAFETYCATCH_SLACK_SECRET", "safetycatch/slack")
    monkeypatch.setenv("SAFETYCATCH_SLACK_CHANNEL", CHANNEL)
    monkeypatch.setenv("SAFETYCATCH_SLACK_API_URL", local_slack.url)
    runtime = make_runtime(mode="dry-run", policies=policies_dir(tmp_path))
    _, event = _mapping_event(aws)
    assert handle_event(event, runtime=runtime)["findings"][0]["outcome"] == "dry-run"
    assert local_slack.calls() == []


# -- approving ---------------------------------------------------------------------------------------


def test_authorised_approve_applies_once_and_updates_the_message(bot, aws, calls):
    uuid, approval_id = _pending(bot, aws)
    calls.clear()
    response = bot.click(APPROVER, "approve", approval_id)
    assert response.status_code == 200
    assert _response_types(aws, uuid) == ["ReportBatchItemFailures"]
    approval = bot.runtime.store.get_approval(approval_id)
    assert approval["status"] == "APPLIED" and approval["decided_by"] == APPROVER
    assert calls.writes.count("lambda.UpdateEventSourceMapping") == 1
    (message,) = bot.slack.posted()
    assert message.versions == 2 and "Approved by <@U0APPROVER>" in text_of(message)
    assert [b["action_id"] for b in buttons(message)] == ["undo"]
    assert buttons(message)[0]["value"] == approval["fix_id"]
    fix = bot.runtime.store.get_fix(approval["fix_id"])
    assert fix["status"] == "applied" and fix["spec"]["prior"] == {"FunctionResponseTypes": []}


def test_approver_group_member_may_approve(bot, aws):
    uuid, approval_id = _pending(bot, aws)
    bot.click(GROUP_MEMBER, "approve", approval_id)
    assert bot.runtime.store.get_approval(approval_id)["status"] == "APPLIED"
    assert [c.args["usergroup"] for c in bot.slack.calls("usergroups.users.list")] == [GROUP], "cached"


def test_deny_changes_nothing_and_says_who(bot, aws, calls):
    uuid, approval_id = _pending(bot, aws)
    calls.clear()
    bot.click(APPROVER, "deny", approval_id)
    assert bot.runtime.store.get_approval(approval_id)["status"] == "DENIED"
    assert _response_types(aws, uuid) == [] and "lambda.UpdateEventSourceMapping" not in calls.writes
    (message,) = bot.slack.posted()
    assert "Denied by <@U0APPROVER>" in text_of(message) and buttons(message) == []


# -- what must not work ---------------------------------------------------------------------------


def test_forged_signature_is_401_with_no_side_effect(bot, aws, calls):
    uuid, approval_id = _pending(bot, aws)
    before = len(bot.slack.calls())
    calls.clear()
    response = bot.click(APPROVER, "approve", approval_id, secret="not-the-signing-secret")
    assert response.status_code == 401
    missing = bot.client.http.post("/slack/actions", headers={"Content-Type": "application/x-www-form-urlencoded"},
                                   body=b"payload=%7B%7D")
    assert missing.status_code == 401
    assert bot.runtime.store.get_approval(approval_id)["status"] == "PENDING"
    assert _response_types(aws, uuid) == [] and calls.writes == []
    assert len(bot.slack.calls()) == before


def test_stale_timestamp_is_401(bot, aws):
    uuid, approval_id = _pending(bot, aws)
    response = bot.click(APPROVER, "approve", approval_id, timestamp=bot.clock.tick() - 6 * 60)
    assert response.status_code == 401
    assert bot.runtime.store.get_approval(approval_id)["status"] == "PENDING"


def test_replayed_request_is_refused_even_inside_the_window(bot, aws):
    uuid, approval_id = _pending(bot, aws)
    message = bot.slack.posted()[0]
    body = block_actions(APPROVER, "deny", approval_id, message.channel, message.ts)
    headers = signed(body, SIGNING_SECRET, bot.clock.tick())  # one captured request, resent byte for byte
    assert bot.post("/slack/actions", body, headers=headers).status_code == 200
    assert bot.post("/slack/actions", body, headers=headers).status_code == 401
    assert bot.runtime.store.get_approval(approval_id)["status"] == "DENIED"
    assert bot.slack.ephemerals == [], "the replay never reached the worker"


def test_unauthorised_user_gets_an_ephemeral_and_nothing_changes(bot, aws, calls):
    uuid, approval_id = _pending(bot, aws)
    calls.clear()
    response = bot.click(OUTSIDER, "approve", approval_id)
    assert response.status_code == 200
    assert bot.runtime.store.get_approval(approval_id)["status"] == "PENDING"
    assert _response_types(aws, uuid) == [] and calls.writes == []
    (note,) = bot.slack.ephemerals
    assert "not authorised" in note["text"] and note["via"] == "response_url"
    assert bot.slack.posted()[0].versions == 1


def test_double_click_applies_once(bot, aws, calls):
    uuid, approval_id = _pending(bot, aws)
    calls.clear()
    bot.click(APPROVER, "approve", approval_id)
    bot.click(APPROVER, "approve", approval_id)  # signed a second later: a second click, not a replay
    assert calls.writes.count("lambda.UpdateEventSourceMapping") == 1
    (note,) = bot.slack.ephemerals
    assert "Already applied by U0APPROVER" in note["text"]


def test_two_approvers_racing_apply_exactly_once(bot, aws, calls):
    uuid, approval_id = _pending(bot, aws)
    store = bot.runtime.store
    both_read = threading.Barrier(2, timeout=120)  # a deadlock guard, not a deadline: both always arrive
    real_get, waited = store.get_approval, set()

    def get_then_wait(item_id):  # both approvers see PENDING before either writes: the worst interleaving
        found = real_get(item_id)
        me = threading.current_thread()
        if me.name == "safetycatch-worker" and me not in waited:
            waited.add(me)
            both_read.wait()
        return found

    store.get_approval = get_then_wait
    calls.clear()
    message = bot.slack.posted()[0]
    bodies = [(user, block_actions(user, "approve", approval_id, message.channel, message.ts))
              for user in (APPROVER, GROUP_MEMBER)]
    threads = [threading.Thread(target=bot.post, args=("/slack/actions", body)) for _, body in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    slack_routes.wait_inline()
    store.get_approval = real_get
    assert calls.writes.count("lambda.UpdateEventSourceMapping") == 1
    approval = store.get_approval(approval_id)
    assert approval["status"] == "APPLIED" and approval["decided_by"] in (APPROVER, GROUP_MEMBER)
    (loser,) = bot.slack.ephemerals
    assert "Someone was quicker" in loser["text"]


def test_expired_approval_is_refused_with_a_message(bot, aws, calls):
    clock = [time.time()]  # the state table's clock, injected: the approval is created at clock[0]
    bot.runtime.store.clock = lambda: clock[0]
    uuid, approval_id = _pending(bot, aws)
    clock[0] += 25 * 3600  # a day and an hour later: past approval_ttl_hours (24)
    calls.clear()
    bot.click(APPROVER, "approve", approval_id)
    assert bot.runtime.store.get_approval(approval_id)["status"] == "EXPIRED"
    assert _response_types(aws, uuid) == [] and "lambda.UpdateEventSourceMapping" not in calls.writes
    (note,) = bot.slack.ephemerals
    assert "expired" in note["text"] and "approval_ttl_hours = 24" in note["text"]
    assert "Expired" in text_of(bot.slack.posted()[0]) and buttons(bot.slack.posted()[0]) == []


def test_function_changed_between_request_and_click_is_re_evaluated(make_bot, aws, calls):
    bot = make_bot(apigw_timeout="approve")
    arn = aws.function("example-fn", timeout=30)
    aws.rest_api(arn, path="orders")
    report = handle_event(api_call("UpdateFunctionConfiguration20150331v2", {"functionName": arn}),
                          runtime=bot.runtime)
    (finding,) = report["findings"]
    first = bot.slack.posted()[0]
    aws.client("lambda").update_function_configuration(FunctionName="example-fn", Timeout=40)
    calls.clear()
    bot.click(APPROVER, "approve", finding["approval_id"], message=first)
    lam = aws.client("lambda")
    assert lam.get_function(FunctionName="example-fn")["Configuration"]["Timeout"] == 40
    assert "lambda.UpdateFunctionConfiguration" not in calls.writes
    old = bot.runtime.store.get_approval(finding["approval_id"])
    assert old["status"] == "FAILED" and old["reason"].startswith("superseded")
    (fresh,) = bot.runtime.store.approvals("PENDING")
    assert fresh["id"] == old["superseded_by"] and fresh["spec"]["prior"] == {"Timeout": 40}
    second = bot.slack.posted()[1]
    assert "Timeout = 40" in text_of(second) and buttons(second)[0]["value"] == fresh["id"]
    assert "superseded" in bot.slack.ephemerals[0]["text"]
    # the fresh request, approved, applies the current change
    bot.click(APPROVER, "approve", fresh["id"], message=second)
    assert lam.get_function(FunctionName="example-fn")["Configuration"]["Timeout"] == 25


def test_fix_no_longer_needed_is_not_applied(make_bot, aws, calls):
    bot = make_bot(apigw_timeout="approve")
    arn = aws.function("example-fn", timeout=30)
    aws.rest_api(arn, path="orders")
    (finding,) = handle_event(api_call("UpdateFunctionConfiguration20150331v2", {"functionName": arn}),
                              runtime=bot.runtime)["findings"]
    aws.client("lambda").update_function_configuration(FunctionName="example-fn", Timeout=20)
    calls.clear()
    bot.click(APPROVER, "approve", finding["approval_id"])
    assert calls.writes == []
    approval = bot.runtime.store.get_approval(finding["approval_id"])
    assert approval["status"] == "FAILED" and approval["reason"].startswith("no longer needed")


# -- undo --------------------------------------------------------------------------------------------


def test_undo_of_an_auto_fix_restores_the_prior_value(make_bot, aws):
    bot = make_bot(apigw_timeout="auto")
    arn = aws.function("example-fn", timeout=30)
    aws.rest_api(arn, path="orders")
    (finding,) = handle_event(api_call("UpdateFunctionConfiguration20150331v2", {"functionName": arn}),
                              runtime=bot.runtime)["findings"]
    lam = aws.client("lambda")
    assert (
        finding["outcome"] == "fixed" and lam.get_function(FunctionName="example-fn")["Configuration"]["Timeout"] == 25
    )
    (undo,) = buttons(bot.slack.posted()[0])
    assert (undo["action_id"], undo["value"]) == ("undo", finding["fix_id"])
    bot.click(OUTSIDER, "undo", finding["fix_id"])
    assert lam.get_function(FunctionName="example-fn")["Configuration"]["Timeout"] == 25
    bot.click(APPROVER, "undo", finding["fix_id"])
    assert lam.get_function(FunctionName="example-fn")["Configuration"]["Timeout"] == 30
    assert bot.runtime.store.get_fix(finding["fix_id"])["status"] == "undone"
    assert "Undone by <@U0APPROVER>" in text_of(bot.slack.posted()[0])
    bot.click(APPROVER, "undo", finding["fix_id"])
    assert "Nothing to undo" in bot.slack.ephemerals[-1]["text"]


def test_undo_refuses_to_overwrite_a_later_change(make_bot, aws):
    bot = make_bot(apigw_timeout="auto")
    arn = aws.function("example-fn", timeout=30)
    aws.rest_api(arn, path="orders")
    (finding,) = handle_event(api_call("UpdateFunctionConfiguration20150331v2", {"functionName": arn}),
                              runtime=bot.runtime)["findings"]
    aws.client("lambda").update_function_configuration(FunctionName="example-fn", Timeout=12)
    bot.click(APPROVER, "undo", finding["fix_id"])
    assert aws.client("lambda").get_function(FunctionName="example-fn")["Configuration"]["Timeout"] == 12
    assert "Timeout is now 12, the fix set 25" in bot.slack.ephemerals[-1]["text"]
    assert bot.runtime.store.get_fix(finding["fix_id"])["status"] == "applied"


# -- Slack failing ----------------------------------------------------------------------------------


def test_slack_429_then_success_posts_once(bot, aws):
    bot.slack.fail(429, retry_after=0, methods=("chat.postMessage",))
    uuid, approval_id = _pending(bot, aws)
    assert [c.status for c in bot.slack.calls("chat.postMessage")] == [429, 200]
    (message,) = bot.slack.posted()
    assert bot.runtime.store.get_approval(approval_id)["ts"] == message.ts


def test_slack_500_is_retried(bot, aws):
    bot.slack.fail(500, methods=("chat.postMessage",))
    _pending(bot, aws)
    assert [c.status for c in bot.slack.calls("chat.postMessage")] == [500, 200]


def test_slack_down_then_back_resends_the_pending_approval(bot, aws):
    bot.slack.down()
    uuid, event = _mapping_event(aws)
    (finding,) = handle_event(event, runtime=bot.runtime)["findings"]
    approval = bot.runtime.store.get_approval(finding["approval_id"])
    assert approval["status"] == "PENDING" and not approval.get("ts")
    bot.slack.up()
    event["detail"]["eventID"] = "a-later-event"
    (again,) = handle_event(event, runtime=bot.runtime)["findings"]
    assert again["approval_id"] == finding["approval_id"]
    (message,) = bot.slack.posted()
    assert buttons(message)[0]["value"] == finding["approval_id"]
    event["detail"]["eventID"] = "yet-another-event"
    handle_event(event, runtime=bot.runtime)
    assert len(bot.slack.posted()) == 1, "a posted approval is not posted again"


def test_sweep_resends_unposted_approvals(bot, aws):
    bot.slack.down()
    _, approval_id = _pending(bot, aws)
    bot.slack.up()
    engine = bot.runtime.engine("123456789012", "us-east-1")
    engine.sweep(act=True)
    (message,) = bot.slack.posted()
    assert buttons(message)[0]["value"] == approval_id


# -- slash commands -----------------------------------------------------------------------------------


def test_status_command_answers_through_response_url(bot, aws):
    _, approval_id = _pending(bot, aws)
    response = bot.command(APPROVER, "status orders-worker")
    assert response.status_code == 200 and "working on it" in response.json_body["text"]
    (answer,) = bot.slack.ephemerals
    assert (
        "orders-worker" in answer["text"] and approval_id in answer["text"] and "1 awaiting approval" in answer["text"]
    )


def test_commands_check_the_approver_and_the_usage(bot, aws):
    refused = bot.command(OUTSIDER, "status orders-worker")
    assert "not authorised" in refused.json_body["text"] and refused.json_body["response_type"] == "ephemeral"
    assert "Usage" in bot.command(APPROVER, "explode everything now").json_body["text"]
    assert bot.slack.ephemerals == []


def test_slash_kill_then_restore_button_puts_it_back(bot, aws):
    """/safetycatch kill throttles to 0 and posts a Restore button; the button restores exactly (via the
    kill-switch, which also releases its lock)."""
    aws.function("orders-worker")
    bot.command(APPROVER, "kill orders-worker")
    assert aws.client("lambda").get_function_concurrency(FunctionName="orders-worker")[
        "ReservedConcurrentExecutions"] == 0
    assert "throttled to 0" in bot.slack.ephemerals[-1]["text"]
    (fix,) = [f for f in bot.runtime.store.fixes_for(
        "arn:aws:lambda:us-east-1:123456789012:function:orders-worker") if f["spec"]["action"] == "kill"]
    bot.click(APPROVER, "restore", fix["id"])
    assert "ReservedConcurrentExecutions" not in aws.client("lambda").get_function_concurrency(
        FunctionName="orders-worker")
    assert bot.runtime.store.kill_lock("arn:aws:lambda:us-east-1:123456789012:function:orders-worker")[
        "status"] == "restored"


# -- hostile input --------------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [
    "payload=not-json", "payload=%5B1%2C2%5D", "", "payload=%7B%22type%22%3A%22block_actions%22%2C%22actions%22%3A5%7D",
    "payload=%7B%22type%22%3A%22block_actions%22%2C%22actions%22%3A%5B%7B%22action_id%22%3A%22approve%22%2C"
    "%22value%22%3A%7B%7D%7D%5D%2C%22user%22%3A%7B%22id%22%3A%22U0APPROVER%22%7D%7D",
])
def test_hostile_but_signed_payloads_never_raise(bot, aws, body):
    assert bot.post("/slack/actions", body).status_code == 200
    assert bot.post("/slack/commands", body).status_code == 200  # the same body, signed a second later


def test_routes_answer_503_without_slack_settings(aws, make_runtime, monkeypatch):
    runtime = make_runtime()
    handlers.reset_runtime(runtime)
    client = Client(app_module.app)
    response = client.http.post("/slack/actions", headers={"Content-Type": "application/x-www-form-urlencoded"},
                                body=b"payload=%7B%7D")
    assert response.status_code == 503


def test_credentials_come_from_secrets_manager_cached(bot, aws, calls, monkeypatch):
    import os

    from chalicelib.slack import client as slack

    assert slack.SECRET_MAX_AGE == 300, "five minutes in a warm container"
    monkeypatch.setattr(slack, "SECRET_MAX_AGE", 10**9)  # the cache cannot expire mid-test, however slow the machine
    assert not any(BOT_TOKEN in v or "8f742231" in v for v in os.environ.values())
    calls.clear()
    _pending(bot, aws)
    bot.command(APPROVER, "status orders-worker")
    assert calls.calls.count("secretsmanager.GetSecretValue") == 1


def test_deployed_route_invokes_the_worker_asynchronously(bot, aws, monkeypatch):
    from unittest.mock import ANY

    from botocore.stub import Stubber

    monkeypatch.delenv("SAFETYCATCH_WORKER")
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "safetycatch-dev")
    _, approval_id = _pending(bot, aws)
    lam = bot.runtime.clients()("lambda")
    with Stubber(lam) as stub:
        stub.add_response("invoke", {"StatusCode": 202}, {
            "FunctionName": "safetycatch-dev-slack_worker", "InvocationType": "Event",
            "Payload": ANY})
        assert bot.click(APPROVER, "approve", approval_id).status_code == 200
        stub.assert_no_pending_responses()
    assert bot.runtime.store.get_approval(approval_id)["status"] == "PENDING", "the route itself changes nothing"


# -- the kill-switch interface -------------------------------------------------------------------------


def test_kill_notice_has_a_restore_button_that_undoes_the_kill_fix(bot, aws):
    """A kill posts a notice whose Restore button carries only the kill's fix id; only an approver can use it,
    and it puts back exactly the prior state."""
    from chalicelib.killswitch import kill as killswitch

    arn = aws.function("runaway")
    lam = aws.client("lambda")
    result = killswitch.kill(bot.runtime, arn, "alarm safetycatch-runaway-runaway in ALARM", "safetycatch")
    assert result["outcome"] == "fixed"
    fix_id = result["fix_id"]
    (message,) = bot.slack.posted()
    (restore,) = buttons(message)
    assert (restore["action_id"], restore["value"], restore["style"]) == ("restore", fix_id, "primary")
    assert "Killed" in text_of(message)
    bot.click(OUTSIDER, "restore", fix_id)
    assert lam.get_function_concurrency(FunctionName="runaway").get("ReservedConcurrentExecutions") == 0
    bot.click(APPROVER, "restore", fix_id)
    assert lam.get_function_concurrency(FunctionName="runaway").get("ReservedConcurrentExecutions") is None
    assert bot.runtime.store.get_fix(fix_id)["status"] in ("undone", "restored")
    assert "Restored by <@U0APPROVER>" in text_of(bot.slack.posted()[0])


# -- signatures, property-based --------------------------------------------------------------------------


def test_signature_check_never_raises_and_never_accepts_junk(bot):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    slack = bot.runtime.slack

    @settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.binary(max_size=200), st.dictionaries(st.sampled_from(
        ["X-Slack-Signature", "x-slack-request-timestamp", "X-Slack-Request-Timestamp", "Content-Type"]),
        st.one_of(st.text(max_size=80), st.integers().map(str)), max_size=4))
    def check(body, headers):
        assert slack.verify(body, headers) is False

    check()


def test_a_policy_switched_to_notify_after_the_request_applies_nothing(make_bot, aws, calls, tmp_path):
    bot = make_bot()
    uuid, approval_id = _pending(bot, aws)
    (tmp_path / "policies" / "batch-partial-failure.yaml").write_text("mode: notify\n")
    from chalicelib.policy.settings import load

    bot.runtime.policy_set = load(str(tmp_path / "policies"))
    calls.clear()
    bot.click(APPROVER, "approve", approval_id)
    assert calls.writes == [] and _response_types(aws, uuid) == []
    assert "notify mode" in bot.runtime.store.get_approval(approval_id)["reason"]
