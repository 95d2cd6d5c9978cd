"""The CLI fallback (``approve`` / ``deny`` against the DynamoDB state table) and ``serve`` over real HTTP."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from chalicelib.bot import handlers, slack_routes
from chalicelib.bot.handlers import handle_event
from safetycatch.local.cloudtrail import api_call
from safetycatch.local.slack_local import LocalSlack, block_actions, signed
from safetycatch.main import main
from safetycatch.provision import init_state_table
from tests.world.slack_helpers import (
    APPROVER,
    BOT_TOKEN,
    CHANNEL,
    OUTSIDER,
    SIGNING_SECRET,
    buttons,
    create_secret,
    policies_dir,
    text_of,
)

TABLE = "safetycatch-test-state"


@pytest.fixture
def slack_bot(aws, make_runtime, monkeypatch, tmp_path):
    """A bot with the DynamoDB state table, Slack configured, and one posted approval for orders-worker."""
    create_secret(aws)
    with LocalSlack(token=BOT_TOKEN) as slack:
        policies = policies_dir(tmp_path)
        for key, value in {"SAFETYCATCH_SLACK_SECRET": "safetycatch/slack", "SAFETYCATCH_SLACK_CHANNEL": CHANNEL,
                           "SAFETYCATCH_SLACK_API_URL": slack.url, "SAFETYCATCH_POLICIES": str(policies)}.items():
            monkeypatch.setenv(key, value)
        runtime = make_runtime(policies=policies, table=TABLE)
        init_state_table(runtime.clients(), TABLE)
        arn = aws.function("orders-worker")
        uuid = aws.sqs_mapping(arn, "orders-queue")
        (finding,) = handle_event(api_call("UpdateEventSourceMapping20150331", {"uUID": uuid, "batchSize": 10}),
                                  runtime=runtime)["findings"]
        handlers.reset_runtime(None)
        yield slack, uuid, finding["approval_id"]


def test_cli_approve_applies_and_updates_the_slack_message(slack_bot, aws, capsys):
    slack, uuid, approval_id = slack_bot
    pending = main(["pending", "--format", "json"])
    listed = json.loads(capsys.readouterr().out)["approvals"]
    assert pending == 0 and [a["id"] for a in listed] == [approval_id]
    assert set(listed[0]) >= {"id", "function", "policy", "status", "expires_at"}
    assert main(["approve", approval_id]) == 0
    assert "Applied report-batch-item-failures on orders-worker" in capsys.readouterr().out
    lam = aws.client("lambda")
    assert lam.get_event_source_mapping(UUID=uuid)["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    (message,) = slack.posted()
    assert message.versions == 2 and "Approved by `cli:arn:aws:sts::123456789012:user/moto`" in text_of(message)


def test_cli_errors_are_one_line_exit_2_and_change_nothing(slack_bot, aws, capsys):
    slack, uuid, approval_id = slack_bot
    assert main(["deny", "not an id!"]) == 2
    assert main(["approve", "0" * 32]) == 2
    assert main(["deny", approval_id]) == 0
    assert main(["approve", approval_id]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("safetycatch: ") for line in err)
    assert "Already denied by cli:" in err[2]
    assert aws.client("lambda").get_event_source_mapping(UUID=uuid).get("FunctionResponseTypes") in (None, [])


def test_cli_approve_needs_the_state_table(aws, monkeypatch, capsys):
    assert main(["approve", "0" * 32]) == 2
    assert "SAFETYCATCH_TABLE" in capsys.readouterr().err


@pytest.mark.slow
def test_serve_answers_signed_clicks_over_http(slack_bot, aws):
    from safetycatch.local.serve import local_routes

    slack, uuid, approval_id = slack_bot
    message = slack.posted()[0]
    with local_routes(port=0) as url:
        def click(user, secret=SIGNING_SECRET, stamp=None):
            body = block_actions(user, "approve", approval_id, message.channel, message.ts,
                                 slack.response_url(message.channel, message.ts), message)
            request = urllib.request.Request(url + "/slack/actions", data=body.encode(),
                                             headers=signed(body, secret, stamp), method="POST")
            try:
                with urllib.request.urlopen(request, timeout=120) as response:  # a hang guard, not a deadline
                    return response.status
            except urllib.error.HTTPError as exc:
                return exc.code

        assert click(APPROVER, secret="forged") == 401
        assert click(OUTSIDER) == 200
        assert click(APPROVER) == 200
        slack_routes.wait_inline()  # the worker the route started (inline, in this process): done when it is
    assert aws.client("lambda").get_event_source_mapping(UUID=uuid)["FunctionResponseTypes"] == [
        "ReportBatchItemFailures"]
    updated = slack.message(message.channel, message.ts)
    assert "Approved by <@U0APPROVER>" in text_of(updated) and [b["action_id"] for b in buttons(updated)] == ["undo"]
    assert ["not authorised" in e["text"] for e in slack.ephemerals] == [True]


def test_replay_posts_to_slack_as_the_deployed_bot(aws, monkeypatch, tmp_path, capsys):
    create_secret(aws)
    arn = aws.function("orders-worker")
    uuid = aws.sqs_mapping(arn, "orders-queue")
    events = tmp_path / "events.json"
    events.write_text(json.dumps([api_call("UpdateEventSourceMapping20150331", {"uUID": uuid, "batchSize": 10})]))
    with LocalSlack(token=BOT_TOKEN) as slack:
        for key, value in {"SAFETYCATCH_SLACK_SECRET": "safetycatch/slack", "SAFETYCATCH_SLACK_CHANNEL": CHANNEL,
                           "SAFETYCATCH_SLACK_API_URL": slack.url}.items():
            monkeypatch.setenv(key, value)
        assert main(["replay", str(events), "--policies", str(policies_dir(tmp_path)), "--format", "json", "--fix",
                     "--no-state"]) == 0
        (finding,) = json.loads(capsys.readouterr().out)["events"][0]["findings"]
        (message,) = slack.posted()
        assert buttons(message)[0]["value"] == finding["approval_id"]
