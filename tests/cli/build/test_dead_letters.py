"""Never lose an event: what the template adds per kind of function, and the notifier that takes the dead-letter
queue's alarm to Slack (the exact inline code of deploy/resources.yaml, run against moto and the local Slack)."""

from __future__ import annotations

import ast
import json
import types
from pathlib import Path

import pytest
from cfnlint.decode import cfn_yaml

from safetycatch.build import dead_letters
from safetycatch.local.slack_local import LocalSlack

ROOT = Path(__file__).resolve().parents[3]
RESOURCES = cfn_yaml.loads((ROOT / "deploy" / "resources.yaml").read_text())["Resources"]
TOKEN = "xoxb-dead-letter-test"
CHANNEL = "C0SAFETY1"


def test_each_kind_of_function_gets_its_settings():
    assert dead_letters.async_settings("on_config_change", {"E": {"Type": "CloudWatchEvent"}}) \
        == dead_letters.EVENT_HANDLER
    assert dead_letters.async_settings("scheduled_sweep", {"E": {"Type": "Schedule"}}) == dead_letters.SCHEDULE
    assert dead_letters.async_settings("slack_worker", {}) == dead_letters.SLACK_WORKER
    assert dead_letters.async_settings("api_handler", {}) is None
    assert dead_letters.async_settings("sweep_worker", {"Q": {"Type": "SQS"}}) is None, "SQS has its own redrive"
    assert dead_letters.async_settings("invoked_by_the_bot", {}) == dead_letters.EVENT_HANDLER, \
        "a function with no trigger is invoked asynchronously by the bot: it gets a destination too"
    for settings in (dead_letters.EVENT_HANDLER, dead_letters.SCHEDULE, dead_letters.SLACK_WORKER):
        assert 0 <= settings.max_retries <= 2 and 60 <= settings.max_age_s <= 21600  # Lambda's bounds
    assert dead_letters.SLACK_WORKER.max_age_s < dead_letters.EVENT_HANDLER.max_age_s < 21600


def test_rules_get_the_queue_and_a_retry_policy_and_only_they_may_send():
    template = {"Resources": {
        "Sweep": {"Type": "AWS::Serverless::Function", "Properties": {"Events": {
            "Tick": {"Type": "Schedule", "Properties": {"Schedule": "rate(6 hours)"}}}}},
        "Api": {"Type": "AWS::Serverless::Function", "Properties": {}},
    }}
    done = dead_letters.add_dead_letters(template, {"Sweep": "scheduled_sweep", "Api": "api_handler"})["Resources"]
    tick = done["Sweep"]["Properties"]["Events"]["Tick"]
    assert tick["Type"] == "Schedule" and tick["Properties"]["Schedule"] == "rate(6 hours)"
    assert tick["Properties"]["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}}
    assert tick["Properties"]["RetryPolicy"] == {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 3600}
    assert "EventInvokeConfig" not in done["Api"]["Properties"]
    condition = done["DeadLetterQueueRulesPolicy"]["Properties"]["PolicyDocument"]["Statement"][0]["Condition"]
    assert condition == {"ArnEquals": {"aws:SourceArn": [{"Fn::GetAtt": ["SweepTick", "Arn"]}]}}


# -- the notifier ---------------------------------------------------------------------------------------------

NOTIFIER_SOURCE = RESOURCES["DeadLetterNotifier"]["Properties"]["Code"]["ZipFile"]


def test_the_notifier_depends_on_nothing_of_the_bot():
    """A broken bot package (an import error, a crash loop) must not silence the alarm about it."""
    imported = set()
    for node in ast.walk(ast.parse(NOTIFIER_SOURCE)):
        if isinstance(node, ast.Import):
            imported |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(str(node.module))
    assert imported == {"json", "os", "urllib.request", "boto3"}
    props = RESOURCES["DeadLetterNotifier"]["Properties"]
    assert props["Role"] == {"Fn::GetAtt": ["DeadLetterNotifierRole", "Arn"]} and props["ReservedConcurrentExecutions"]
    assert len(NOTIFIER_SOURCE) < 4096, "CloudFormation's limit for inline code"


@pytest.fixture
def notifier(aws, monkeypatch):
    """The inline notifier as a module, with its environment as the template sets it, on moto and a local Slack."""
    queue_url = aws.client("sqs").create_queue(QueueName="safetycatch-test-dead-letters")["QueueUrl"]
    aws.client("secretsmanager").create_secret(
        Name="safetycatch/test/slack", SecretString=json.dumps({"bot_token": TOKEN, "signing_secret": "s"}))
    with LocalSlack(token=TOKEN) as slack:
        for key, value in {"SAFETYCATCH_DLQ": queue_url, "SAFETYCATCH_SLACK_SECRET": "safetycatch/test/slack",
                           "SAFETYCATCH_SLACK_CHANNEL": CHANNEL, "SAFETYCATCH_SLACK_API_URL": slack.url}.items():
            monkeypatch.setenv(key, value)
        module = types.ModuleType("dead_letter_notifier")
        exec(compile(NOTIFIER_SOURCE, "index.py", "exec"), module.__dict__)  # our own template's code
        yield module, slack, queue_url


def _alarm(state: str, **extra: str) -> dict:
    """What SNS delivers for a CloudWatch alarm state change."""
    message = {"AlarmName": "safetycatch-test-dead-letters", "NewStateValue": state,
               "NewStateReason": "Threshold Crossed: 1 datapoint [3.0] was greater than the threshold (0.0).", **extra}
    return {"Records": [{"EventSource": "aws:sns", "Sns": {"Type": "Notification", "Message": json.dumps(message)}}]}


def test_alarm_posts_the_count_and_the_redrive_command_in_the_bots_channel(notifier, aws):
    module, slack, queue_url = notifier
    for i in range(3):
        aws.client("sqs").send_message(QueueUrl=queue_url, MessageBody=json.dumps({"n": i}))
    assert module.handler(_alarm("ALARM"), None) == {"posted": 1}
    (message,) = slack.posted()
    assert message.channel == CHANNEL
    assert message.text.startswith(":rotating_light: safetycatch could not handle 3 event(s).")
    assert "`safetycatch redrive --queue safetycatch-test-dead-letters --fix`" in message.text
    assert module.handler(_alarm("OK"), None) == {"posted": 1}
    assert slack.posted()[-1].text == ":white_check_mark: safetycatch: the dead-letter queue " \
                                      "`safetycatch-test-dead-letters` is empty again."
    assert module.handler(_alarm("INSUFFICIENT_DATA"), None) == {"posted": 0}


def test_an_event_the_queue_refused_is_told_as_lost(notifier):
    """The *-undelivered alarms (safetycatch/build/dead_letters.py): nothing waits in the queue, the events are gone."""
    module, slack, _ = notifier
    assert module.handler(_alarm("ALARM", AlarmName="safetycatch-test-rules-1-undelivered"), None) == {"posted": 1}
    assert module.handler(_alarm("OK", AlarmName="safetycatch-test-rules-1-undelivered"), None) == {"posted": 1}
    lost, again = (m.text for m in slack.posted())
    assert lost.startswith(":rotating_light: safetycatch lost events: the dead-letter queue "
                           "`safetycatch-test-dead-letters` refused") and "redrive" not in lost
    assert again == ":white_check_mark: safetycatch: the dead-letter queue `safetycatch-test-dead-letters` takes " \
                    "events again."


def test_the_notifier_never_echoes_what_the_alarm_message_says(notifier):
    """Anyone allowed to publish to the topic could write the alarm's text: only the state is read."""
    module, slack, _ = notifier
    module.handler(_alarm("ALARM", NewStateReason="<https://evil.example|Click to re-authorise safetycatch>",
                          AlarmName="<https://evil.example|x>"), None)
    (message,) = slack.posted()
    assert "evil" not in message.text and "could not handle 0 event(s)" in message.text


def test_a_notifier_that_cannot_post_fails_so_lambda_retries_it(notifier, monkeypatch):
    module, slack, _ = notifier
    slack.state.token = "xoxb-rotated"  # the secret holds a stale token: Slack answers invalid_auth
    with pytest.raises(RuntimeError, match="invalid_auth"):
        module.handler(_alarm("ALARM"), None)
    monkeypatch.setenv("SAFETYCATCH_SLACK_CHANNEL", "")
    with pytest.raises(ValueError, match="SlackChannel parameter"):
        module.handler(_alarm("ALARM"), None)
    assert slack.posted() == []


@pytest.mark.parametrize("path", ["deploy/member-account.yaml", "deploy/iam-forwarder.yaml"])
def test_every_forwarding_rule_keeps_what_it_cannot_deliver(path):
    """The member accounts' rules (and the bot's us-east-1 IAM forwarder) put events on another bus: each target
    retries for the bot's hour, then gives the event to the stack's own queue, which only those rules may send to."""
    from safetycatch.build import member_template

    resources = cfn_yaml.load(str(ROOT / path))["Resources"]
    rules = sorted(logical for logical, r in resources.items() if r["Type"] == "AWS::Events::Rule")
    assert rules
    for logical in rules:
        (target,) = resources[logical]["Properties"]["Targets"]
        assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [member_template.DEAD_LETTERS, "Arn"]}}, logical
        assert target["RetryPolicy"] == dead_letters.RULE_RETRY, logical
    queue = resources[member_template.DEAD_LETTERS]
    assert queue["DeletionPolicy"] == "Retain" and queue["Properties"]["SqsManagedSseEnabled"] is True
    assert queue["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600
    statement, deny = resources[f"{member_template.DEAD_LETTERS}Policy"]["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"} and statement["Action"] == "sqs:SendMessage"
    assert [a["Fn::GetAtt"][0] for a in statement["Condition"]["ArnEquals"]["aws:SourceArn"]] == rules
    assert deny["Effect"] == "Deny" and deny["Principal"] == "*"  # every other sender (tests/safety/test_provenance.py)
    assert deny["Condition"] == {"ArnNotEquals": {"aws:SourceArn": statement["Condition"]["ArnEquals"][
        "aws:SourceArn"]}}


def test_the_bot_reads_the_member_queue_the_member_template_names():
    """One name, two places: the stage's SAFETYCATCH_MEMBER_DLQ (the sweep counts what waits there) and the member
    stack's queue (deploy/member-account.yaml, BotStage)."""
    from safetycatch.build import iam, member_template

    for stage in iam.stages():
        assert iam.stage_settings(stage)["env"]["SAFETYCATCH_MEMBER_DLQ"] == \
            member_template.MEMBER_DEAD_LETTERS_NAME.format(stage=stage)
