"""Slack cannot be used to steer the bot or its approvers (issue 11, item 6): every interpolated value is escaped,
only the pinned workspace and app are heard, a body that is not UTF-8 is a 401, and every command answers."""

from __future__ import annotations

import hashlib
import hmac
import re
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.bot import handlers, slack_routes
from chalicelib.slack.messages import render
from chalicelib.store.state import MemoryTable, StateStore
from safetycatch.local.slack_local import block_actions, slash_command
from tests.world.slack_helpers import APPROVER, CHANNEL, SIGNING_SECRET, configure_slack, deployed_bot, policies_dir

HOSTILE = "<!channel> <https://evil.example|Restore here> & <@U0APPROVER> <!subteam^S0SECTEAM>"
OUR_MARKUP = re.compile(r"<@[UW][A-Z0-9]{2,20}>|<!date\^\d+\^\{date_short_pretty\} \{time\}\|[^<>]*>|"
                        r"<!subteam\^S[A-Z0-9]{2,20}>")
PINS = {"slack_team_ids": ["T0SAFETY1"], "slack_app_id": "A0SAFETY1"}


@pytest.fixture
def pinned_bot(aws, make_runtime, local_slack, monkeypatch, tmp_path):
    """The bot with Slack configured as deployed, pinned to the local workspace and app."""
    configure_slack(aws, monkeypatch, local_slack)
    yield deployed_bot(make_runtime, local_slack, policies_dir(tmp_path, settings_extra=PINS))
    slack_routes.wait_inline()


def _mrkdwn_texts(blocks: list) -> list[str]:
    """Every text Slack parses as mrkdwn in these blocks (what a link or a mention could hide in)."""
    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if node.get("type") == "mrkdwn":
                found.append(str(node.get("text", "")))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(blocks)
    return found


def _unescaped(text: str) -> str:
    """What is left of ``text`` that Slack would read as markup, once the bot's own tokens are taken out."""
    rest = OUR_MARKUP.sub("", text)
    return "".join(re.findall(r"[<>]|&(?!amp;|lt;|gt;)", rest))


def test_an_api_name_cannot_ping_the_channel_or_show_a_link(pinned_bot, aws):
    """Attack: name an API ``<!channel> <https://evil.example|Restore here>``; the bot's fix message about the
    function behind it (the sweep names the API) used to ping the channel and show a link in the approvals channel."""
    arn = aws.function("orders-api", timeout=30)
    aws.rest_api(arn, path="orders", name=HOSTILE)
    aws.function("billing")  # two functions: the sweep reads every API, with its name
    report = handlers.on_schedule({}, runtime=pinned_bot.runtime)
    assert report["outcomes"] == {"fixed": 1}
    (message,) = pinned_bot.slack.posted()
    texts = _mrkdwn_texts(message.blocks)
    assert any("&lt;!channel&gt;" in t for t in texts), "the name is shown, escaped"
    assert [t for t in texts if _unescaped(t)] == []
    assert "<!channel>" not in message.text and "<https://evil" not in message.text


hostile_text = st.text(alphabet="<>&!|@^ ahttps:/.evil", max_size=40) | st.just(HOSTILE)


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(value=hostile_text)
def test_every_interpolated_value_is_escaped_in_every_message(value):
    """Approval, fix, note and kill messages: whatever a value holds (a reason, a function name, a finding's message,
    a spec value), no ``<``, ``>`` or bare ``&`` of it reaches Slack's mrkdwn."""
    store = StateStore(MemoryTable())
    arn = "arn:aws:lambda:us-east-1:123456789012:function:orders-api"
    spec = {"action": "set-timeout", "target": arn + value, "params": {"Timeout": value}, "prior": {"Timeout": value}}
    approval = store.create_approval(arn, "apigw-timeout", spec, 24, severity="high", message=value)
    failed = store.create_approval(arn, "memory-cpu", spec, 24, message=value)
    store.transition_approval(failed["id"], "PENDING", "APPROVED", decided_by=value)
    store.transition_approval(failed["id"], "APPROVED", "FAILED", reason=value)
    fix_id = store.store_fix(arn, "apigw-timeout", spec)
    store.mark_fix(fix_id, "failed", "stored", reason=value)
    items = [{"kind": "approval", "id": approval["id"]}, {"kind": "approval", "id": failed["id"]},
             {"kind": "fix", "id": fix_id, "severity": "high", "message": value},
             {"kind": "note", "policy": "env-secrets", "severity": "low", "message": value, "outcome": "failed",
              "detail": value}]
    message_id = store.create_message(arn + value, items, context=value)
    text, blocks = render(store, store.get_message(message_id) or {})
    assert [t for t in _mrkdwn_texts([b.to_dict() for b in blocks]) if _unescaped(t)] == []
    assert _unescaped(text) == ""


# -- workspace and app pins, bodies, answers --------------------------------------------------------------


def test_requests_from_another_workspace_or_app_are_refused(pinned_bot, aws):
    """Attack: the app is distributed (or its signing secret reused) in another workspace: a member of that
    workspace clicks or types ``/safetycatch kill`` with a valid signature."""
    aws.function("orders-worker")
    for team, app_id in (("T0OTHER99", "A0SAFETY1"), ("T0SAFETY1", "A0OTHERAPP")):
        command = slash_command(APPROVER, "kill orders-worker", CHANNEL, team=team, app_id=app_id)
        assert pinned_bot.post("/slack/commands", command).status_code == 403
        click = block_actions(APPROVER, "approve", "0123456789abcdef", CHANNEL, "1.0", team=team, app_id=app_id)
        assert pinned_bot.post("/slack/actions", click).status_code == 403
    assert "ReservedConcurrentExecutions" not in aws.client("lambda").get_function_concurrency(
        FunctionName="orders-worker")
    assert pinned_bot.slack.ephemerals == []
    ok = pinned_bot.post("/slack/commands", slash_command(APPROVER, "status orders-worker", CHANNEL))
    assert ok.status_code == 200, "the pinned workspace and app are heard"


def test_a_body_that_is_not_utf8_is_401_not_500(pinned_bot):
    body = b"payload=%7B%7D&x=\xff\xfe\xfa"
    stamp = str(int(time.time()))
    digest = hmac.new(SIGNING_SECRET.encode(), f"v0:{stamp}:".encode() + body, hashlib.sha256).hexdigest()
    headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": stamp,
               "X-Slack-Signature": f"v0={digest}"}
    for path in ("/slack/actions", "/slack/commands"):
        response = pinned_bot.client.http.post(path, headers=headers, body=body)
        assert response.status_code == 401, path


@pytest.mark.parametrize("text, reason", [
    ("kill ghost-function", "no function ghost-function"),
    # a full ARN is reached through the member role (issue 12); outside the organisation AWS refuses the AssumeRole
    # (the bot's sts:AssumeRole is limited by aws:ResourceOrgID), and the asker hears that too
    ("kill arn:aws:lambda:us-east-1:999999999999:function:x", "AccessDenied"),
    ("restore orders-worker", "has no kill to restore"),
])
def test_every_command_answers_even_a_kill_switch_refusal(pinned_bot, aws, text, reason, monkeypatch):
    """A refused kill or restore used to be silent (the worker logged an exception); now the asker is told why."""
    from botocore.credentials import AssumeRoleCredentialFetcher
    from botocore.exceptions import ClientError

    def outside_the_organisation(fetcher):  # what STS answers for a role the bot may not assume
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "not authorized"}}, "AssumeRole")

    monkeypatch.setattr(AssumeRoleCredentialFetcher, "fetch_credentials", outside_the_organisation)
    aws.function("orders-worker")
    response = pinned_bot.command(APPROVER, text)
    assert response.status_code == 200
    (answer,) = pinned_bot.slack.ephemerals
    assert reason in answer["text"], answer["text"]


def test_status_of_a_function_shows_only_its_own_approvals(pinned_bot, aws):
    """``orders`` is a prefix of ``orders-api``: its status must not list orders-api's pending approvals."""
    store = pinned_bot.runtime.store
    aws.function("orders")
    store.create_approval("arn:aws:lambda:us-east-1:123456789012:function:orders-api", "memory-cpu",
                          {"action": "set-memory", "params": {"MemorySize": 1024}, "prior": {"MemorySize": 128}}, 24)
    pinned_bot.command(APPROVER, "status orders")
    (answer,) = pinned_bot.slack.ephemerals
    assert "0 awaiting approval" in answer["text"] and "memory-cpu" not in answer["text"]
    assert store.approvals("PENDING", "arn:aws:lambda:us-east-1:123456789012:function:orders") == []
    assert len(store.approvals("PENDING", "arn:aws:lambda:us-east-1:123456789012:function:orders-api")) == 1
